"""Mixed precision through the whole model: the dtypes CUDA autocast produces must meet cleanly.

CI has no GPU: CPU bf16 autocast plus CUDA's LayerNorm rule (tests/backend/autocast_rules.py) gives
the mix a GPU run sees (fp32 LayerNorm outputs, half-precision Linear outputs).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from hisem.model import build_model
from hisem.model.config import HASDConfig
from hisem.model.losses import total_loss
from hisem.model.moe import MoE
from hisem.training.batches import TrainStep
from tests.backend.autocast_rules import cuda_layer_norm_rule


def test_moe_takes_fp32_tokens_under_autocast() -> None:
    """The failure `hisem train --device cuda` met: index_add of half expert outputs into fp32."""
    moe = MoE(32, HASDConfig(ffn_hidden=64))
    x = torch.randn(2, 16, 32)  # fp32, as a LayerNorm output is under CUDA autocast
    with torch.no_grad():
        expected, _ = moe(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got, balance = moe(x)
    assert got.dtype == torch.float32
    assert torch.isfinite(balance).all()
    assert torch.allclose(got, expected, atol=0.05, rtol=0.05)  # bf16 has 8 bits of mantissa


def test_bf16_training_step_through_the_whole_model_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, random_batch: Callable[..., dict]
) -> None:
    model = build_model("tiny", vocab_size=24).train()
    batch = random_batch(model.cfg, b=4)
    batch["changeflag"] = torch.tensor([0, 1, 0, 1])  # both routed paths in one batch
    step = TrainStep(model)
    with cuda_layer_norm_rule(monkeypatch), torch.autocast("cpu", dtype=torch.bfloat16):
        out = step(batch, route=batch["changeflag"])
        loss, parts = total_loss(out, batch, router_weight=0.8)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(torch.tensor(v)) for v in parts.values())
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    # both paths trained: the experts (changed) and the unchanged path's FFN have gradients
    assert any(n.startswith("hasd.moe.experts.") for n in grads)
    assert any(n.startswith("hasd.unchanged_ffn.") for n in grads)
    assert any(g.abs().sum() > 0 for n, g in grads.items() if n.startswith("decoder."))
