"""The torch Dataset that feeds training and evaluation from ``PairRecord`` lists.

Data contract: item ``i`` is a dict

=============== ====================== ========================================================
key             type / shape           meaning
=============== ====================== ========================================================
``before``      float32 (3, S, S)      date-1 RGB, ``(x / 255 - mean) / std``; PIL bilinear
                                       resize only when the file is not already S x S
``after``       float32 (3, S, S)      date 2, same processing
``mask``        float32 (1, S, S)      1 = changed (any non-zero label pixel), nearest resize;
                                       all zeros when the pair has no mask file
``has_mask``    bool                   whether ``mask`` comes from a file (mask loss only then)
``tokens``      int64 (max_len,)       one reference: ``<START> words <END> <NULL>...``
``has_caption`` bool                   False for caption-less pairs (``tokens`` all ``<NULL>``;
                                       they never get the no-change sentence either)
``changeflag``  int64 ()               0 unchanged, 1 changed, -1 unknown
``index``       int                    position in ``records``
=============== ====================== ========================================================

Which reference: in train mode a random one on every call (the release's recipe: one random
reference per pair per step); with ``canonical_unchanged``, unchanged training pairs always get
"the scene is the same as before" (the release replaces all their references with it). In eval
mode the first reference, so that runs are repeatable.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, get_worker_info

from hisem.data.captions import NO_CHANGE_SENTENCE
from hisem.data.readers import PairRecord, binarize_mask, load_mask
from hisem.data.vocab import Vocab


class ChangeCaptionDataset(Dataset):
    """Images, change mask, one encoded reference and the change flag of each record."""

    def __init__(
        self,
        records: Sequence[PairRecord],
        vocab: Vocab,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        max_len: int = 41,
        train: bool = False,
        canonical_unchanged: bool = True,
        seed: int = 0,
    ) -> None:
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        if len(mean) != 3 or len(std) != 3:
            raise ValueError("mean and std need one value per RGB band")
        self.records = list(records)
        self.vocab = vocab
        self.image_size = image_size
        self.mean = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
        self.max_len = max_len
        self.train = train
        self.canonical_unchanged = canonical_unchanged
        self.seed = seed
        # Encoded once, as numpy rows: __getitem__ only picks one, and forked DataLoader workers do
        # not touch (and so copy) millions of Python int objects through their refcounts.
        self._encoded = [
            np.asarray([vocab.encode(c, max_len) for c in r.captions], dtype=np.int64).reshape(-1, max_len)
            for r in self.records
        ]
        self._canonical = np.asarray(vocab.encode(NO_CHANGE_SENTENCE.split(), max_len), dtype=np.int64)
        self._main_rng = random.Random(seed)
        self._worker_rng: tuple[int, random.Random] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def _rng(self) -> random.Random:
        """A generator per DataLoader worker: a copied ``Random(seed)`` would repeat in every worker.

        ``worker_info.seed`` differs per worker and per epoch (torch draws it from the main process
        generator), so mixing it with ``seed`` keeps runs reproducible and the workers independent.
        """
        info = get_worker_info()
        if info is None:
            return self._main_rng
        if self._worker_rng is None or self._worker_rng[0] != info.seed:
            self._worker_rng = (info.seed, random.Random(hash((self.seed, info.seed))))
        return self._worker_rng[1]

    def _tokens(self, index: int) -> tuple[np.ndarray, bool]:
        encoded = self._encoded[index]  # (n_references, max_len)
        if len(encoded) == 0:
            return np.full(self.max_len, self.vocab.null_id, dtype=np.int64), False
        if self.train and self.canonical_unchanged and self.records[index].changeflag == 0:
            return self._canonical, True
        if self.train:
            return encoded[self._rng().randrange(len(encoded))], True
        return encoded[0], True

    def _mask(self, record: PairRecord) -> np.ndarray | None:
        if record.mask is None:
            return None
        mask = binarize_mask(load_mask(record.mask))
        size = self.image_size
        if mask.shape != (size, size):
            # Nearest keeps the mask binary; bilinear would invent fractional labels at the edges.
            mask = np.asarray(Image.fromarray(mask).resize((size, size), Image.NEAREST))
        return mask.astype(np.float32)[None]  # (1, S, S)

    def _image(self, path: Path | None, which: str, name: str) -> torch.Tensor:
        if path is None:
            raise FileNotFoundError(f"pair {name!r} has no {which} image")
        with Image.open(path) as img:
            img = img.convert("RGB")
            if img.size != (self.image_size, self.image_size):
                img = img.resize((self.image_size, self.image_size), Image.BILINEAR)
            x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        return torch.from_numpy((x / 255.0 - self.mean) / self.std)

    def targets(self, index: int) -> dict[str, Any]:
        """Everything but the images (for cached-feature training, which never decodes them)."""
        record = self.records[index]
        tokens, has_caption = self._tokens(index)
        mask = self._mask(record)
        size = self.image_size
        return {
            "mask": torch.from_numpy(mask) if mask is not None else torch.zeros(1, size, size),
            "has_mask": mask is not None,
            "tokens": torch.tensor(tokens, dtype=torch.long),  # a copy: the cached row stays intact
            "has_caption": has_caption,
            "changeflag": torch.tensor(
                -1 if record.changeflag is None else record.changeflag, dtype=torch.long
            ),
            "index": index,
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        item = self.targets(index)
        item["before"] = self._image(record.before, "before", record.name)
        item["after"] = self._image(record.after, "after", record.name)
        return item
