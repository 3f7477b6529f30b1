"""The image-differencing baseline (grey |A-B|, Otsu) finds a planted change and nothing in unchanged pairs."""

from __future__ import annotations

import numpy as np

from hisem.data.readers import read_dataset
from hisem.evaluation.baseline import difference_baseline, difference_mask, grey, otsu_threshold
from tests.backend.conftest import SHARED_DATA


def test_otsu_splits_two_populations() -> None:
    values = np.concatenate([np.full(1000, 10.0), np.full(200, 200.0)])
    assert 10.0 < otsu_threshold(values) < 200.0


def test_difference_mask_finds_a_new_roof() -> None:
    rng = np.random.default_rng(0)
    before = np.repeat(rng.integers(60, 80, (64, 64, 1)), 3, axis=2).astype(np.uint8)  # grey ground
    after = before.copy()
    after[20:36, 30:46] = (230, 230, 210)  # a new bright roof
    mask = difference_mask(before, after)
    truth = np.zeros((64, 64), np.uint8)
    truth[20:36, 30:46] = 1
    assert np.array_equal(mask, truth)


def test_nothing_changed_gives_an_empty_mask() -> None:
    """Identical images, and a colour image against its own grey copy (AirChange's old grey photo)."""
    rng = np.random.default_rng(1)
    colour = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    assert not difference_mask(colour, colour).any()
    grey_copy = np.repeat(grey(colour)[..., None], 3, axis=2)
    assert not difference_mask(grey_copy, colour).any()
    assert not difference_mask(grey(colour), colour).any()


def test_baseline_on_real_dsifn_pairs() -> None:
    records = read_dataset(SHARED_DATA / "dsifn")
    scores = difference_baseline(records)
    assert scores["n"] == 10
    assert 0.0 < scores["F1"] < 1.0
