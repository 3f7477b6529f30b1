"""The two inference graphs as modules: what ONNX export traces and what the PyTorch runner runs.

Wrapping the model rather than exporting it directly fixes the inference contract in one place:
raw 0-255 pixels in (normalisation inside the graph, so no client can get it wrong), probabilities
and log-probabilities out, and a decoder graph that returns only the last position.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from hisem.model import HiSem
from hisem.model.moe import MoE

# A model without a mask head still answers the graph contract: a logit whose sigmoid is ~0
# (nothing marked as changed) rather than a missing output that every client must special-case.
NO_MASK_LOGIT = -30.0


class EncoderGraph(nn.Module):
    """before, after (B, 3, S, S) float32 raw 0-255 RGB -> memory, change_prob, mask_logits."""

    def __init__(self, model: HiSem) -> None:
        super().__init__()
        self.model = model
        enc = model.cfg.encoder
        # The model was trained on (x / 255 - mean) / std; folded into one scale and shift.
        self.register_buffer("mean", torch.tensor(enc.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(enc.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)

    def forward(self, before: Tensor, after: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model((before - self.mean) / self.std, (after - self.mean) / self.std)
        change_prob = torch.softmax(out.router_logits, dim=-1)  # (B, 2): P(unchanged), P(changed)
        mask = out.mask_logits
        if mask is None:
            mask = torch.full_like(before[:, :1], NO_MASK_LOGIT)  # (B, 1, S, S)
        return out.memory, change_prob, mask


class DecoderStepGraph(nn.Module):
    """memory (B, L, D), tokens (B, T) int64 -> log_probs (B, V) of the token after the last one.

    The whole prefix is re-decoded at each step (no key/value cache), so the graph is the model's
    own decoder and the step stays stateless. Its cost, measured on the lite preset: ~30 % of a
    batch-8 greedy caption, most of a beam-3 one; ~40 % of a step is projecting the memory to the
    cross-attention keys/values, identical at every step, so caching those is the next speed-up.
    """

    def __init__(self, model: HiSem) -> None:
        super().__init__()
        self.model = model

    def forward(self, memory: Tensor, tokens: Tensor) -> Tensor:
        logits = self.model.decode(memory, tokens)[:, -1]  # (B, V)
        return torch.log_softmax(logits, dim=-1)


class SparseMoE(nn.Module):
    """Export stand-in for a ``MoE``: each token runs only its top-k experts, in the graph too.

    ``MoE.forward`` runs every expert on every token while exporting, on the premise that a traced
    graph cannot dispatch tokens by data-dependent counts. With torch 2.13 the MoE's own sparse
    dispatch (nonzero + index_add, sizes symbolic) does export, and ONNX Runtime matches PyTorch on
    it (also with experts that no token chose). Measured on the lite encoder: the encoder at batch 8
    runs ~17 % faster (k + 1 of E + 1 expert passes per token instead of all of them).
    """

    def __init__(self, moe: MoE) -> None:
        super().__init__()
        self.moe = moe

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, n, d = x.shape
        flat = x.reshape(b * n, d)  # (N, D)
        routed = self.moe._sparse(flat, self.moe.route(flat))  # the eager path of MoE.forward
        # Inference has no use for the balance loss; zeros of its shape keep HASD's contract.
        return (self.moe.shared(flat) + routed).view(b, n, d), flat.new_zeros(b)


def with_sparse_moe(model: HiSem) -> HiSem:
    """A copy of ``model`` whose MoE layers dispatch sparsely under export (the original is untouched)."""
    copied = copy.deepcopy(model)
    for module in list(copied.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, MoE):
                setattr(module, name, SparseMoE(child))
    return copied
