"""Change-mask head (ours, not in the paper): ties captions to regions.

FPN-style: the token-grid difference (F̃a − F̃b) carries *what* changed after BDAM's cross-date
reasoning; |fine_a − fine_b| from a finer backbone stage carries *where* the edges are. The coarse
map is upsampled onto the fine one, added, refined at S/4 and upsampled to the input size.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def _refine(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


class ChangeMaskHead(nn.Module):
    def __init__(self, dim: int, fine_channels: int, grid: int, image_size: int, channels: int) -> None:
        super().__init__()
        self.grid, self.image_size = grid, image_size
        self.coarse = nn.Conv2d(dim, channels, 1)
        self.lateral = nn.Sequential(
            nn.Conv2d(fine_channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
        )
        self.refine_fine = _refine(channels)
        self.refine_quarter = _refine(channels)
        self.classify = nn.Conv2d(channels, 1, 1)

    def forward(self, diff: Tensor, fine_b: Tensor, fine_a: Tensor) -> Tensor:
        """diff (B, L, D) = F̃a − F̃b; fine_* (B, Cf, h, w) -> change logits (B, 1, S, S)."""
        b, n, d = diff.shape
        coarse = self.coarse(diff.transpose(1, 2).reshape(b, d, self.grid, self.grid))  # (B, C, g, g)
        lateral = self.lateral((fine_a - fine_b).abs())  # (B, C, h, w)
        x = lateral + F.interpolate(coarse, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        x = self.refine_fine(x)
        quarter = (self.image_size // 4, self.image_size // 4)
        x = F.interpolate(x, size=quarter, mode="bilinear", align_corners=False)  # (B, C, S/4, S/4)
        x = self.classify(self.refine_quarter(x))
        size = (self.image_size, self.image_size)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # (B, 1, S, S)
