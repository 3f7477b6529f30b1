"""The assembled model: shapes, gradients, ablation switches, routing, generation and the losses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from hisem.model import Features, HiSemConfig, build_model, total_loss
from hisem.model.losses import caption_loss, mask_loss

ConfigFactory = Callable[..., HiSemConfig]
BatchFactory = Callable[..., dict[str, Tensor]]

SWITCHES = {
    "full": {},
    "no_bdam": {"bdam": {"enabled": False}},
    "no_hasd": {"hasd": {"enabled": False}},
    "neither": {"bdam": {"enabled": False}, "hasd": {"enabled": False}},
    "no_mask_head": {"mask_head": {"enabled": False}},
    "two_layers": {"bdam": {"layers": 2}, "decoder": {"layers": 2}},
}


@pytest.mark.parametrize("name", list(SWITCHES))
def test_forward_shapes_and_finite(
    name: str, tiny_config: ConfigFactory, random_batch: BatchFactory
) -> None:
    cfg = tiny_config(**SWITCHES[name])
    model = build_model(cfg)
    batch = random_batch(cfg, b=3)
    out = model(batch["before"], batch["after"], batch["tokens"][:, :-1])
    assert out.memory.shape == (3, cfg.tokens, cfg.dim)
    assert out.router_logits.shape == (3, 2)
    assert out.logits is not None and out.logits.shape == (3, batch["tokens"].shape[1] - 1, cfg.vocab_size)
    assert out.balance_loss.shape == ()
    if cfg.mask_head.enabled:
        assert out.mask_logits is not None and out.mask_logits.shape == (3, 1, 64, 64)
        assert torch.isfinite(out.mask_logits).all()
    else:
        assert out.mask_logits is None
    if not cfg.hasd.enabled:
        assert not out.router_logits.any() and out.balance_loss.item() == 0.0
    for t in (out.memory, out.router_logits, out.logits, out.balance_loss):
        assert torch.isfinite(t).all()


@pytest.mark.parametrize("name", list(SWITCHES))
@pytest.mark.parametrize("route", [(0, 1, 0, 1), (1, 0, 1, 0)])
def test_every_trainable_parameter_gets_a_gradient(
    name: str,
    route: tuple[int, ...],
    tiny_config: ConfigFactory,
    random_batch: BatchFactory,
) -> None:
    """Mixed routes: both HASD paths are used in the batch, so every weight must learn."""
    cfg = tiny_config(**SWITCHES[name])
    model = build_model(cfg).train()
    batch = random_batch(cfg, b=4)
    out = model(batch["before"], batch["after"], batch["tokens"][:, :-1], route=torch.tensor(route))
    loss, parts = total_loss(out, batch, router_weight=0.8)
    assert set(parts) == {"loss", "caption", "router", "balance", "mask"}
    assert all(isinstance(v, float) for v in parts.values())
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)


def test_route_selects_the_path_per_sample(
    tiny_config: ConfigFactory, random_batch: BatchFactory
) -> None:
    cfg = tiny_config()
    model = build_model(cfg).eval()
    batch = random_batch(cfg, b=2)
    feats = model.extract(batch["before"]), model.extract(batch["after"])
    zero = model.encode(*feats, route=torch.tensor([0, 0]))
    one = model.encode(*feats, route=torch.tensor([1, 1]))
    mixed = model.encode(*feats, route=torch.tensor([1, 0]))
    assert not torch.allclose(zero.memory, one.memory)
    assert torch.allclose(mixed.memory[0], one.memory[0], atol=1e-6)
    assert torch.allclose(mixed.memory[1], zero.memory[1], atol=1e-6)
    own = model.encode(*feats)
    chosen = model.encode(*feats, route=own.router_logits.argmax(-1))
    assert torch.allclose(own.memory, chosen.memory)


def test_forward_equals_extract_then_encode_then_decode(
    tiny_config: ConfigFactory, random_batch: BatchFactory
) -> None:
    cfg = tiny_config()
    model = build_model(cfg).eval()
    batch = random_batch(cfg, b=2)
    tokens = batch["tokens"][:, :-1]
    out = model(batch["before"], batch["after"], tokens)
    fb, fa = model.extract(batch["before"]), model.extract(batch["after"])
    cached = model.encode(Features(fb.coarse.clone(), fb.fine.clone()), fa)  # as from a feature cache
    assert torch.allclose(out.memory, cached.memory, atol=1e-6)
    assert out.logits is not None
    assert torch.allclose(out.logits, model.decode(cached.memory, tokens), atol=1e-5)


def test_generate_greedy(tiny_config: ConfigFactory, random_batch: BatchFactory) -> None:
    cfg = tiny_config()
    model = build_model(cfg).eval()
    batch = random_batch(cfg, b=3)
    ids, out = model.generate(batch["before"], batch["after"], max_len=8)
    assert ids.dtype == torch.long and ids.shape[0] == 3 and 1 <= ids.shape[1] <= 7
    assert out.memory.shape == (3, cfg.tokens, cfg.dim)
    for row in ids.tolist():  # after <END>, only <NULL>
        if 3 in row:
            assert all(t == 0 for t in row[row.index(3) + 1 :])
    # Greedy means: each id is the argmax of the decoder given the prefix.
    prefix = torch.cat([torch.full((3, 1), 2), ids], dim=1)
    logits = model.decode(out.memory, prefix[:, :-1])
    ended = torch.cumsum((prefix[:, :-1] == 3).long(), dim=1) > 0
    assert torch.equal(logits.argmax(-1)[~ended], ids[~ended])


def test_caption_loss_ignores_null() -> None:
    logits = torch.randn(2, 4, 10)
    tokens = torch.tensor([[2, 5, 3, 0, 0], [2, 6, 7, 8, 3]])
    changed = logits.clone()
    changed[0, 2:] = 100.0  # the steps whose targets are <NULL>
    assert caption_loss(logits, tokens).item() == pytest.approx(caption_loss(changed, tokens).item())
    with pytest.raises(ValueError, match="steps"):
        caption_loss(logits, tokens[:, :-1])


def test_mask_loss_only_where_masks_exist() -> None:
    logits = torch.randn(3, 1, 8, 8, requires_grad=True)
    target = (torch.rand(3, 8, 8) > 0.5).float()
    none = mask_loss(logits, target, torch.tensor([False, False, False]))
    assert none.item() == 0.0
    none.backward()
    assert logits.grad is not None and not logits.grad.any()
    one = mask_loss(logits, target, torch.tensor([False, True, False]))
    alone = mask_loss(logits[1:2], target[1:2], torch.tensor([True]))
    assert one.item() == pytest.approx(alone.item())
    perfect = mask_loss(target[:, None] * 40 - 20, target, torch.tensor([True, True, True]))
    assert perfect.item() < 1e-3


def test_total_loss_weights(tiny_config: ConfigFactory, random_batch: BatchFactory) -> None:
    cfg = tiny_config()
    model = build_model(cfg)
    batch = random_batch(cfg)
    out = model(batch["before"], batch["after"], batch["tokens"][:, :-1], route=batch["changeflag"])
    warm, p0 = total_loss(out, batch, router_weight=0.0, mask_weight=0.0)
    full, p1 = total_loss(out, batch, router_weight=0.8, mask_weight=1.0)
    assert warm.item() == pytest.approx(p0["caption"] + p0["balance"], rel=1e-5)
    expected = p1["caption"] + 0.8 * p1["router"] + p1["balance"] + p1["mask"]
    assert full.item() == pytest.approx(expected, rel=1e-5)
    assert 0 < p1["balance"] < 0.01  # weighted by cfg.hasd.balance_weight = 0.001 (raw loss ~1)
    with pytest.raises(ValueError, match="tokens"):
        total_loss(out._replace(logits=None), batch, router_weight=0.8)
