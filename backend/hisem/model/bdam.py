"""BDAM: Bidirectional Differential Attention Modulation (MODEL.md, N layers).

Each layer lets the two dates attend to each other, biased towards the *same* location where the
change prior is strong, and subtracts the opposite direction's attention so that what both dates
share cancels out (differential attention) and what only one date has remains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hisem.model.config import BDAMConfig


class LocalEnhance(nn.Module):
    """E(x) = LN(x + depthwise 3x3 conv of x on the token grid): neighbourhood context per token."""

    def __init__(self, dim: int, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        grid = x.transpose(1, 2).reshape(b, d, self.grid, self.grid)  # (B, D, g, g)
        return self.norm(x + self.conv(grid).flatten(2).transpose(1, 2))  # (B, L, D)


class GatedFusion(nn.Module):
    """out = LN(P(γ ⊙ o + (1 − γ) ⊙ x)), γ = sigmoid(W[x; o]): how much of the other date to take in."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Linear(2 * dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, o: Tensor) -> Tensor:
        g = torch.sigmoid(self.gate(torch.cat([x, o], dim=-1)))
        return self.norm(self.proj(g * o + (1 - g) * x))


class BDAMLayer(nn.Module):
    """One BDAM layer on (Fb, Fa), each (B, L, D) on a g x g grid; returns the modulated pair."""

    def __init__(self, dim: int, grid: int, cfg: BDAMConfig) -> None:
        super().__init__()
        if dim % cfg.heads:
            raise ValueError(f"BDAM: width {dim} is not divisible by {cfg.heads} heads")
        self.heads, self.lam = cfg.heads, cfg.lam
        self.scale = (dim // cfg.heads) ** -0.5
        # 1. change prior: g = sigmoid(MLP([Fb; Fa])) with a D/4 bottleneck gates |Fb - Fa|
        self.prior_gate = nn.Sequential(
            nn.Linear(2 * dim, dim // 4), nn.ReLU(inplace=True), nn.Linear(dim // 4, dim)
        )
        self.enhance = LocalEnhance(dim, grid)  # shared by both dates, like the siamese encoder
        # 2. per-token change scores, scaled by learnable factors
        self.score_add = nn.Linear(dim, 1)
        self.score_del = nn.Linear(dim, 1)
        self.add_scale = nn.Parameter(torch.tensor(cfg.add_scale_init))
        self.del_scale = nn.Parameter(torch.tensor(cfg.del_scale_init))
        # 3. bias-free projections, shared by the two directions
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        # 4. one gated fusion per stream
        self.fuse_b = GatedFusion(dim)
        self.fuse_a = GatedFusion(dim)

    def _split(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)  # (B, h, L, d_h)

    def biases(self, change: Tensor) -> tuple[Tensor, Tensor]:
        """Diagonal L x L attention biases (B, 1, L, L) from the change attention C (B, L, D).

        Token i of one date attends more (or less) to token i of the other where C says change.
        """
        eye = torch.eye(change.shape[1], dtype=change.dtype, device=change.device)  # (L, L)
        bias_add = (self.score_add(change) * self.add_scale) * eye  # (B, L, 1) * (L, L) -> (B, L, L)
        bias_del = (self.score_del(change) * self.del_scale) * eye
        return bias_add[:, None], bias_del[:, None]

    def attention_maps(self, hb: Tensor, ha: Tensor, change: Tensor) -> tuple[Tensor, Tensor]:
        """A_b→a and A_a→b, each (B, h, L, L): the explicit maps, for inspection and tests."""
        bias_add, bias_del = self.biases(change)
        qb, kb = self._split(self.q(hb)), self._split(self.k(hb))
        qa, ka = self._split(self.q(ha)), self._split(self.k(ha))
        a_ba = torch.softmax(qb @ ka.transpose(-2, -1) * self.scale + bias_add, dim=-1)
        a_ab = torch.softmax(qa @ kb.transpose(-2, -1) * self.scale + bias_del, dim=-1)
        return a_ba, a_ab

    def forward(self, fb: Tensor, fa: Tensor) -> tuple[Tensor, Tensor]:
        b, n, d = fb.shape
        change = torch.sigmoid(self.prior_gate(torch.cat([fb, fa], dim=-1))) * (fb - fa).abs()  # C (B,L,D)
        hb = self.enhance(fb) + change  # F̂b
        ha = self.enhance(fa) + change  # F̂a
        bias_add, bias_del = self.biases(change)
        qb, kb, vb = (self._split(proj(hb)) for proj in (self.q, self.k, self.v))  # (B, h, L, d_h)
        qa, ka, va = (self._split(proj(ha)) for proj in (self.q, self.k, self.v))
        # Differential maps with a fixed λ, by linearity: (A_b→a − λ A_a→b) V = A_b→a V − λ A_a→b V.
        # Each direction's attention is applied to both dates' values at once (values concatenated on
        # the head dim), through the fused kernel: the (B, h, L, L) maps are never materialised,
        # which made BDAM the slowest module on a CPU.
        values = torch.cat([va, vb], dim=-1)  # (B, h, L, 2 d_h)
        ba = F.scaled_dot_product_attention(qb, ka, values, attn_mask=bias_add)  # A_b→a [V_a, V_b]
        ab = F.scaled_dot_product_attention(qa, kb, values, attn_mask=bias_del)  # A_a→b [V_a, V_b]
        dh = va.shape[-1]
        o_add = ba[..., :dh] - self.lam * ab[..., :dh]  # (B, h, L, d_h): what `after` adds
        o_del = ab[..., dh:] - self.lam * ba[..., dh:]  # what `before` loses
        o_add = o_add.transpose(1, 2).reshape(b, n, d)  # (B, L, D)
        o_del = o_del.transpose(1, 2).reshape(b, n, d)
        return self.fuse_b(hb, o_del), self.fuse_a(ha, o_add)


class BDAM(nn.Module):
    """``cfg.layers`` BDAM layers in sequence."""

    def __init__(self, dim: int, grid: int, cfg: BDAMConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(BDAMLayer(dim, grid, cfg) for _ in range(cfg.layers))

    def forward(self, fb: Tensor, fa: Tensor) -> tuple[Tensor, Tensor]:
        for layer in self.layers:
            fb, fa = layer(fb, fa)
        return fb, fa
