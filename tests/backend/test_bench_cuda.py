"""The CUDA columns of `hisem bench train` / `hisem bench engine`: shown only when a GPU was measured.

CI has no GPU, so these tests feed the tables the figures a GPU run records; the measuring code runs
in `make bench` on a machine with one.
"""

from __future__ import annotations

import onnxruntime
import pytest

from hisem.benchmarks import engine as bench
from hisem.benchmarks.training import training_table


def _engine_figures(tiles_per_s: float, providers: list[str]) -> dict:
    configs = {bench.config_name(b, k): {"tiles_per_s": tiles_per_s, "encode_ms": 1.0, "captions": ["a", "b"],
                                         "peak_rss_mb": 100.0} for b, k in bench.CONFIGS}
    return bench.headline({"providers": providers, "configs": configs,
                           "cuda_in_use": bench.CUDA_PROVIDER in providers})


def test_training_table_has_a_cuda_column_only_with_a_gpu() -> None:
    entry = {"train_pairs_per_s": 10.0, "forward_ms_batch1": 1.0, "forward_ms_batch8": 2.0, "parameters_m": 0.6}
    cpu = {"batch_size": 8, "presets": {"tiny": entry}}
    assert "CUDA" not in training_table(cpu)
    gpu = {**cpu, "cuda_device": "NVIDIA H200", "presets": {"tiny": {**entry, "cuda_amp_train_pairs_per_s": 900.0}}}
    header, _, row = training_table(gpu).splitlines()
    assert "CUDA AMP train pairs/s (NVIDIA H200)" in header and "| 900 |" in row


@pytest.mark.parametrize("in_use", [True, False])
def test_engine_table_says_whether_the_cuda_provider_ran(in_use: bool) -> None:
    cpu = ["CPUExecutionProvider"]
    results = {kind: _engine_figures(10.0, ["torch-cpu"] if kind == "torch" else cpu) for kind in bench.RUNNERS}
    assert "ort_cuda" not in bench.engine_table(results)
    results["ort_cuda"] = _engine_figures(50.0, [bench.CUDA_PROVIDER, *cpu] if in_use else cpu)
    bench.compare(results)
    assert results["ort_cuda"]["speedup_vs_torch"] == pytest.approx(5.0)
    table = bench.engine_table(results)
    assert ("ort_cuda (CUDA provider in use)" in table) is in_use
    assert ("CUDA provider NOT in use" in table) is not in_use


def test_cuda_runner_is_measured_only_where_onnxruntime_has_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert bench.available_runners() == bench.RUNNERS
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [bench.CUDA_PROVIDER, "CPUExecutionProvider"])
    assert bench.available_runners() == (*bench.RUNNERS, "ort_cuda")
