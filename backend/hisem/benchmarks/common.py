"""Timing and memory helpers shared by the benchmarks."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from queue import Empty
from typing import Any


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


def in_fresh_process(ctx: Any, target: Callable[..., Any], args: tuple, name: str) -> Any:
    """``target(*args, queue)`` in a new interpreter; returns what it put on the queue.

    A fresh process per measurement keeps peak-RSS figures honest: a child inherits its parent's peak.
    """
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    try:
        while True:  # read before join(): a child blocked on a full pipe would never exit
            try:
                return queue.get(timeout=5.0)
            except Empty:
                if not proc.is_alive():
                    died = f"the {name} benchmark process died (exit code {proc.exitcode})"
                    raise RuntimeError(died) from None
    finally:
        proc.join()
