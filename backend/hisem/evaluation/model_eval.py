"""Score a PyTorch checkpoint on dataset records: the one path behind `hisem evaluate --model` and
the model card."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hisem.data.readers import PairRecord, binarize_mask, load_mask
from hisem.data.vocab import Vocab
from hisem.evaluation.change import MaskMetrics
from hisem.evaluation.predict import Predictions, predict_records
from hisem.evaluation.report import build_report

CHANGE_THRESHOLD = 0.5  # a pair is "changed" when the router's P(changed) reaches this


def evaluate_model(
    model_path: str,
    records: Sequence[PairRecord],
    batch_size: int = 32,
    device: str = "cpu",
    field_vocab: Vocab | None = None,
) -> tuple[dict[str, Any], Predictions]:
    """The report of ``hisem.evaluation.report`` for a checkpoint's predictions, and the predictions."""
    missing = [r.name for r in records if r.before is None or r.after is None]
    if missing:
        raise ValueError(f"{len(missing)} pairs have no images (first: {missing[0]})")
    preds = predict_records(model_path, list(records), batch_size=batch_size, device=device)
    flags = [int(p >= CHANGE_THRESHOLD) for p in preds.change_prob]
    mask_metrics = None
    if preds.masks is not None:
        mask_metrics = MaskMetrics()
        # One mask at a time: the predictions stream, the references are read as they are needed.
        for record, pred in zip(records, preds.masks, strict=True):
            if record.mask is not None:
                mask_metrics.update(pred, binarize_mask(load_mask(record.mask)))
    report = build_report(
        records, captions=preds.captions, change_flags=flags, mask_metrics=mask_metrics, field_vocab=field_vocab
    )
    return report, preds
