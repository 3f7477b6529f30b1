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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from hisem.data.synth.backgrounds import load_bank
from hisem.data.synth.pair import make_pair
from hisem.data.synth.real_pair import make_real_pair

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
PAIR_STREAM, CHANGE_STREAM, SOURCE_STREAM = 0, 1, 2  # independent random streams under one user seed
SYNTHETIC = "synthetic"  # a pair's source: the fully synthetic generator, or one of real_pair.REAL_KINDS
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
    real: tuple[str, ...] = ()  # --real folders of background images
    real_gsd: float | None = None  # GSD of the background images that carry no georeference


@dataclass(frozen=True)
class Slot:
    index: int
    split: str
    name: str
    changed: bool
    source: str = SYNTHETIC


def plan(pairs: int, fractions: tuple[float, float, float], unchanged: float, seed: int,
         real_fraction: float = 0.0, footprint_fraction: float = 0.0) -> list[Slot]:
    """Split by index order; within each split exactly round(n * unchanged) pairs stay unchanged.

    With real backgrounds, each pair independently lies on one with probability ``real_fraction``:
    unchanged ones as real "same" pairs, changed ones as real buildings moved by their footprints
    (``footprint_fraction`` of them) or synthetic objects on real ground (the rest).
    """
    if pairs < 1:
        raise ValueError("--pairs must be at least 1")
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    if not 0.0 <= unchanged <= 1.0:
        raise ValueError(f"--unchanged-fraction must be in [0, 1], got {unchanged}")
    if not (0.0 <= real_fraction <= 1.0 and 0.0 <= footprint_fraction <= 1.0):
        raise ValueError(f"--real-fraction and --footprint-fraction must be in [0, 1], got "
                         f"{real_fraction} and {footprint_fraction}")
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
    if real_fraction > 0:
        draw = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SOURCE_STREAM,))).random((len(slots), 2))
        slots = [
            s if u >= real_fraction
            else replace(s, source="same" if not s.changed else "buildings" if v < footprint_fraction else "objects")
            for s, (u, v) in zip(slots, draw, strict=True)
        ]
    return slots


def _render_and_write(job: Job, slot: Slot) -> list[str]:
    seed = np.random.SeedSequence(job.seed, spawn_key=(PAIR_STREAM, slot.index))
    if slot.source == SYNTHETIC:
        pair = make_pair(seed, job.size, job.gsd, changed=slot.changed)
    else:
        torch.set_num_threads(1)  # one pair per process at a time: threads would only contend
        bank = load_bank(job.real, job.gsd, job.real_gsd)  # once per worker process
        pair = make_real_pair(seed, bank, slot.source, job.size, job.gsd)
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
        **({"source": slot.source} if slot.source != SYNTHETIC else {}),
    }


def write_dataset(out: Path, pairs: int, seed: int, size: int = 256, gsd: float = 0.5,
                  unchanged: float = 0.5, workers: int = 1,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), progress: bool = True,
                  real: tuple[str, ...] = (), real_gsd: float | None = None, real_fraction: float = 0.6,
                  footprint_fraction: float = 0.4) -> Path:
    """Render ``pairs`` pairs into ``out`` with ``workers`` processes; returns the captions file.

    ``real``: folders of real background images (backgrounds.py); without them every pair is
    fully synthetic and ``real_fraction`` / ``footprint_fraction`` do not apply.
    """
    if size < 32 or gsd <= 0:
        raise ValueError(f"need --size >= 32 and --gsd > 0, got {size} and {gsd}")
    if real:
        bank = load_bank(tuple(real), gsd, real_gsd)  # fail now, with the reason, not in a worker
        if not bank.with_buildings:
            footprint_fraction = 0.0
    slots = plan(pairs, fractions, unchanged, seed, real_fraction if real else 0.0, footprint_fraction)
    for split in SPLITS:
        for folder in ("A", "B", "label"):
            (out / "images" / split / folder).mkdir(parents=True, exist_ok=True)
    job = Job(out, seed, size, gsd, tuple(real), real_gsd)
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
        "dataset": f"HiSem synthetic scenes (seed {seed}, {size} px at {gsd} m/px)"
        + (f", {real_fraction:.0%} on real backgrounds from {', '.join(Path(r).name for r in real)}" if real else ""),
    }
    path.write_text(json.dumps(data))
    log.info("wrote %d pairs to %s", pairs, out)
    return path
