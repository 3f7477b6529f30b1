"""A tiny model must be able to memorise one fixed batch: the end-to-end sanity check of training."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from hisem.model import HiSemConfig, build_model, total_loss


def test_tiny_overfits_one_batch(
    tiny_config: Callable[..., HiSemConfig], random_batch: Callable[..., dict[str, Tensor]]
) -> None:
    cfg = tiny_config()
    model = build_model(cfg).train()
    batch = random_batch(cfg, b=4, t=10, seed=7)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(150):
        out = model(batch["before"], batch["after"], batch["tokens"][:, :-1], route=batch["changeflag"])
        loss, parts = total_loss(out, batch, router_weight=0.8)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(parts)
    first, last = losses[0], losses[-1]
    assert last["loss"] < 0.25 * first["loss"]
    assert last["caption"] < 0.1  # the four captions are memorised
    assert last["router"] < 0.1
    model.eval()
    ids, out = model.generate(batch["before"], batch["after"])
    assert torch.equal(out.router_logits.argmax(-1), batch["changeflag"])
    target = batch["tokens"][:, 1:]  # words, <END>, <NULL> padding: the layout generate returns
    generated = torch.zeros_like(target)
    n = min(ids.shape[1], target.shape[1])
    generated[:, :n] = ids[:, :n]
    assert torch.equal(generated, target)  # greedy decoding reproduces the memorised captions
