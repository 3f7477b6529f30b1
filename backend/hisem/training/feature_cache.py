"""Frozen-backbone features computed once and memory-mapped for every later epoch.

Why: on 2 CPU cores the EfficientNet-Lite0 backbone costs far more than BDAM + HASD + decoder. With
``encoder.freeze`` its outputs never change, so they are computed once per pair (both dates), stored
as float16 ``.npy`` files and read back through ``np.load(mmap_mode="r")``: memory stays flat however
many pairs there are, and the page cache makes later epochs disk-free.

Layout of a cache folder::

    meta.json        names of the pairs, shapes, the backbone fingerprint
    coarse.npy       (N, 2, Cc, g, g) float16   index 1: 0 = before, 1 = after
    fine.npy         (N, 2, Cf, h, w) float16
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hisem.model import Features, HiSem

log = logging.getLogger(__name__)

CACHE_FORMAT = "hisem-feature-cache-v1"


@torch.no_grad()
def backbone_fingerprint(model: HiSem, device: str = "cpu") -> str:
    """What the frozen backbone computes, hashed: its output on a fixed input, plus its settings.

    Probing the function rather than hashing named weights keeps this independent of how the
    encoder is laid out; a cache is reused only when the backbone would give the same features.
    """
    enc = model.cfg.encoder
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(1, 3, enc.image_size, enc.image_size, generator=generator).to(device)
    was_training = model.training
    model.eval()
    out = model.extract(probe)
    model.train(was_training)
    digest = hashlib.sha256(json.dumps(model.cfg.encoder.__dict__, sort_keys=True, default=str).encode())
    for tensor in (out.coarse, out.fine):
        digest.update(np.round(tensor.cpu().numpy().astype(np.float64), 4).tobytes())
    return digest.hexdigest()[:16]


class FeatureCache:
    """Read access to one cache folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.meta = json.loads((self.directory / "meta.json").read_text(encoding="utf-8"))
        if self.meta.get("format") != CACHE_FORMAT:
            raise ValueError(f"{self.directory}: not a {CACHE_FORMAT} folder")
        self.coarse = np.load(self.directory / "coarse.npy", mmap_mode="r")
        self.fine = np.load(self.directory / "fine.npy", mmap_mode="r")

    def __len__(self) -> int:
        return int(self.coarse.shape[0])

    def pair(self, index: int) -> tuple[Features, Features]:
        """Features of one pair's before and after images, float32, without a batch axis."""
        coarse = torch.from_numpy(np.asarray(self.coarse[index], dtype=np.float32))  # (2, Cc, g, g)
        fine = torch.from_numpy(np.asarray(self.fine[index], dtype=np.float32))  # (2, Cf, h, w)
        return Features(coarse[0], fine[0]), Features(coarse[1], fine[1])

    @staticmethod
    def is_valid(directory: Path, names: Sequence[str], fingerprint: str) -> bool:
        meta_path = Path(directory) / "meta.json"
        if not meta_path.exists():
            return False
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return (
            meta.get("format") == CACHE_FORMAT
            and meta.get("complete") is True
            and meta.get("fingerprint") == fingerprint
            and meta.get("names") == list(names)
        )


@torch.no_grad()
def build_feature_cache(
    model: HiSem,
    images: Dataset,
    names: Sequence[str],
    directory: Path,
    batch_size: int = 32,
    device: str = "cpu",
    workers: int = 0,
) -> FeatureCache:
    """Run the frozen backbone once over ``images`` (items with ``before``/``after``) into ``directory``.

    Reuses a complete cache made by the same backbone for the same pairs; otherwise rebuilds it.
    """
    directory = Path(directory)
    fingerprint = backbone_fingerprint(model, device)
    if FeatureCache.is_valid(directory, names, fingerprint):
        log.info("reusing cached features in %s", directory)
        return FeatureCache(directory)
    directory.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    loader = DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=workers)
    coarse_mm = fine_mm = None
    start = 0
    for batch in tqdm(loader, desc=f"caching features ({len(names)} pairs)", unit="batch"):
        before = model.extract(batch["before"].to(device))
        after = model.extract(batch["after"].to(device))
        n = before.coarse.shape[0]
        if coarse_mm is None:
            total = len(names)
            coarse_mm = open_memmap(
                directory / "coarse.npy", mode="w+", dtype=np.float16,
                shape=(total, 2, *before.coarse.shape[1:]),
            )
            fine_mm = open_memmap(
                directory / "fine.npy", mode="w+", dtype=np.float16,
                shape=(total, 2, *before.fine.shape[1:]),
            )
        coarse_mm[start : start + n, 0] = before.coarse.cpu().numpy()
        coarse_mm[start : start + n, 1] = after.coarse.cpu().numpy()
        fine_mm[start : start + n, 0] = before.fine.cpu().numpy()
        fine_mm[start : start + n, 1] = after.fine.cpu().numpy()
        start += n
    if coarse_mm is None:
        raise ValueError("no pairs to cache")
    coarse_mm.flush()
    fine_mm.flush()
    del coarse_mm, fine_mm
    meta = {
        "format": CACHE_FORMAT,
        "complete": True,
        "fingerprint": fingerprint,
        "names": list(names),
    }
    # meta.json last: a cache interrupted while writing is never mistaken for a complete one.
    (directory / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    model.train(was_training)
    return FeatureCache(directory)
