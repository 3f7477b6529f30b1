"""`hisem bench engine`'s measuring code on the tiny model, in this process (the real command runs
each runner in a fresh process and exports a lite model first: minutes, so it lives in `make bench`)."""

from __future__ import annotations

import queue

import pytest
from engine_support import TrainedModel

from hisem.benchmarks import engine as bench


def test_measure_and_compare_the_three_runners(trained: TrainedModel) -> None:
    results = {}
    for kind in bench.RUNNERS:
        box: queue.Queue = queue.Queue()
        bench.measure(kind, str(trained.run / "best.pt"), str(trained.model_dir), tiles=8, max_len=6,
                      min_seconds=0.0, threads=None, queue=box)
        results[kind] = bench.headline(box.get_nowait())
    bench.compare(results)
    for kind in bench.RUNNERS:  # the keys bench.json promises
        assert results[kind]["tiles_per_s"] > 0 and results[kind]["peak_rss_mb"] > 0
        names = {"batch8_greedy", "batch1_greedy", "batch1_beam3", "batch8_beam3"}
        assert set(results[kind]["configs"]) == names
    fp32 = results["ort_fp32"]
    assert fp32["speedup_vs_torch"] == pytest.approx(fp32["tiles_per_s"] / results["torch"]["tiles_per_s"])
    assert fp32["captions_equal_to_torch"] == 1.0  # same model, same tiles, same greedy captions
    assert fp32["providers"] == ["CPUExecutionProvider"] and results["torch"]["providers"] == ["torch-cpu"]
    table = bench.engine_table(results)
    assert table.count("\n") == 4 and "ort_int8" in table
