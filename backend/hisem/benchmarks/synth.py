"""`hisem bench synth`: pairs/s of the generator, fully synthetic and on real backgrounds, side by side.

One process, one pair at a time, the same 256 px / 0.5 m pairs `make train-default` writes (PNG
writing excluded: it is the same for every kind). Loading the backgrounds is timed apart: each
generator worker pays it once.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from hisem.benchmarks.common import markdown_table
from hisem.data.synth.backgrounds import load_bank
from hisem.data.synth.pair import make_pair
from hisem.data.synth.real_pair import REAL_KINDS, make_real_pair


def bench_synth(real: tuple[str, ...], pairs: int = 40, size: int = 256, gsd: float = 0.5) -> dict[str, Any]:
    torch.set_num_threads(1)  # as in a generator worker
    start = time.perf_counter()
    bank = load_bank(real, gsd)
    load_s = time.perf_counter() - start
    makers = {"synthetic": lambda seed, changed: make_pair(seed, size, gsd, changed=changed)}
    for kind in REAL_KINDS:
        makers[kind] = lambda seed, changed, kind=kind: make_real_pair(seed, bank, kind, size, gsd)
    rates: dict[str, float] = {}
    for kind, make in makers.items():
        start = time.perf_counter()
        for i in range(pairs):
            make(np.random.SeedSequence(0, spawn_key=(i,)), i % 2 == 0)
        rates[kind] = pairs / (time.perf_counter() - start)
    return {"pairs": pairs, "size": size, "gsd": gsd, "backgrounds": len(bank.backgrounds),
            "bank_load_s": load_s, "pairs_per_s": rates,
            "ratio_to_synthetic": {k: v / rates["synthetic"] for k, v in rates.items()}}


def synth_table(results: dict[str, Any]) -> str:
    rows = [[kind, rate, results["ratio_to_synthetic"][kind]] for kind, rate in results["pairs_per_s"].items()]
    return markdown_table(["pair kind", "pairs/s (1 process)", "x synthetic"], rows)
