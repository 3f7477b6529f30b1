"""Position encodings: learned 2-D for the image tokens, sinusoidal 1-D for the caption words."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class LearnedPosition2D(nn.Module):
    """A row half and a column half, concatenated: g + g vectors instead of g * g.

    One module serves both dates, so a location gets the same code before and after.
    """

    def __init__(self, grid: int, dim: int) -> None:
        super().__init__()
        self.grid = grid
        self.row = nn.Parameter(torch.randn(grid, dim // 2) * 0.02)
        self.col = nn.Parameter(torch.randn(grid, dim - dim // 2) * 0.02)

    def forward(self) -> Tensor:
        """(L, D) codes in row-major order, the order of ``x.flatten(2)`` on a (B, C, g, g) map."""
        g = self.grid
        rows = self.row[:, None, :].expand(g, g, -1)  # (g, g, D/2): varies along the first axis
        cols = self.col[None, :, :].expand(g, g, -1)  # (g, g, D/2): varies along the second axis
        return torch.cat([rows, cols], dim=-1).reshape(g * g, -1)  # (L, D)


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """The Transformer's fixed sin/cos table (length, dim): needs no training and no checkpoint entry."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (D/2,)
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table
