"""HASD: Hierarchical Adaptive Semantic Disentanglement (MODEL.md).

An image-level router sends each pair down an *unchanged* path (fusion + FFN) or a *changed* path
(fusion + token MoE for the many kinds of change). In inference and export both paths run on every
sample and the chosen one is kept per sample with ``torch.where``: no data-dependent indexing, so the
graph exports to ONNX as is. In training each path runs only on the samples routed to it, which
halves the cost of HASD where CPU training time matters.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from hisem.model.config import HASDConfig
from hisem.model.moe import MoE


class FusionBlock(nn.Module):
    """Both dates concatenated on channels -> 1x1 conv -> residual conv block -> LN, on the grid."""

    def __init__(self, dim: int, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.reduce = nn.Conv2d(2 * dim, dim, 1)
        self.block = nn.Sequential(
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, padding=1, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 1, bias=False),
            nn.BatchNorm2d(dim),
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, fb: Tensor, fa: Tensor) -> Tensor:
        b, n, d = fb.shape
        x = torch.cat([fb, fa], dim=-1).transpose(1, 2).reshape(b, 2 * d, self.grid, self.grid)  # (B,2D,g,g)
        x = self.reduce(x)  # (B, D, g, g)
        x = x + self.block(x)
        return self.norm(x.flatten(2).transpose(1, 2))  # (B, L, D)


class FeedForward(nn.Module):
    """LN(h + FFN(h)): the position-wise FFN of the unchanged path, with its residual."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: Tensor) -> Tensor:
        return self.norm(h + self.ffn(h))


class HASDOutput(NamedTuple):
    memory: Tensor  # (B, L, D) V = LN(F̃b + F̃a + path output)
    router_logits: Tensor  # (B, 2) 0 = unchanged, 1 = changed
    balance_loss: Tensor  # scalar, unweighted, over the samples that took the changed path


class HASD(nn.Module):
    def __init__(self, dim: int, grid: int, cfg: HASDConfig, choice_bias: float = 0.0) -> None:
        super().__init__()
        self.router = nn.Linear(dim, 2, bias=False)
        # The calibrated operating point (HiSemConfig.flag_bias): the router's own choice of path
        # agrees with the reported change flag, so a tile flagged changed gets a change caption.
        self.choice_bias = choice_bias
        self.unchanged_fusion = FusionBlock(dim, grid)
        self.unchanged_ffn = FeedForward(dim, cfg.ffn_hidden)
        self.changed_fusion = FusionBlock(dim, grid)
        self.moe = MoE(dim, cfg)
        self.moe_norm = nn.LayerNorm(dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, fb: Tensor, fa: Tensor, route: Tensor | None = None) -> HASDOutput:
        """``route`` (B,) long teacher-forces the path per sample; None lets the router pick top-1.

        A route of -1 (change flag unknown) also lets the router pick, for that sample only: taking
        it as "changed" (any non-zero) would teach the experts on pairs that may not have changed.
        """
        logits = self.router((fa - fb).mean(dim=1))  # (B, 2)
        own_choice = (logits[:, 1] + self.choice_bias >= logits[:, 0]).long() if self.choice_bias else logits.argmax(-1)
        route = own_choice if route is None else torch.where(route < 0, own_choice, route)
        is_changed = route.to(torch.bool)  # (B,)
        if self.training and not torch.compiler.is_exporting():
            path, balance = self._routed_subsets(fb, fa, is_changed)
        else:
            path, balance = self._both_paths(fb, fa, is_changed)
        return HASDOutput(self.norm(fb + fa + path), logits, balance)

    def _changed_path(self, fb: Tensor, fa: Tensor) -> tuple[Tensor, Tensor]:
        h = self.changed_fusion(fb, fa)
        moe_out, balance = self.moe(h)  # (B, L, D), (B,)
        return self.moe_norm(h + moe_out), balance

    def _both_paths(self, fb: Tensor, fa: Tensor, is_changed: Tensor) -> tuple[Tensor, Tensor]:
        """Inference and export: both paths on every sample, the routed one kept by torch.where."""
        unchanged = self.unchanged_ffn(self.unchanged_fusion(fb, fa))  # (B, L, D)
        changed, balance = self._changed_path(fb, fa)
        path = torch.where(is_changed[:, None, None], changed, unchanged)
        # Balance only the experts' real work: mean over the samples whose changed path is kept.
        sel = is_changed.to(balance.dtype)
        return path, (balance * sel).sum() / sel.sum().clamp(min=1.0)

    def _routed_subsets(self, fb: Tensor, fa: Tensor, is_changed: Tensor) -> tuple[Tensor, Tensor]:
        """Training: each path runs only on the samples routed to it (half the work of both paths).

        Each path's BatchNorm then sees only its own samples, which is also what it sees in use.
        """
        path = torch.zeros_like(fb)  # (B, L, D)
        balance = fb.new_zeros(())
        changed_idx = is_changed.nonzero(as_tuple=True)[0]
        unchanged_idx = (~is_changed).nonzero(as_tuple=True)[0]
        if len(unchanged_idx):
            out = self.unchanged_ffn(self.unchanged_fusion(fb[unchanged_idx], fa[unchanged_idx]))
            path = path.index_copy(0, unchanged_idx, out.to(path.dtype))  # autocast may narrow `out`
        if len(changed_idx):
            out, per_sample = self._changed_path(fb[changed_idx], fa[changed_idx])
            path = path.index_copy(0, changed_idx, out.to(path.dtype))
            balance = per_sample.mean()
        return path, balance


class PlainFusion(nn.Module):
    """The HASD-off ablation: V = LN(F̃b + F̃a + FFN(fusion(F̃b, F̃a))), one path for every pair.

    It is the unchanged path's architecture without the router, so the ablation removes exactly the
    routing and the experts.
    """

    def __init__(self, dim: int, grid: int, cfg: HASDConfig) -> None:
        super().__init__()
        self.fusion = FusionBlock(dim, grid)
        self.ffn = FeedForward(dim, cfg.ffn_hidden)
        self.norm = nn.LayerNorm(dim)

    def forward(self, fb: Tensor, fa: Tensor) -> Tensor:
        return self.norm(fb + fa + self.ffn(self.fusion(fb, fa)))
