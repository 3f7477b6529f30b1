"""HASD's two ways of running its paths agree: per-subset (training) and torch.where (inference/export)."""

from __future__ import annotations

import torch

from hisem.model.config import HASDConfig
from hisem.model.hasd import HASD


def test_routed_subsets_equal_both_paths_with_fixed_statistics() -> None:
    torch.manual_seed(0)
    hasd = HASD(dim=32, grid=4, cfg=HASDConfig(ffn_hidden=64))
    hasd.eval()  # BatchNorm on running statistics: the only thing that may differ between the two
    fb, fa = torch.randn(6, 16, 32), torch.randn(6, 16, 32)
    route = torch.tensor([1, 0, 0, 1, 1, 0])
    path_a, bal_a = hasd._routed_subsets(fb, fa, route.bool())
    path_b, bal_b = hasd._both_paths(fb, fa, route.bool())
    assert torch.allclose(path_a, path_b, atol=1e-5)
    assert torch.allclose(bal_a, bal_b, atol=1e-6)


def test_training_with_one_route_only_leaves_the_other_path_untouched() -> None:
    torch.manual_seed(0)
    hasd = HASD(dim=32, grid=4, cfg=HASDConfig(ffn_hidden=64))
    hasd.train()
    fb, fa = torch.randn(4, 16, 32), torch.randn(4, 16, 32)
    out = hasd(fb, fa, route=torch.zeros(4, dtype=torch.long))
    out.memory.sum().backward()
    assert all(p.grad is None for p in hasd.moe.parameters()), "unchanged pairs never reach the experts"
    assert out.balance_loss.item() == 0.0
    assert all(p.grad is not None for p in hasd.unchanged_ffn.parameters())
