"""``caption_changes``: pair, tile, caption, stitch, vectorise and write, with bounded memory.

Memory is one batch of tiles plus the stitcher's block cache, whatever the AOI: tiles are read
(warped) one by one and their probabilities go straight to a GeoTIFF on disk. Every output is
written beside its target and renamed into place at the end, so a failed or cancelled run leaves
nothing at the paths the caller asked for.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from osgeo import gdal

from hisem import __version__
from hisem.engine import OrtRunner, resolve_model
from hisem.engine.registry import ModelInfo
from hisem.engine.runner import Runner
from hisem.geo import (
    ChangeFeature,
    GeoError,
    PairReader,
    ProbabilityStitcher,
    Tile,
    TileFeature,
    assign_tile,
    check_output_path,
    open_raster,
    parse_aoi,
    polygonize,
    sha256_file,
    tile_grid,
    working_grid,
    write_geojson,
    write_gpkg,
)
from hisem.geo.bands import select_bands
from hisem.geo.errors import OptionError
from hisem.geo.reading import TilePair
from hisem.pipeline.options import MAX_BEAM, CaptionOptions, CaptionResult, RunPlan

log = logging.getLogger(__name__)


# GDAL's block cache defaults to 5 % of physical RAM and fills with the accumulator's and the
# sources' blocks as a run proceeds, so peak memory would grow with the AOI; cap it during a run.
GDAL_CACHE_BYTES = 128 * 1024 * 1024


class PipelineCancelled(Exception):
    """The caller's cancel hook asked the run to stop; nothing was written."""


def _prob_path(out: Path, options: CaptionOptions) -> Path:
    return Path(options.prob_path) if options.prob_path else out.with_name(f"{out.stem}.prob.tif")


def _check_options(options: CaptionOptions, model_tile: int) -> tuple[int, int]:
    """Tile size and overlap in pixels; OptionError (one clear line, naming the option) otherwise."""
    tile = options.tile_size or model_tile
    if tile != model_tile:
        raise OptionError("tile_size", tile, f"the model takes tiles of {model_tile} px; change the GSD to cover "
                          "more or less ground per tile instead")
    overlap = tile // 8 if options.overlap is None else options.overlap
    if not 0 <= overlap < tile // 2:
        raise OptionError("overlap", overlap, f"must be within [0, {tile // 2}) px for {tile} px tiles")
    if not 1 <= options.beam <= MAX_BEAM:
        raise OptionError("beam", options.beam, f"must be within [1, {MAX_BEAM}] (time and memory grow with it)")
    if options.no_repeat_ngram < 0:
        raise OptionError("no_repeat_ngram", options.no_repeat_ngram, "must be 0 (off) or a positive n-gram size")
    if not 0.0 < options.threshold < 1.0:
        raise OptionError("threshold", options.threshold, "must be within (0, 1)")
    if options.max_tiles is not None and options.max_tiles < 1:
        raise OptionError("max_tiles", options.max_tiles, "must be at least 1")
    if options.gsd is not None and not (options.gsd > 0 and math.isfinite(options.gsd)):
        raise OptionError("gsd", options.gsd, "must be a positive number of metres")
    return tile, overlap


def plan_run(before: str | Path, after: str | Path, options: CaptionOptions) -> RunPlan:
    """Resolve the model, open both rasters and the AOI, choose the grid and count the tiles.

    Cheap (no pixel beyond ``open_raster``'s read check) and raising the same errors as
    ``caption_changes``: the HTTP service calls it to answer bad input at submission time.
    """
    for path in (before, after):
        if not Path(path).exists():  # GDAL's own message for this is obscure
            raise FileNotFoundError(f"{path}: no such file")
    model = resolve_model(options.model)
    tile_size, overlap = _check_options(options, model.tile_size)
    before_info, after_info = (open_raster(str(p), options.raster_limits) for p in (before, after))
    for info in (before_info, after_info):
        select_bands(info, options.bands)  # a missing band is known from the header: say so now
    aoi = None
    if options.aoi is not None:
        aoi = parse_aoi(options.aoi, options.aoi_crs, allow_files=options.aoi_files)
    grid, warnings = working_grid(before_info, after_info, aoi, options.gsd, model.gsd_m)
    tiles = tile_grid(grid, tile_size, overlap, options.max_tiles)
    return RunPlan(model, before_info, after_info, aoi, grid, tiles, tile_size, overlap, warnings)


def caption_changes(before: str | Path, after: str | Path, out_gpkg: str | Path,
                    options: CaptionOptions | None = None) -> CaptionResult:
    """Caption the changes between ``before`` and ``after`` into the GeoPackage ``out_gpkg``.

    Raises the errors of ``hisem.geo.GEO_ERRORS`` for unusable inputs, FileNotFoundError for a
    missing model and PipelineCancelled when ``options.cancel`` says so.
    """
    previous_cache = gdal.GetCacheMax()
    gdal.SetCacheMax(min(previous_cache, GDAL_CACHE_BYTES))
    try:
        return _caption_changes(before, after, out_gpkg, options or CaptionOptions())
    finally:
        gdal.SetCacheMax(previous_cache)


def _load_runner(model: ModelInfo, options: CaptionOptions) -> Runner:
    if options.runner is None:
        return OrtRunner(model.path, providers=options.providers)
    if options.runner.metadata.get("model_id") != model.id:
        raise ValueError(f"the runner given holds {options.runner.metadata.get('model_id')!r}, not {model.id!r}")
    return options.runner


def _caption_changes(before: str | Path, after: str | Path, out_gpkg: str | Path,
                     options: CaptionOptions) -> CaptionResult:
    t_start = time.perf_counter()
    out = check_output_path(out_gpkg, options.overwrite)
    prob_path = check_output_path(_prob_path(out, options), options.overwrite)
    if options.geojson is not None:
        check_output_path(options.geojson, options.overwrite)
    plan = plan_run(before, after, options)
    model, grid, tiles, aoi, warnings = plan.model, plan.grid, plan.tiles, plan.aoi, plan.warnings
    before_info, after_info, tile_size, overlap = plan.before, plan.after, plan.tile_size, plan.overlap
    runner = _load_runner(model, options)
    timings: dict[str, float] = {"setup_s": time.perf_counter() - t_start}

    t_tiles = time.perf_counter()
    tile_features: list[TileFeature] = []
    engine_s, skipped = 0.0, 0
    n_best = max(1, min(options.n_best, options.beam))
    with PairReader(before, after, grid, options.bands, aoi=aoi) as reader, \
            ProbabilityStitcher(prob_path, grid, overlap_px=overlap) as stitcher:
        batch: list[tuple[Tile, TilePair]] = []

        def flush() -> None:
            nonlocal engine_s
            if not batch:
                return
            t0 = time.perf_counter()
            results = runner.caption(np.stack([p.before for _, p in batch]),  # (B, 3, S, S)
                                     np.stack([p.after for _, p in batch]), beam=options.beam, n_best=n_best,
                                     no_repeat_ngram=options.no_repeat_ngram)
            engine_s += time.perf_counter() - t0
            for (tile, pair), result in zip(batch, results, strict=True):
                stitcher.add(tile, result.mask_prob, pair.valid)
                best, *others = result.captions or [("", None)]
                tile_features.append(TileFeature(
                    tile.index, tile.polygon_wkt, result.change_prob >= options.threshold,
                    result.change_prob, best[0], tuple(others), caption_score=best[1]))
            batch.clear()

        _report(options, 0, len(tiles))
        for done, (tile, pair) in enumerate(_read_ahead(reader, tiles), start=1):
            if pair.skip:
                skipped += 1
            else:
                batch.append((tile, pair))
            if len(batch) == options.batch_size or done == len(tiles):
                if options.cancel is not None and options.cancel():
                    raise PipelineCancelled("cancelled")
                flush()
                _report(options, done, len(tiles))
        if not tile_features:
            raise GeoError(f"all {len(tiles)} tiles are more than half nodata (or outside the AOI): "
                           "nothing to caption")
        stitcher.finish()
    timings["tiles_s"] = time.perf_counter() - t_tiles
    timings["engine_s"] = engine_s

    try:
        t_vec = time.perf_counter()
        changes = _change_features(prob_path, options, grid.gsd, tiles, tile_features)
        timings["vectorise_s"] = time.perf_counter() - t_vec
        timings["total_s"] = time.perf_counter() - t_start
        run_info = _run_info({"before": before_info.path, "after": after_info.path}, model.id, runner, options,
                             grid.gsd, tile_size, overlap, len(tiles), skipped, timings, warnings)
        if options.geojson is not None:
            write_geojson(options.geojson, grid.crs_wkt, changes, overwrite=options.overwrite)
        write_gpkg(out, grid.crs_wkt, tile_features, changes, run_info, overwrite=options.overwrite)
    except BaseException:
        prob_path.unlink(missing_ok=True)  # no half of a result: the raster goes with a failed run
        if options.geojson is not None and not out.exists():
            Path(options.geojson).unlink(missing_ok=True)
        raise
    return CaptionResult(out, prob_path, options.geojson, grid.crs_wkt, len(tiles), skipped, len(changes),
                         warnings, timings, runner.providers, model.id)


READ_AHEAD_TILES = 16  # two batches: enough to hide the warp, bounded so memory does not grow


def _read_ahead(reader: PairReader, tiles: list[Tile]) -> Iterator[tuple[Tile, TilePair]]:
    """The tiles' pixels, read (warped) by a thread while the caller runs the engine on earlier ones.

    GDAL's warp and ONNX Runtime both release the GIL, so reading the next batch overlaps with
    captioning this one; the queue holds at most READ_AHEAD_TILES pairs. Only that thread touches the
    reader's datasets. An error in it is raised here; leaving early (cancel, error) stops it.
    """
    pairs: queue.Queue = queue.Queue(maxsize=READ_AHEAD_TILES)
    stop = threading.Event()

    def produce() -> None:
        try:
            for tile in tiles:
                if stop.is_set():
                    return
                pairs.put((tile, reader.read_tile(tile)))
        except BaseException as exc:  # handed to the consumer, which raises it
            pairs.put(exc)

    thread = threading.Thread(target=produce, name="hisem-read-ahead", daemon=True)
    thread.start()
    try:
        for _ in tiles:
            item = pairs.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue, then let it finish
            with contextlib.suppress(queue.Empty):
                pairs.get_nowait()
            thread.join(timeout=0.05)


def _report(options: CaptionOptions, done: int, total: int) -> None:
    if options.progress is not None:
        options.progress(done, total)


def _change_features(prob_path: Path, options: CaptionOptions, gsd: float, tiles: list[Tile],
                     tile_features: list[TileFeature]) -> list[ChangeFeature]:
    """Polygons of the stitched probabilities, each with the caption of its most central tile."""
    simplify = gsd if options.simplify_m is None else options.simplify_m
    regions = polygonize(prob_path, options.threshold, options.min_area_m2, simplify)
    captions = {t.tile_index: t.caption for t in tile_features}
    captioned = [t for t in tiles if t.index in captions]  # skipped tiles have no caption to give
    features = []
    for region in regions:
        index = assign_tile(region, captioned)
        features.append(ChangeFeature(region.wkt, region.area_m2, captions.get(index, "") if index is not None
                                      else "", region.score, index))
    return features


def _input_record(role: str, path: str, options: CaptionOptions) -> dict[str, str]:
    """Role, checksum and the path; or the name the caller gave (a server does not publish its paths)."""
    where = {"name": options.input_names[role]} if options.input_names and role in options.input_names \
        else {"path": str(Path(path).resolve())}
    return {"role": role, **where, "sha256": sha256_file(path)}


def _run_info(inputs: dict[str, str], model_id: str, runner: Runner, options: CaptionOptions, gsd: float,
              tile_size: int, overlap: int, tiles: int, skipped: int, timings: dict[str, float],
              warnings: list[str]) -> dict[str, Any]:
    """Provenance for the ``run`` table: enough to tell how a result was made and on what."""
    import onnxruntime

    return {
        "model": model_id,
        "model_metadata": {k: v for k, v in runner.metadata.items() if k != "vocab"},
        "versions": {"hisem": __version__, "gdal": gdal.__version__, "onnxruntime": onnxruntime.__version__,
                     "numpy": np.__version__},
        "parameters": {"gsd_m": gsd, "tile_size": tile_size, "overlap": overlap, "beam": options.beam,
                       "no_repeat_ngram": options.no_repeat_ngram,
                       "threshold": options.threshold, "bands": options.bands, "max_tiles": options.max_tiles,
                       "aoi": options.aoi, "aoi_crs": options.aoi_crs, "min_area_m2": options.min_area_m2,
                       "batch_size": options.batch_size},
        "tiles": {"total": tiles, "skipped_nodata": skipped, "captioned": tiles - skipped},
        "timings": timings,
        "execution_provider": runner.providers,
        "inputs": [_input_record(role, path, options) for role, path in inputs.items()],
        "warnings": warnings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
