"""Change metrics: the image-level change flag and the pixel-level change mask.

"Changed" is the positive class throughout. A ratio whose denominator is zero is None (undefined),
never silently 0 or 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _ratio(num: int | float, den: int | float) -> float | None:
    return float(num) / float(den) if den else None


def change_flag_metrics(truth: Sequence[int], predicted: Sequence[int]) -> dict[str, float | int | None]:
    """Accuracy, precision and recall of the change flag (1 = changed), plus the pair count."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(predicted)} predicted flags for {len(truth)} true ones")
    t = np.asarray(truth, dtype=bool)
    p = np.asarray(predicted, dtype=bool)
    tp = int(np.sum(t & p))
    return {
        "accuracy": _ratio(int(np.sum(t == p)), len(t)),
        "precision": _ratio(tp, int(p.sum())),
        "recall": _ratio(tp, int(t.sum())),
        "n": len(t),
    }


class MaskMetrics:
    """Streaming change-mask scores: ``update`` once per image, ``compute`` at the end.

    Only counts are kept (true/false positives, false negatives, and the running sum of per-image
    IoU), so memory does not grow with the number or size of images.

    - ``precision``, ``recall``, ``F1``: from the pixel counts accumulated over the whole set.
    - ``IoU``: the mean over images of each image's own IoU of the changed class. Images where
      both the prediction and the truth are empty have no IoU and are left out of the mean
      (``n_iou`` says how many counted).
    - ``cIoU``: accumulated over the set, ΣP∩G / ΣP∪G (large changes weigh more).
    """

    def __init__(self) -> None:
        self.tp = 0
        self.fp = 0
        self.fn = 0
        self.iou_sum = 0.0
        self.n_iou = 0
        self.n = 0

    def update(self, pred_mask: np.ndarray, gt_mask: np.ndarray) -> None:
        """Add one image; non-zero = changed in both masks, which must have the same shape."""
        pred = np.asarray(pred_mask) > 0
        gt = np.asarray(gt_mask) > 0
        if pred.shape != gt.shape:
            raise ValueError(f"predicted mask {pred.shape} and reference mask {gt.shape} differ in shape")
        tp = int(np.count_nonzero(pred & gt))
        fp = int(np.count_nonzero(pred & ~gt))
        fn = int(np.count_nonzero(~pred & gt))
        self.tp += tp
        self.fp += fp
        self.fn += fn
        self.n += 1
        union = tp + fp + fn
        if union:
            self.iou_sum += tp / union
            self.n_iou += 1

    def compute(self) -> dict[str, float | int | None]:
        precision = _ratio(self.tp, self.tp + self.fp)
        recall = _ratio(self.tp, self.tp + self.fn)
        return {
            "precision": precision,
            "recall": recall,
            "F1": _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn),
            "IoU": _ratio(self.iou_sum, self.n_iou),
            "cIoU": _ratio(self.tp, self.tp + self.fp + self.fn),
            "n": self.n,
            "n_iou": self.n_iou,
        }


CHANGED_TILE_FRACTION = 0.01  # a tile with at least this share of changed pixels must be called changed


class TileFlagMetrics:
    """The per-tile change flag against a change mask: false alarms and misses, as an analyst meets them.

    A tile without a single changed pixel is an *unchanged* tile; one with at least
    ``CHANGED_TILE_FRACTION`` of its pixels changed is a *changed* tile; the few in between (a
    sliver of change) are counted (``minor_change_tiles``) but in neither rate, as either call is
    defensible there. ``false_alarm_rate`` = unchanged tiles called changed / unchanged tiles;
    ``miss_rate`` = changed tiles called unchanged / changed tiles. Accuracy, precision and recall
    are over the unchanged and changed tiles (changed = positive), ``n`` is their number.
    """

    def __init__(self) -> None:
        self.tiles = 0
        self.called = 0
        self.unchanged = 0
        self.false_alarms = 0
        self.changed = 0
        self.misses = 0

    def update(self, changed_fraction: float, called_changed: bool) -> None:
        """Add one tile: the share of its (valid) pixels the label marks changed, and the model's call."""
        self.tiles += 1
        self.called += int(called_changed)
        if changed_fraction <= 0.0:
            self.unchanged += 1
            self.false_alarms += int(called_changed)
        elif changed_fraction >= CHANGED_TILE_FRACTION:
            self.changed += 1
            self.misses += int(not called_changed)

    def compute(self) -> dict[str, float | int | None]:
        hits = self.changed - self.misses
        decided = self.unchanged + self.changed
        return {
            "false_alarm_rate": _ratio(self.false_alarms, self.unchanged),
            "miss_rate": _ratio(self.misses, self.changed),
            "tiles": self.tiles,
            "tiles_called_changed": self.called,
            "unchanged_tiles": self.unchanged,
            "false_alarms": self.false_alarms,
            "changed_tiles": self.changed,
            "misses": self.misses,
            "minor_change_tiles": self.tiles - decided,
            "accuracy": _ratio(decided - self.false_alarms - self.misses, decided),
            "precision": _ratio(hits, hits + self.false_alarms),
            "recall": _ratio(hits, self.changed),
            "n": decided,
            "changed_tile_fraction": CHANGED_TILE_FRACTION,
        }
