"""Batches without captions or without known change flags: exact zeros, never NaN; -1 routes by the router."""

from __future__ import annotations

from collections.abc import Callable

import torch

from hisem.model import build_model
from hisem.model.config import HASDConfig
from hisem.model.hasd import HASD
from hisem.model.losses import caption_loss, router_loss, total_loss


def _grads(term: torch.Tensor, model: torch.nn.Module) -> list[torch.Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    return [g for g in torch.autograd.grad(term, params, retain_graph=True, allow_unused=True) if g is not None]


def test_no_captions_and_unknown_flags_give_exact_zero_terms(random_batch: Callable[..., dict]) -> None:
    model = build_model("tiny", vocab_size=24).train()
    batch = random_batch(model.cfg, b=4)
    batch["tokens"][:, 1:] = 0  # caption-less pairs: <START> then <NULL> only, every target ignored
    batch["changeflag"] = torch.full((4,), -1)
    batch["has_mask"] = torch.zeros(4, dtype=torch.bool)
    out = model(batch["before"], batch["after"], batch["tokens"][:, :-1], route=batch["changeflag"])
    caption = caption_loss(out.logits, batch["tokens"])
    router = router_loss(out.router_logits, batch["changeflag"])
    for term in (caption, router):
        assert term.item() == 0.0
        assert all(torch.equal(g, torch.zeros_like(g)) for g in _grads(term, model))
    loss, parts = total_loss(out, batch, router_weight=0.8)
    assert parts["caption"] == parts["router"] == parts["mask"] == 0.0
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_known_targets_keep_the_mean_cross_entropy(random_batch: Callable[..., dict]) -> None:
    model = build_model("tiny", vocab_size=24).eval()
    batch = random_batch(model.cfg, b=4)
    batch["changeflag"] = torch.tensor([0, 1, -1, 1])
    with torch.no_grad():
        out = model(batch["before"], batch["after"], batch["tokens"][:, :-1])
    expected = torch.nn.functional.cross_entropy(out.router_logits[[0, 1, 3]], torch.tensor([0, 1, 1]))
    assert torch.allclose(router_loss(out.router_logits, batch["changeflag"]), expected)
    target = batch["tokens"][:, 1:]
    expected = torch.nn.functional.cross_entropy(out.logits.reshape(-1, 24), target.reshape(-1), ignore_index=0)
    assert torch.allclose(caption_loss(out.logits, batch["tokens"]), expected)


def test_unknown_flag_follows_the_router_not_the_changed_path() -> None:
    torch.manual_seed(0)
    hasd = HASD(dim=32, grid=4, cfg=HASDConfig(ffn_hidden=64)).eval()
    fb, fa = torch.randn(4, 16, 32), torch.randn(4, 16, 32)
    with torch.no_grad():
        d = (fa - fb).mean(dim=1)[0]  # the router's input for pair 0
        hasd.router.weight.copy_(torch.stack([d, -d]))  # logits |d|², -|d|²: pair 0 looks unchanged
        assert hasd(fb, fa).router_logits.argmax(-1)[0] == 0
        unknown = hasd(fb, fa, route=torch.tensor([-1, 1, 0, 1]))
        forced = hasd(fb, fa, route=torch.tensor([0, 1, 0, 1]))
    assert torch.equal(unknown.memory, forced.memory)
    # in training too (each path on its own subset): the unchanged pair never reaches the experts
    hasd.train()
    out = hasd(fb[:1], fa[:1], route=torch.tensor([-1]))
    out.memory.sum().backward()
    assert all(p.grad is None for p in hasd.moe.parameters())
