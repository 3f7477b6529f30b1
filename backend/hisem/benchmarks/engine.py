"""Inference speed and memory side by side: PyTorch eager, ONNX Runtime fp32, ONNX Runtime int8
(and ONNX Runtime fp32 on the CUDA provider when onnxruntime has it, with the providers the session
really uses).

One run, the same model and the same tiles for all three. Each runner is measured in its own fresh
process (``spawn``), so its peak RSS is its own: interpreter, libraries (torch is never imported by
the ONNX Runtime processes), model and activations. Configurations run in a fixed order, batch 8
greedy first, and the peak is recorded after each, so later figures are cumulative. The export runs
in a process of its own too: Linux carries ``ru_maxrss`` across fork+exec, so a child of a parent
that had grown by exporting would report the parent's peak.

The default model is a randomly initialised ``lite`` model (speed does not depend on the weights,
only on the shapes). A random decoder rarely says <END>, so captions are capped at ``max_len``
tokens (default 24, a typical LEVIR-CC caption with <START>/<END>): every runner then decodes the
same number of steps, as it would for real captions of that length.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hisem.benchmarks.common import in_fresh_process, markdown_table, peak_rss_mb, time_calls

log = logging.getLogger(__name__)

RUNNERS = ("torch", "ort_fp32", "ort_int8")
CUDA_RUNNER = "ort_cuda"  # ONNX Runtime fp32 on its CUDA provider: measured when onnxruntime offers it
CUDA_PROVIDER = "CUDAExecutionProvider"
CONFIGS = ((8, 1), (1, 1), (1, 3), (8, 3))  # (batch, beam); batch 8 greedy first: its RSS is its own
HEADLINE = "batch8_greedy"
RANDOM_VOCAB = 500  # LEVIR-CC's vocabulary is ~500 words


def available_runners() -> tuple[str, ...]:
    """The runners to measure: the CPU three, and the CUDA one where this onnxruntime build has CUDA."""
    import onnxruntime as ort

    return (*RUNNERS, CUDA_RUNNER) if CUDA_PROVIDER in ort.get_available_providers() else RUNNERS


def config_name(batch: int, beam: int) -> str:
    return f"batch{batch}_" + ("greedy" if beam == 1 else f"beam{beam}")


def random_lite_checkpoint(path: Path) -> Path:
    """A randomly initialised lite model (ImageNet backbone) with a placeholder vocabulary."""
    from hisem.data.vocab import Vocab
    from hisem.model import build_model, save_checkpoint

    vocab = Vocab([f"word{i}" for i in range(RANDOM_VOCAB - 4)])
    model = build_model("lite", vocab_size=len(vocab)).eval()
    save_checkpoint(path, model, vocab.to_dict(), {"note": "random initialisation, for benchmarks"})
    return path


def prepare(model: str | None, workdir: Path, queue: mp.Queue | None = None) -> tuple[Path, Path, str]:
    """(checkpoint, exported model folder with fp32 + int8, description of the model)."""
    from hisem.evaluation.predict import resolve_checkpoint
    from hisem.export import export_checkpoint

    if model is None:
        checkpoint = random_lite_checkpoint(workdir / "random-lite.pt")
        note = ("randomly initialised lite model (no trained checkpoint given; "
                "speed does not depend on training)")
    else:
        checkpoint = resolve_checkpoint(model)
        note = f"checkpoint {checkpoint}"
    model_dir = workdir / "model"
    export_checkpoint(checkpoint, model_dir, model_id="bench", quantize="int8")
    if queue is not None:  # when run as a child process
        queue.put((checkpoint, model_dir, note))
    return checkpoint, model_dir, note


def _tiles(count: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    before = rng.integers(0, 256, (count, 3, size, size), dtype=np.uint8)
    after = rng.integers(0, 256, (count, 3, size, size), dtype=np.uint8)
    return before, after


def measure(kind: str, checkpoint: str, model_dir: str, tiles: int, max_len: int, min_seconds: float,
             threads: int | None, queue: mp.Queue) -> None:
    """Child process: load one runner, time every configuration, report through ``queue``."""
    if kind == "torch":
        import torch

        from hisem.engine.torch_runner import TorchRunner

        if threads:
            torch.set_num_threads(threads)
        runner: Any = TorchRunner(checkpoint)
    else:
        from hisem.engine.ort_runner import OrtRunner

        cuda = kind == CUDA_RUNNER
        precision = "fp32" if cuda else kind.removeprefix("ort_")
        providers = [CUDA_PROVIDER, "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
        runner = OrtRunner(model_dir, precision, providers=providers, threads=threads)
    before, after = _tiles(tiles, runner.tile_size)
    out: dict[str, Any] = {"providers": runner.providers, "configs": {}, "rss_after_load_mb": peak_rss_mb(),
                           "cuda_in_use": CUDA_PROVIDER in runner.providers}  # the session's, not the request
    for batch, beam in CONFIGS:
        cursor = [0]

        def call(batch: int = batch, beam: int = beam, cursor: list[int] = cursor) -> list:
            idx = [(cursor[0] + j) % tiles for j in range(batch)]  # the pool, cyclically
            cursor[0] += batch
            return runner.caption(before[idx], after[idx], beam=beam, n_best=1, max_len=max_len)

        timing = time_calls(call, warmup=1, min_seconds=min_seconds, max_calls=50)
        seconds = timing.seconds_per_call
        entry = {"tiles_per_s": batch / seconds, "ms_per_batch": 1e3 * seconds, "calls": timing.calls,
                 "peak_rss_mb": peak_rss_mb()}
        if beam == 1:
            enc = time_calls(lambda b=batch: runner.encode(before[:b], after[:b]), warmup=1,
                             min_seconds=min_seconds / 2, max_calls=50)
            entry["encode_ms"] = 1e3 * enc.seconds_per_call
            entry["captions"] = [r.captions[0][0] for r in runner.caption(before[:batch], after[:batch],
                                                                          max_len=max_len)]
        out["configs"][config_name(batch, beam)] = entry
    queue.put(out)


def bench_engine(model: str | None = None, tiles: int = 16, max_len: int = 24, min_seconds: float = 3.0,
                 threads: int | None = None) -> dict[str, Any]:
    """Tiles/s and peak RSS of the three runners; see the module docstring for the method.

    ``threads``: intra-op threads for both libraries (default: theirs, one per core).
    """
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="hisem-bench-") as tmp:
        checkpoint, model_dir, note = in_fresh_process(ctx, prepare, (model, Path(tmp)), "export")
        log.info("benchmarking %s", note)
        results: dict[str, Any] = {
            "model": note, "tiles": tiles, "max_len": max_len, "cpu_count": os.cpu_count(),
            "threads": threads or "library default (one per core)",
            "rss": "peak RSS of a fresh process per runner",
        }
        for kind in available_runners():
            args = (kind, str(checkpoint), str(model_dir), tiles, max_len, min_seconds, threads)
            results[kind] = headline(in_fresh_process(ctx, measure, args, kind))
            log.info("%s: %.2f tiles/s (batch 8, greedy)", kind, results[kind]["tiles_per_s"])
    compare(results)
    return results


def headline(measured: dict[str, Any]) -> dict[str, Any]:
    """A runner's figures with batch 8 greedy lifted to the top (the keys bench.json promises)."""
    head = measured["configs"][HEADLINE]
    return {"tiles_per_s": head["tiles_per_s"], "peak_rss_mb": head["peak_rss_mb"], **measured}


def compare(results: dict[str, Any]) -> None:
    """Speed ratios to PyTorch per configuration, and how often greedy captions match PyTorch's."""
    base = results["torch"]["configs"]
    for kind in _measured(results)[1:]:
        configs = results[kind]["configs"]
        ratios = {name: configs[name]["tiles_per_s"] / base[name]["tiles_per_s"] for name in configs}
        results[kind]["speedup_vs_torch"] = ratios[HEADLINE]
        results[kind]["speedup_vs_torch_by_config"] = ratios
        ref, got = base[HEADLINE]["captions"], configs[HEADLINE]["captions"]
        same = sum(a == b for a, b in zip(ref, got, strict=True))
        results[kind]["captions_equal_to_torch"] = same / len(ref)


def engine_table(results: dict[str, Any]) -> str:
    names = [config_name(b, k) for b, k in CONFIGS]
    header = ["runner", *[f"{n} tiles/s" for n in names], "× torch (b8 greedy)", "encode ms b8",
              "peak RSS MiB (b8 greedy)"]
    rows = []
    for kind in _measured(results):
        r = results[kind]
        label = kind
        if kind == CUDA_RUNNER:  # say whether the GPU really ran it: ORT falls back to CPU silently
            label += " (CUDA provider in use)" if r.get("cuda_in_use") else " (CUDA provider NOT in use: CPU)"
        rows.append([label, *[r["configs"][n]["tiles_per_s"] for n in names], r.get("speedup_vs_torch", 1.0),
                     r["configs"][HEADLINE]["encode_ms"], r["peak_rss_mb"]])
    return markdown_table(header, rows)


def _measured(results: dict[str, Any]) -> list[str]:
    return [kind for kind in (*RUNNERS, CUDA_RUNNER) if kind in results]
