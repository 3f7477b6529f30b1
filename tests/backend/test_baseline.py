"""The image-differencing baseline finds a planted change and ignores a global illumination change."""

from __future__ import annotations

import numpy as np

from hisem.data.readers import read_dataset
from hisem.evaluation.baseline import difference_baseline, difference_mask, otsu_threshold
from tests.backend.conftest import SHARED_DATA


def test_otsu_splits_two_populations() -> None:
    values = np.concatenate([np.full(1000, 10.0), np.full(200, 200.0)])
    assert 10.0 < otsu_threshold(values) < 200.0


def test_difference_mask_finds_the_square_not_the_brightness() -> None:
    rng = np.random.default_rng(0)
    before = rng.integers(60, 120, (64, 64, 3)).astype(np.uint8)
    after = np.clip(before.astype(int) * 1.3 + 10, 0, 255).astype(np.uint8)  # brighter everywhere
    after[20:36, 30:46] = (230, 30, 30)  # a new red roof
    mask = difference_mask(before, after)
    truth = np.zeros((64, 64), np.uint8)
    truth[20:36, 30:46] = 1
    assert (mask & truth).sum() >= 0.95 * truth.sum()
    assert (mask & ~truth.astype(bool)).sum() < 0.02 * mask.size


def test_baseline_on_real_dsifn_pairs() -> None:
    records = read_dataset(SHARED_DATA / "dsifn")
    scores = difference_baseline(records)
    assert scores["n"] == 10
    assert 0.0 < scores["F1"] < 1.0
