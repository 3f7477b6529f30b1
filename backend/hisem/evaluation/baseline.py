"""The floors any learned change mask must beat: image differencing and "every pixel changed".

- ``differencing``: grey |A − B| (ITU-R 601 luma, as PIL's "L" conversion), thresholded per pair
  with Otsu's method; the classic image-differencing detector of remote sensing, and one that an
  old grey photo paired with a colour one (AirChange's Archieve) does not break.
- ``all_changed``: every pixel changed; its F1 is 2p / (1 + p) with p the share of changed pixels,
  which a model that marks nearly everything (as the synthetic-only model does on real pairs) ties.

Both are scored at the label's own resolution on the stored A/B images, so they do not depend on
any model's GSD or tiling.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hisem.data.readers import PairRecord, binarize_mask, load_mask
from hisem.evaluation.change import MaskMetrics

BASELINES = ("differencing", "all_changed")


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The threshold that maximises the between-class variance of ``values``' histogram."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(hist)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(hist * centres)
    mean_low = mass_low / np.maximum(weight_low, 1)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(centres[int(np.argmax(between))])


def grey(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W) uint8 -> (H, W) uint8 luma, exactly PIL's ``convert("L")``."""
    if image.ndim == 2:
        return image.astype(np.uint8, copy=False)
    return np.asarray(Image.fromarray(image.astype(np.uint8, copy=False)).convert("L"))


def difference_mask(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """A pair (H, W, 3) or (H, W) uint8 -> (H, W) uint8 0/1: grey |A − B| above its Otsu threshold.

    A pair whose difference is the same everywhere (identical images) has nothing to split: no change.
    """
    diff = np.abs(grey(before).astype(np.int16) - grey(after).astype(np.int16))  # (H, W) 0..255
    if diff.min() == diff.max():
        return np.zeros(diff.shape, np.uint8)
    return (diff > otsu_threshold(diff)).astype(np.uint8)


def _image(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def baseline_scores(records: Sequence[PairRecord]) -> dict[str, dict[str, Any]]:
    """``{"differencing": scores, "all_changed": scores}`` over the labelled records (MaskMetrics keys)."""
    metrics = {name: MaskMetrics() for name in BASELINES}
    for record in records:
        if record.mask is None or record.before is None or record.after is None:
            continue
        truth = binarize_mask(load_mask(record.mask))
        metrics["differencing"].update(difference_mask(_image(record.before), _image(record.after)), truth)
        metrics["all_changed"].update(np.ones_like(truth), truth)
    return {name: m.compute() for name, m in metrics.items()}


def difference_baseline(records: Sequence[PairRecord]) -> dict[str, Any]:
    """Mask precision / recall / F1 / IoU / cIoU of the differencing baseline over labelled records."""
    return baseline_scores(records)["differencing"]
