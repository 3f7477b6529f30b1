"""Shared helpers for the model tests: tiny configs and random batches, built at test time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import torch
from torch import Tensor

from hisem.model.config import HiSemConfig, preset

VOCAB = 24


def _tiny_config(**sections: object) -> HiSemConfig:
    """The tiny preset with sections replaced by keyword, e.g. ``tiny_config(bdam={"enabled": False})``."""
    cfg = preset("tiny", vocab_size=VOCAB)
    for name, changes in sections.items():
        cfg = replace(cfg, **{name: replace(getattr(cfg, name), **changes)})
    return cfg


def _random_batch(cfg: HiSemConfig, b: int = 4, t: int = 10, seed: int = 0) -> dict[str, Tensor]:
    """Images, full token rows (<START> ... <END> <NULL>...), change flags and masks for ``b`` pairs."""
    g = torch.Generator().manual_seed(seed)
    s = cfg.encoder.image_size
    tokens = torch.randint(4, cfg.vocab_size, (b, t), generator=g)
    tokens[:, 0] = 2
    lengths = torch.arange(b) % 3 + t - 4  # a few padded rows
    for i, n in enumerate(lengths.tolist()):
        tokens[i, n] = 3
        tokens[i, n + 1 :] = 0
    return {
        "before": torch.randn(b, 3, s, s, generator=g),
        "after": torch.randn(b, 3, s, s, generator=g),
        "tokens": tokens,
        "changeflag": torch.arange(b) % 2,
        "mask": (torch.rand(b, 1, s, s, generator=g) > 0.7).float(),
        "has_mask": torch.tensor([i % 4 != 3 for i in range(b)]),
    }


@pytest.fixture
def tiny_config() -> Callable[..., HiSemConfig]:
    return _tiny_config


@pytest.fixture
def random_batch() -> Callable[..., dict[str, Tensor]]:
    return _random_batch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
