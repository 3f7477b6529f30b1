"""`hisem bench caption`: what the geospatial pipeline costs on top of the engine, and its memory.

- ``overhead_ratio``: wall time of the whole pipeline (open, warp, tile, caption, stitch,
  polygonize, write) over the engine's own time (``runner.caption`` calls) on the same tiles of
  the same run; target <= 1.25.
- ``rss_ratio_16x``: peak RSS of a 16 km² run over that of a 1 km² run, each in a fresh process
  (peak RSS never goes down, so one process cannot measure two runs); target <= 1.2. The 16 km²
  scene is a 4 x 4 VRT mosaic of the 1 km² one, so rendering it costs no memory in the benchmark.
- ``tiles_per_s``: tiles of the 16 km² run over its wall time.

The model is the shipped default when installed, else a randomly initialised lite export (speed
and memory do not depend on training; the captions are nonsense).
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
from pathlib import Path
from typing import Any

from osgeo import gdal

from hisem.benchmarks.common import in_fresh_process, peak_rss_mb
from hisem.benchmarks.engine import random_lite_checkpoint

gdal.UseExceptions()


def bench_model(workdir: Path) -> tuple[str, str]:
    """(model id or folder, description): the default model, else a random lite export in ``workdir``."""
    from hisem.engine.registry import DEFAULT_MODEL_ID, list_models

    if DEFAULT_MODEL_ID in {m.id for m in list_models()}:
        return DEFAULT_MODEL_ID, f"default model {DEFAULT_MODEL_ID}"
    from hisem.export import export_checkpoint

    checkpoint = random_lite_checkpoint(workdir / "random-lite.pt")
    export_checkpoint(checkpoint, workdir / "random-lite", model_id="random-lite")
    return str(workdir / "random-lite"), "randomly initialised lite export (default model not installed)"


def _mosaic(scene: Path, side_m: float, out: Path, copies: int = 4) -> Path:
    """A ``copies`` x ``copies`` VRT of ``scene``'s image, placed side by side (no pixels copied)."""
    src = gdal.Open(str(scene))
    x0, gsd, _, y0, _, _ = src.GetGeoTransform()
    parts = []
    for row in range(copies):
        for col in range(copies):
            ulx, uly = x0 + col * side_m, y0 - row * side_m
            part = out.with_name(f"{out.stem}.{row}.{col}.vrt")
            gdal.Translate(str(part), src, options=gdal.TranslateOptions(
                format="VRT", outputBounds=[ulx, uly, ulx + side_m, uly - side_m]))
            parts.append(str(part))
    gdal.BuildVRT(str(out), parts)
    return out


def _run(before: str, after: str, out: str, model: str, queue: mp.Queue) -> None:
    """Child process: one pipeline run; reports its figures and the process's peak RSS."""
    from hisem.pipeline import CaptionOptions, caption_changes

    result = caption_changes(before, after, out, CaptionOptions(model=model, max_tiles=None))
    queue.put({"tiles": result.tiles_total, "tiles_skipped": result.tiles_skipped, "changes": result.changes,
               "wall_s": result.timings["total_s"], "engine_s": result.timings["engine_s"],
               "peak_rss_mb": peak_rss_mb(), "providers": result.providers})


def bench_caption(size_m: float = 1000.0, gsd: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """Figures of one small and one 16x larger run (see the module docstring)."""
    from hisem.data.synth.georef import write_scene

    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="hisem-bench-caption-") as tmp:
        work = Path(tmp)
        model, note = bench_model(work)
        scene = write_scene(work / "scene", size_m, gsd, seed=seed)
        runs = {}
        for name, (before, after) in {
            "1x": (scene.before, scene.after),
            "16x": (_mosaic(scene.before, size_m, work / "before16.vrt"),
                    _mosaic(scene.after, size_m, work / "after16.vrt")),
        }.items():
            runs[name] = in_fresh_process(ctx, _run, (str(before), str(after), str(work / f"{name}.gpkg"), model),
                                           f"caption {name}")
    small, large = runs["1x"], runs["16x"]
    return {
        "model": note,
        "scene_km2": {"1x": (size_m / 1000) ** 2, "16x": 16 * (size_m / 1000) ** 2},
        "gsd_m": gsd,
        "runs": runs,
        "overhead_ratio": large["wall_s"] / large["engine_s"],
        "overhead_ratio_1x": small["wall_s"] / small["engine_s"],
        "rss_ratio_16x": large["peak_rss_mb"] / small["peak_rss_mb"],
        "tiles_per_s": large["tiles"] / large["wall_s"],
    }
