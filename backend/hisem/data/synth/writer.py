"""Writing many pairs in the LEVIR-CC layout, in parallel and reproducibly.

    OUT/images/{train,val,test}/{A,B,label}/{split}_{n:06d}.png   (n counts from 1 per split)
    OUT/LevirCCcaptions.json                                       (LEVIR-CC's schema)

Pair i draws from ``SeedSequence(seed, spawn_key=(PAIR_STREAM, i))`` and nothing else, so its
files are byte-identical whatever the number of workers or the order they finish in.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from hisem.data.synth.pair import make_pair

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
PAIR_STREAM, CHANGE_STREAM = 0, 1  # independent random streams under one user seed
CAPTIONS_FILE = "LevirCCcaptions.json"
# Noisy images barely compress: run-length zlib is as small as level 6 and twice as fast as level 1.
PNG_OPTIONS = {"compress_level": 1, "compress_type": zlib.Z_RLE}


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to render and write pair ``index`` (0-based, over all splits)."""

    out: Path
    seed: int
    size: int
    gsd: float


@dataclass(frozen=True)
class Slot:
    index: int
    split: str
    name: str
    changed: bool


def plan(pairs: int, fractions: tuple[float, float, float], unchanged: float, seed: int) -> list[Slot]:
    """Split by index order; within each split exactly round(n * unchanged) pairs stay unchanged."""
    if pairs < 1:
        raise ValueError("--pairs must be at least 1")
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    if not 0.0 <= unchanged <= 1.0:
        raise ValueError(f"--unchanged-fraction must be in [0, 1], got {unchanged}")
    n_train = round(pairs * fractions[0])
    n_val = min(round(pairs * fractions[1]), pairs - n_train)
    counts = (n_train, n_val, pairs - n_train - n_val)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(CHANGE_STREAM,)))
    slots: list[Slot] = []
    for split, n in zip(SPLITS, counts, strict=True):
        still = np.zeros(n, bool)
        still[rng.permutation(n)[: round(n * unchanged)]] = True
        first = len(slots)
        slots += [Slot(first + k, split, f"{split}_{k + 1:06d}.png", not still[k]) for k in range(n)]
    return slots


def _render_and_write(job: Job, slot: Slot) -> list[str]:
    pair = make_pair(np.random.SeedSequence(job.seed, spawn_key=(PAIR_STREAM, slot.index)), job.size, job.gsd,
                     changed=slot.changed)
    base = job.out / "images" / slot.split
    for folder, array in (("A", pair.before), ("B", pair.after), ("label", pair.mask)):
        Image.fromarray(array).save(base / folder / slot.name, **PNG_OPTIONS)
    return pair.captions


def _worker(args: tuple[Job, Slot]) -> list[str]:
    return _render_and_write(*args)


def _record(slot: Slot, caps: list[str]) -> dict[str, Any]:
    """One entry of LevirCCcaptions.json, field for field as in LEVIR-CC."""
    sentids = [slot.index * len(caps) + k for k in range(len(caps))]
    return {
        "filepath": slot.split,
        "filename": slot.name,
        "imgid": slot.index,
        "split": slot.split,
        "changeflag": int(slot.changed),
        "sentences": [
            {"tokens": c.split(), "raw": f" {c} .", "imgid": slot.index, "sentid": sid}
            for c, sid in zip(caps, sentids, strict=True)
        ],
        "sentids": sentids,
    }


def write_dataset(out: Path, pairs: int, seed: int, size: int = 256, gsd: float = 0.5,
                  unchanged: float = 0.5, workers: int = 1,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), progress: bool = True) -> Path:
    """Render ``pairs`` pairs into ``out`` with ``workers`` processes; returns the captions file."""
    if size < 32 or gsd <= 0:
        raise ValueError(f"need --size >= 32 and --gsd > 0, got {size} and {gsd}")
    slots = plan(pairs, fractions, unchanged, seed)
    for split in SPLITS:
        for folder in ("A", "B", "label"):
            (out / "images" / split / folder).mkdir(parents=True, exist_ok=True)
    job = Job(out, seed, size, gsd)
    tasks = [(job, s) for s in slots]
    bar = tqdm(total=pairs, desc="synth", unit="pair", disable=not progress)
    if workers <= 1:
        results = []
        for t in tasks:
            results.append(_worker(t))
            bar.update()
    else:
        # imap keeps index order; chunks amortise the inter-process traffic of small jobs.
        with mp.Pool(workers) as pool:
            results = []
            for caps in pool.imap(_worker, tasks, chunksize=max(1, min(16, pairs // (8 * workers)))):
                results.append(caps)
                bar.update()
    bar.close()
    path = out / CAPTIONS_FILE
    data = {
        "images": [_record(s, c) for s, c in zip(slots, results, strict=True)],
        "dataset": f"HiSem synthetic scenes (seed {seed}, {size} px at {gsd} m/px)",
    }
    path.write_text(json.dumps(data))
    log.info("wrote %d pairs to %s", pairs, out)
    return path
