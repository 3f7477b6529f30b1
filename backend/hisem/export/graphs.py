"""The two inference graphs as modules: what ONNX export traces and what the PyTorch runner runs.

Wrapping the model rather than exporting it directly fixes the inference contract in one place:
raw 0-255 pixels in (normalisation inside the graph, so no client can get it wrong), probabilities
and log-probabilities out, and a decoder graph that returns only the last position.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hisem.model import HiSem
from hisem.model.moe import MoE

# A model without a mask head still answers the graph contract: a logit whose sigmoid is ~0
# (nothing marked as changed) rather than a missing output that every client must special-case.
NO_MASK_LOGIT = -30.0


def _layers(model: HiSem) -> list[nn.TransformerDecoderLayer]:
    layers = list(model.decoder.decoder.layers)
    for layer in layers:  # the step below re-implements exactly this layout
        if layer.norm_first or not isinstance(layer.multihead_attn, nn.MultiheadAttention):
            raise ValueError("the cached decoder step supports post-norm nn.TransformerDecoderLayer only")
    return layers


def cross_kv(model: HiSem, memory: Tensor) -> Tensor:
    """memory (B, L, D) -> every decoder layer's cross-attention keys and values, (B, 2 * layers, H, L, D/H).

    They depend on the image pair only, so the encoder graph computes them once per tile instead of
    the decoder step at every token; already split into heads, because ONNX Runtime materialises
    every transpose (that copy was 40 % of a step). Batch first, so that decoding can reorder them
    like any memory.
    """
    b, n, d = memory.shape
    kv = []
    for layer in _layers(model):
        mha = layer.multihead_attn
        h = mha.num_heads
        for part in (slice(d, 2 * d), slice(2 * d, 3 * d)):  # keys, values
            projected = F.linear(memory, mha.in_proj_weight[part], mha.in_proj_bias[part])
            kv.append(projected.view(b, n, h, d // h).transpose(1, 2))  # (B, H, L, D/H)
    return torch.stack(kv, dim=1)


class EncoderGraph(nn.Module):
    """before, after (B, 3, S, S) float32 raw 0-255 RGB -> cross_kv, change_prob, mask_logits."""

    def __init__(self, model: HiSem) -> None:
        super().__init__()
        self.model = model
        enc = model.cfg.encoder
        # The model was trained on (x / 255 - mean) / std; folded into one scale and shift.
        self.register_buffer("mean", torch.tensor(enc.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(enc.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)

    def forward(self, before: Tensor, after: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model((before - self.mean) / self.std, (after - self.mean) / self.std)
        cfg = self.model.cfg
        logits = out.router_logits + out.router_logits.new_tensor([0.0, cfg.flag_bias])  # the operating point
        change_prob = torch.softmax(logits, dim=-1)  # (B, 2): P(unchanged), P(changed)
        no_mask = out.mask_logits is None
        mask = torch.full_like(before[:, :1], NO_MASK_LOGIT) if no_mask else out.mask_logits + cfg.mask_bias
        return cross_kv(self.model, out.memory), change_prob, mask


class DecoderStepGraph(nn.Module):
    """cross_kv (B, 2 * layers, H, L, D/H), tokens (B, T) int64 -> log_probs (B, V) of the next token.

    The model's own decoder layers (post-norm ``nn.TransformerDecoderLayer``), written out so that
    cross-attention takes the keys/values the encoder graph already projected: that projection was
    ~40 % of a step and is identical at every step. The prefix itself is re-decoded at each step (no
    self-attention cache), so the step stays stateless, but the last layer works for the last
    position only. ``model.decode`` gives the same numbers (tested).
    """

    def __init__(self, model: HiSem) -> None:
        super().__init__()
        self.model = model
        self.layers = _layers(model)

    def _cross(self, layer: nn.TransformerDecoderLayer, x: Tensor, k: Tensor, v: Tensor) -> Tensor:
        mha = layer.multihead_attn
        b, t, d = x.shape
        h = mha.num_heads
        q = F.linear(x, mha.in_proj_weight[:d], mha.in_proj_bias[:d]).view(b, t, h, d // h).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # k, v (B, H, L, D/H) -> (B, H, T, D/H)
        return mha.out_proj(out.transpose(1, 2).reshape(b, t, d))

    def forward(self, kv: Tensor, tokens: Tensor) -> Tensor:
        decoder = self.model.decoder
        t = tokens.shape[1]
        x = decoder.embed(tokens) + decoder.positions[:t]  # (B, T, D); dropout is off in eval
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=tokens.device), diagonal=1)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last:
                # Only the last position's output is asked for: the last layer queries with it alone
                # (keys and values still span the prefix; the last token sees all of it, so no mask),
                # which divides the last layer's attention queries, FFN and head work by T.
                query = x[:, -1:]
                attended = layer.self_attn(query, x, x, need_weights=False)[0]
            else:
                query = x
                attended = layer.self_attn(x, x, x, attn_mask=causal, is_causal=True, need_weights=False)[0]
            x = layer.norm1(query + attended)
            x = layer.norm2(x + self._cross(layer, x, kv[:, 2 * i], kv[:, 2 * i + 1]))
            x = layer.norm3(x + layer.linear2(layer.activation(layer.linear1(x))))
        if decoder.decoder.norm is not None:
            x = decoder.decoder.norm(x)
        return torch.log_softmax(decoder.head(x[:, -1]), dim=-1)  # (B, V)


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
