"""Timing and memory helpers shared by the benchmarks."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    seconds_per_call: float
    calls: int


def time_calls(fn: Callable[[], object], warmup: int = 2, min_seconds: float = 2.0, max_calls: int = 200) -> Timing:
    """Mean wall time of ``fn()`` after ``warmup`` calls, over at least ``min_seconds`` (or max_calls)."""
    for _ in range(warmup):
        fn()
    calls = 0
    start = time.perf_counter()
    while calls < max_calls:
        fn()
        calls += 1
        if time.perf_counter() - start >= min_seconds:
            break
    return Timing((time.perf_counter() - start) / calls, calls)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    def fmt(value: object) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
