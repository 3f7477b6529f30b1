"""Token-level Mixture of Experts, DeepSeek style: sigmoid gates, group-limited top-k, a shared expert.

Each token is scored by every routed expert (sigmoid, not softmax, so scores are independent); the
experts are split into groups, only the ``top_groups`` groups whose best expert scores highest stay
eligible, and the token goes to its ``top_k`` best experts there, weighted by their raw scores. One
shared expert sees every token. Routing uses topk/gather/scatter only, no loop over tokens.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hisem.model.config import HASDConfig


class SwiGLU(nn.Module):
    """w2(silu(w1 x) * w3 x), bias-free."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Routing(NamedTuple):
    scores: Tensor  # (N, E) sigmoid gate scores of every expert
    index: Tensor  # (N, k) chosen experts
    weight: Tensor  # (N, k) their raw sigmoid scores


class MoE(nn.Module):
    """Shared expert + group-limited top-k routed SwiGLU experts on (B, L, D) tokens."""

    def __init__(self, dim: int, cfg: HASDConfig) -> None:
        super().__init__()
        if cfg.experts % cfg.groups:
            raise ValueError(f"MoE: {cfg.experts} experts do not split into {cfg.groups} groups")
        if not 0 < cfg.top_k <= cfg.top_groups * (cfg.experts // cfg.groups) or cfg.top_groups > cfg.groups:
            raise ValueError("MoE: top_k must fit in the experts of the top_groups kept groups")
        self.n_experts, self.groups = cfg.experts, cfg.groups
        self.top_groups, self.top_k = cfg.top_groups, cfg.top_k
        self.gate = nn.Linear(dim, cfg.experts, bias=False)
        self.experts = nn.ModuleList(SwiGLU(dim, cfg.ffn_hidden) for _ in range(cfg.experts))
        self.shared = SwiGLU(dim, cfg.ffn_hidden)

    def route(self, x: Tensor) -> Routing:
        """Choose ``top_k`` experts per token (rows of x, (N, D)) among the ``top_groups`` best groups."""
        scores = torch.sigmoid(self.gate(x))  # (N, E)
        n = scores.shape[0]
        grouped = scores.view(n, self.groups, -1)  # (N, G, E/G)
        best_groups = grouped.amax(dim=-1).topk(self.top_groups, dim=-1).indices  # (N, top_groups)
        keep = torch.zeros_like(grouped[..., 0]).scatter(1, best_groups, 1.0)  # (N, G)
        keep = keep[..., None].expand_as(grouped).reshape(n, -1)  # (N, E)
        index = scores.masked_fill(keep == 0, float("-inf")).topk(self.top_k, dim=-1).indices  # (N, k)
        return Routing(scores, index, scores.gather(1, index))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L, D) -> (MoE output (B, L, D), per-sequence balance loss (B,))."""
        b, n, d = x.shape
        flat = x.reshape(b * n, d)  # (N, D)
        r = self.route(flat)
        # Export traces a fixed graph: run every expert on every token there (fine at batch 1), and
        # dispatch only the chosen tokens in eager mode (k/E of the work, what training needs).
        routed = self._dense(flat, r) if torch.compiler.is_exporting() else self._sparse(flat, r)
        out = self.shared(flat) + routed
        return out.view(b, n, d), self.balance_loss(r, b)

    def _combine(self, r: Routing) -> Tensor:
        """(N, E) mixing weights: the raw score for a chosen expert, 0 elsewhere."""
        return torch.zeros_like(r.scores).scatter(1, r.index, r.weight)

    def _dense(self, flat: Tensor, r: Routing) -> Tensor:
        outs = torch.stack([expert(flat) for expert in self.experts], dim=1)  # (N, E, D)
        return (self._combine(r)[..., None] * outs).sum(dim=1)  # (N, D)

    def _sparse(self, flat: Tensor, r: Routing) -> Tensor:
        token = torch.arange(flat.shape[0], device=flat.device).repeat_interleave(self.top_k)  # (N*k,)
        expert_of = r.index.reshape(-1)  # (N*k,)
        weight = r.weight.reshape(-1, 1)  # (N*k, 1)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):  # a loop over experts, never over tokens
            sel = (expert_of == e).nonzero(as_tuple=True)[0]
            # Under autocast the experts' Linear layers return fp16/bf16 while ``flat`` (a LayerNorm
            # output, fp32 on CUDA) sets the buffer's dtype: index_add takes one dtype, so the
            # contributions are summed in the buffer's (the wider) one.
            contribution = expert(flat[token[sel]]) * weight[sel]
            out = out.index_add(0, token[sel], contribution.to(out.dtype))
        return out

    def balance_loss(self, r: Routing, batch: int) -> Tensor:
        """DeepSeek-V3's sequence-wise balance loss, Σ_i f_i P_i per sequence, (B,); 1 when balanced.

        f_i: share of the sequence's k·L choices that went to expert i, times E; P_i: the mean of
        the expert's normalised score. Only the score side carries a gradient, as in the paper.
        """
        e, k = self.n_experts, self.top_k
        scores = r.scores.view(batch, -1, e)  # (B, L, E)
        length = scores.shape[1]
        counts = torch.zeros_like(scores[:, 0]).scatter_add(
            1, r.index.view(batch, -1), torch.ones_like(r.weight).view(batch, -1)
        )  # (B, E)
        f = counts * (e / (k * length))
        p = (scores / scores.sum(dim=-1, keepdim=True)).mean(dim=1)  # (B, E)
        return (f * p).sum(dim=-1)
