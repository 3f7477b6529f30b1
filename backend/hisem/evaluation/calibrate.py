"""The operating point: the change thresholds chosen on validation data, folded into the model.

A model trained on a mix of synthetic and real-background pairs is not calibrated: its best
threshold for "this tile changed" and for "this pixel changed" is rarely 0.5. Every client of
the product (CLI, service, plugin) thresholds at 0.5 by default, so rather than teach each of
them a per-model number, the chosen thresholds t become logit offsets -logit(t) stored in the
model's config (``flag_bias``, ``mask_bias``) and added by the inference graphs.

Choice: the flag threshold maximises the accuracy of the change flag over the validation pairs
(within one standard error, nearest 0.5: see ``_best_flag``);
the mask threshold maximises the F1 of the changed class over all validation pixels summed
(unchanged pairs included, so false alarms count), as ``hisem evaluate`` scores masks. Both read
histograms of the probabilities, so any number of pairs costs one pass.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from hisem.data.dataset import ChangeCaptionDataset
from hisem.data.readers import read_dataset
from hisem.data.vocab import Vocab
from hisem.model import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

BINS = 1000  # probability histogram resolution: thresholds are chosen to 0.001


@dataclass(frozen=True)
class OperatingPoint:
    flag_threshold: float
    mask_threshold: float
    flag_accuracy: float  # at flag_threshold, on the calibration pairs
    flag_accuracy_at_half: float  # at 0.5 before calibration
    mask_f1: float
    mask_f1_at_half: float
    pairs: int

    @property
    def flag_bias(self) -> float:
        return -_logit(self.flag_threshold)

    @property
    def mask_bias(self) -> float:
        return -_logit(self.mask_threshold)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _best_flag(prob: np.ndarray, flag: np.ndarray) -> tuple[float, float, float]:
    """(threshold, accuracy there, accuracy at 0.5) over the pairs with a known flag.

    The one-standard-error rule: of the thresholds whose accuracy is within one binomial standard
    error of the best, the one nearest 0.5. Accuracy over a few hundred pairs is flat over a wide
    range, and its argmax can sit at an extreme (0.005 on the default model's validation pairs, for
    0.4 % more accuracy) that would flag every real tile whose light changed.
    """
    known = flag >= 0
    prob, flag = prob[known], flag[known]
    grid = np.arange(1, BINS) / BINS
    acc = ((prob[None] >= grid[:, None]) == (flag[None] == 1)).mean(axis=1)
    se = float(np.sqrt(acc.max() * (1 - acc.max()) / max(len(prob), 1)))
    close = np.nonzero(acc >= acc.max() - se)[0]
    best = int(close[np.abs(grid[close] - 0.5).argmin()])
    return float(grid[best]), float(acc[best]), float(((prob >= 0.5) == (flag == 1)).mean())


def _best_mask(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float, float]:
    """(threshold, F1 there, F1 at 0.5) from histograms of P(changed) on changed / unchanged pixels."""
    tp = pos[::-1].cumsum()[::-1]  # pixels at or above each bin's lower edge
    fp = neg[::-1].cumsum()[::-1]
    fn = pos.sum() - tp
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    best = int(f1[1:].argmax()) + 1  # threshold 0 would call everything changed
    return best / BINS, float(f1[best]), float(f1[BINS // 2])


@torch.no_grad()
def measure(checkpoint: Path, data: Path, split: str = "val", limit: int | None = None,
            batch_size: int = 32, device: str = "cpu") -> OperatingPoint:
    """Run the model over a split and choose the operating point (module docstring)."""
    model, vocab_dict, _ = load_checkpoint(checkpoint, map_location=device)
    model.to(device).eval()
    if model.cfg.flag_bias or model.cfg.mask_bias:
        raise ValueError(f"{checkpoint}: already calibrated (flag_bias {model.cfg.flag_bias:.3f}, "
                         f"mask_bias {model.cfg.mask_bias:.3f}); calibrate the uncalibrated checkpoint")
    records = read_dataset(data, split=split)[:limit]
    if not records:
        raise ValueError(f"{data}: no pairs in the {split!r} split")
    enc = model.cfg.encoder
    dataset = ChangeCaptionDataset(records, Vocab.from_dict(vocab_dict), image_size=enc.image_size, mean=enc.mean,
                                   std=enc.std, max_len=model.cfg.decoder.max_len, train=False)
    probs, flags = [], []
    pos, neg = np.zeros(BINS, np.int64), np.zeros(BINS, np.int64)
    for batch in tqdm(DataLoader(dataset, batch_size=batch_size), desc="calibrating", unit="batch"):
        out = model.encode(model.extract(batch["before"].to(device)), model.extract(batch["after"].to(device)))
        probs.append(torch.softmax(out.router_logits.float(), dim=-1)[:, 1].cpu().numpy())
        flags.append(batch["changeflag"].numpy())
        if out.mask_logits is None:
            continue
        has = batch["has_mask"].bool()
        target = batch["mask"].reshape(len(has), 1, *batch["mask"].shape[-2:]).float()[has]
        prob = torch.sigmoid(F.interpolate(out.mask_logits.float().cpu()[has], size=target.shape[-2:],
                                           mode="bilinear", align_corners=False))
        bins = (prob * BINS).long().clamp_(0, BINS - 1)
        pos += np.bincount(bins[target > 0.5].numpy(), minlength=BINS)
        neg += np.bincount(bins[target <= 0.5].numpy(), minlength=BINS)
    flag_t, flag_acc, flag_half = _best_flag(np.concatenate(probs), np.concatenate(flags))
    mask_t, mask_f1, mask_half = _best_mask(pos, neg) if pos.sum() else (0.5, 0.0, 0.0)
    return OperatingPoint(flag_t, mask_t, flag_acc, flag_half, mask_f1, mask_half, len(records))


def calibrate(checkpoint: Path, data: Path, out: Path, split: str = "val", limit: int | None = None,
              device: str = "cpu") -> OperatingPoint:
    """Measure the operating point and write the calibrated checkpoint to ``out``."""
    point = measure(checkpoint, data, split, limit, device=device)
    model, vocab_dict, extra = load_checkpoint(checkpoint, map_location="cpu")
    model.cfg = replace(model.cfg, flag_bias=point.flag_bias, mask_bias=point.mask_bias)
    extra = {**extra, "calibration": {**point.__dict__, "data": str(data), "split": split}}
    save_checkpoint(out, model, vocab_dict, extra)
    log.info("operating point: flag %.3f (accuracy %.4f, at 0.5 %.4f), mask %.3f (F1 %.4f, at 0.5 %.4f)",
             point.flag_threshold, point.flag_accuracy, point.flag_accuracy_at_half,
             point.mask_threshold, point.mask_f1, point.mask_f1_at_half)
    return point
