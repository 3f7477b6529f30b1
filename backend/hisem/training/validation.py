"""Per-epoch validation: greedy captions scored as the field scores them, plus the change flag."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from hisem.data.captions import normalize_caption
from hisem.data.vocab import Vocab
from hisem.evaluation.captions import score_captions
from hisem.evaluation.predict import predict_dataset
from hisem.model import HiSem


def dataset_records(dataset: Dataset) -> list:
    """The records behind an image dataset or a cached-feature one."""
    return list(getattr(dataset, "records", None) or dataset.base.records)


def validate(
    model: HiSem, dataset: Dataset, vocab: Vocab, batch_size: int, device: torch.device
) -> dict[str, float]:
    """Validation S*m (model selection), BLEU-4, CIDEr and change-flag accuracy, keys prefixed val_."""
    records = dataset_records(dataset)
    preds = predict_dataset(model, dataset, records, vocab, batch_size, device, progress=False)
    references = [[normalize_caption(" ".join(c)) for c in r.captions] for r in records]
    scores = score_captions(preds.captions or [], references)
    flags = [int(p >= 0.5) for p in preds.change_prob]
    truth = [int(r.changeflag or 0) for r in records]
    accuracy = sum(f == t for f, t in zip(flags, truth, strict=True)) / max(len(truth), 1)
    return {
        "val_S*m": float(scores["S*m"]),
        "val_BLEU-4": float(scores["BLEU-4"]),
        "val_CIDEr": float(scores["CIDEr"]),
        "val_flag_accuracy": accuracy,
    }
