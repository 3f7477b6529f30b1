"""Run a trained PyTorch checkpoint over dataset records: captions, change probabilities, masks.

Used by validation during training and by ``hisem evaluate --model``. The ONNX Runtime engine is the
inference path of the product; this one scores checkpoints and serves as its parity reference.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hisem.data.dataset import ChangeCaptionDataset
from hisem.data.readers import PairRecord
from hisem.data.vocab import Vocab
from hisem.model import HiSem, load_checkpoint
from hisem.model.decoding import greedy_decode

log = logging.getLogger(__name__)

MASK_THRESHOLD = 0.5


@dataclass
class Predictions:
    """Per-pair outputs in the order of the records."""

    captions: list[str] | None
    change_prob: list[float]
    packed_masks: list[tuple[np.ndarray, tuple[int, int]]] | None = None  # bit-packed 0/1, (H, W)

    @property
    def masks(self) -> Iterator[np.ndarray] | None:
        """Predicted masks (H, W) uint8 0/1, unpacked one at a time so memory stays small."""
        if self.packed_masks is None:
            return None
        return (
            np.unpackbits(bits, count=h * w).reshape(h, w) for bits, (h, w) in self.packed_masks
        )


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder's best.pt (last.pt when no best one was saved)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).exists():
                return path / name
        raise FileNotFoundError(f"{path}: a run folder without best.pt or last.pt")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint or run folder")
    return path


def _mask_size(record: PairRecord, default: int) -> tuple[int, int]:
    if record.mask is None:
        return default, default
    with Image.open(record.mask) as img:
        return img.height, img.width


@torch.no_grad()
def predict_dataset(
    model: HiSem,
    dataset: Dataset,
    records: Sequence[PairRecord],
    vocab: Vocab,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    with_masks: bool = False,
    progress: bool = True,
) -> Predictions:
    """Greedy captions (the router decides the path), P(changed) and optionally thresholded masks.

    ``dataset`` yields images (``before``/``after``) or cached features (see training.batches);
    masks are resized to each record's label size before thresholding.
    """
    from hisem.training.batches import batch_features, to_device

    was_training = model.training
    model.eval()
    device = torch.device(device)
    captions: list[str] = []
    probs: list[float] = []
    packed: list[tuple[np.ndarray, tuple[int, int]]] = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    start = 0
    for batch in tqdm(loader, desc="predicting", unit="batch", disable=not progress):
        batch = to_device(batch, device)
        feats = batch_features(batch)
        if feats is None:
            feats = (model.extract(batch["before"]), model.extract(batch["after"]))
        out = model.encode(feats[0], feats[1])
        tokens = greedy_decode(model, out.memory)
        captions.extend(" ".join(vocab.decode(row.tolist())) for row in tokens.cpu())
        # The calibrated operating point, as the inference graphs apply it (export/graphs.py).
        logits = out.router_logits.float() + out.router_logits.new_tensor([0.0, model.cfg.flag_bias]).float()
        probs.extend(torch.softmax(logits, dim=-1)[:, 1].cpu().tolist())
        if with_masks and out.mask_logits is not None:
            for i, logits in enumerate(out.mask_logits.float() + model.cfg.mask_bias):
                h, w = _mask_size(records[start + i], logits.shape[-1])
                prob = torch.sigmoid(F.interpolate(logits[None], size=(h, w), mode="bilinear"))[0, 0]
                bits = np.packbits((prob >= MASK_THRESHOLD).cpu().numpy().astype(np.uint8).ravel())
                packed.append((bits, (h, w)))
        start += len(tokens)
    model.train(was_training)
    return Predictions(captions, probs, packed if with_masks else None)


def predict_records(
    model_path: str, records: list[PairRecord], batch_size: int = 32, device: str = "cpu"
) -> Predictions:
    """Load a checkpoint (or a run folder's best one) and predict every record."""
    checkpoint = resolve_checkpoint(model_path)
    model, vocab_dict, _ = load_checkpoint(checkpoint, map_location=device)
    model.to(device)
    vocab = Vocab.from_dict(vocab_dict)
    enc = model.cfg.encoder
    dataset = ChangeCaptionDataset(
        records, vocab, image_size=enc.image_size, mean=enc.mean, std=enc.std,
        max_len=model.cfg.decoder.max_len, train=False,
    )
    with_masks = any(r.mask is not None for r in records)
    log.info("predicting %d pairs with %s", len(records), checkpoint)
    return predict_dataset(model, dataset, records, vocab, batch_size, device, with_masks=with_masks)
