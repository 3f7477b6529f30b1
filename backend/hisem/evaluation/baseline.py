"""A plain image-differencing change detector: the floor any learned change mask must beat.

Per pixel, the Euclidean distance between the two dates' RGB values (after matching each date's
mean and spread, so a global illumination change does not count), thresholded per image with Otsu's
method. It is the classic change-vector-analysis baseline of remote sensing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from hisem.data.readers import PairRecord, binarize_mask, load_mask
from hisem.evaluation.change import MaskMetrics


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


def difference_mask(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 pair -> (H, W) uint8 0/1 change mask by change-vector magnitude and Otsu."""
    a = before.astype(np.float32)
    b = after.astype(np.float32)
    # Radiometric normalisation per band: the after image takes the before image's mean and spread.
    b = (b - b.mean((0, 1))) / (b.std((0, 1)) + 1e-6) * a.std((0, 1)) + a.mean((0, 1))
    magnitude = np.sqrt(((a - b) ** 2).sum(axis=-1))  # (H, W)
    return (magnitude > otsu_threshold(magnitude)).astype(np.uint8)


def _rgb(path: object) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def difference_baseline(records: Sequence[PairRecord]) -> dict[str, float | int | None]:
    """Mask precision / recall / F1 / IoU / cIoU of the differencing baseline over labelled records."""
    metrics = MaskMetrics()
    for record in records:
        if record.mask is None or record.before is None or record.after is None:
            continue
        metrics.update(difference_mask(_rgb(record.before), _rgb(record.after)), binarize_mask(load_mask(record.mask)))
    return metrics.compute()
