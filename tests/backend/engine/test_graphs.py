"""The inference graphs compute what the model computes: the cached cross-attention step included."""

from __future__ import annotations

import torch

from hisem.export.graphs import DecoderStepGraph, cross_kv
from hisem.model import build_model
from hisem.model.config import DecoderConfig, preset


def test_cached_step_equals_the_models_decoder() -> None:
    torch.manual_seed(0)
    cfg = preset("tiny", vocab_size=30)
    cfg = type(cfg)(**{**cfg.__dict__, "decoder": DecoderConfig(layers=2, heads=4)})  # more than one layer
    model = build_model(cfg).eval()
    memory = torch.randn(3, 16, model.cfg.dim)
    tokens = torch.tensor([[2, 7, 9, 4], [2, 5, 5, 6], [2, 11, 3, 8]])
    with torch.no_grad():
        expected = torch.log_softmax(model.decode(memory, tokens)[:, -1], dim=-1)
        kv = cross_kv(model, memory)
        got = DecoderStepGraph(model).eval()(kv, tokens)
    assert kv.shape == (3, 4, 4, 16, model.cfg.dim // 4)  # 2 layers x (keys, values), 4 heads
    assert torch.allclose(got, expected, atol=1e-5)
    for t in range(1, tokens.shape[1]):  # every prefix length, as decoding feeds them
        with torch.no_grad():
            step = DecoderStepGraph(model).eval()(kv, tokens[:, :t])
            full = torch.log_softmax(model.decode(memory, tokens[:, :t])[:, -1], dim=-1)
        assert torch.allclose(step, full, atol=1e-5)
