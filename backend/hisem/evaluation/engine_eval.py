"""Score an installed model on real pairs through the product's own path: `hisem caption`, pair by pair.

Each pair runs through ``hisem.pipeline.caption_changes`` with the ONNX Runtime engine: the working
grid at the model's GSD, its tiles and overlap, the stitched probability raster and the per-tile
flag ``change_prob >= threshold``. The figures are what an analyst running `hisem caption` on
these images gets; nothing here re-implements a grid, tiling or stitching rule. Around it:

- Pairs without georeference (the PNG data sets) are written as GeoTIFFs in a local metric frame at
  the data's GSD, so the pipeline resamples them to the model's GSD. A pair smaller than one tile
  at the model's GSD (EGY-BCD: 64 m at 0.25 m against 128 m tiles) is mirror-padded to one tile,
  since `hisem caption` refuses tiles that are mostly empty; the padding is never scored.
- Mask: the stitched probabilities are resampled (bilinear) back onto the label's own pixels and
  thresholded there, so every model (whatever its GSD) and the baselines are scored on the same
  pixels, the label's.
- Change flag per tile: the label, resampled (nearest) onto the working grid, gives each tile's share
  of changed pixels; see ``TileFlagMetrics`` for what counts as a false alarm or a miss.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from osgeo import gdal, ogr
from PIL import Image
from tqdm import tqdm

from hisem.data.readers import PairRecord
from hisem.data.vocab import Vocab
from hisem.engine import OrtRunner
from hisem.engine.registry import ModelInfo
from hisem.engine.runner import Runner
from hisem.evaluation.baseline import baseline_scores
from hisem.evaluation.change import MaskMetrics, TileFlagMetrics
from hisem.evaluation.report import build_report
from hisem.geo import open_raster
from hisem.geo.crs import make_srs, to_wkt
from hisem.geo.grid import Bounds
from hisem.pipeline import CaptionOptions
from hisem.pipeline.caption import caption_changes, plan_run

log = logging.getLogger(__name__)

# Any metric CRS does for images without georeference; the origin is the tests' usual one.
LOCAL_EPSG = 32633
LOCAL_ORIGIN = (500_000.0, 5_000_000.0)


@dataclass(frozen=True)
class EngineSettings:
    """How to run the model: ``data_gsd`` for pairs without georeference (None: the model's GSD)."""

    data_gsd: float | None = None
    threshold: float = CaptionOptions.threshold  # the default of `hisem caption`, for tiles and pixels
    batch_size: int = CaptionOptions.batch_size
    progress: bool = True


@dataclass(frozen=True)
class _Frame:
    """Where a pair's pixels lie: CRS, bounds and size of its (possibly padded) raster."""

    crs_wkt: str
    bounds: Bounds
    width: int
    height: int


@dataclass
class _Prepared:
    """A pair as the pipeline reads it, and the window of its frame that holds the real pixels."""

    before: Path
    after: Path
    label: Path | None
    frame: _Frame
    window: tuple[int, int, int, int]  # x, y, width, height inside ``frame`` (the unpadded pair)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # left, top, right, bottom, in the pair's pixels


@dataclass
class PairOutcome:
    """One pair's figures (JSON-ready) and its masks at the label's pixels."""

    entry: dict[str, Any]
    caption: str
    called_changed: bool
    predicted: np.ndarray | None = None  # (H, W) uint8 0/1 at the pair's own pixels
    truth: np.ndarray | None = None  # (H, W) uint8 0/1
    tile_fractions: list[tuple[float, bool]] = field(default_factory=list)  # (label share, model's call)


def _read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8; a grey image is replicated into three bands (`hisem caption --bands 1`)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _read_label(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return (np.asarray(img.convert("L")) > 0).astype(np.uint8)


def _georeferenced(path: Path) -> bool:
    ds = gdal.Open(str(path))
    return ds.GetSpatialRef() is not None and ds.GetGeoTransform(can_return_null=True) is not None


def _write_geotiff(path: Path, image: np.ndarray, frame: _Frame) -> Path:
    """(H, W) or (H, W, C) uint8 as a GeoTIFF covering ``frame``."""
    bands = image[..., None] if image.ndim == 2 else image
    ds = gdal.GetDriverByName("GTiff").Create(str(path), frame.width, frame.height, bands.shape[2], gdal.GDT_Byte)
    minx, miny, maxx, maxy = frame.bounds
    ds.SetGeoTransform((minx, (maxx - minx) / frame.width, 0.0, maxy, 0.0, -(maxy - miny) / frame.height))
    ds.SetProjection(frame.crs_wkt)
    for i in range(bands.shape[2]):
        ds.GetRasterBand(i + 1).WriteArray(bands[..., i])
    ds = None
    return path


def _padding(size: int, needed: int) -> tuple[int, int]:
    """Split the pixels missing to ``needed`` between both sides."""
    missing = max(0, needed - size)
    return missing // 2, missing - missing // 2


def _prepare(record: PairRecord, model: ModelInfo, data_gsd: float, workdir: Path) -> _Prepared:
    """The pair as georeferenced files: as stored when it has a georeference, else written here."""
    assert record.before is not None and record.after is not None
    if _georeferenced(record.before):
        info = open_raster(str(record.before))
        gt = info.geotransform
        frame = _Frame(info.crs_wkt, (gt[0], gt[3] + info.height * gt[5], gt[0] + info.width * gt[1], gt[3]),
                       info.width, info.height)
        label = None
        if record.mask is not None:
            label = record.mask if _georeferenced(record.mask) else _write_geotiff(
                workdir / "label.tif", _read_label(record.mask), frame)
        return _Prepared(record.before, record.after, label, frame, (0, 0, info.width, info.height))
    before, after = _read_rgb(record.before), _read_rgb(record.after)
    height, width = before.shape[:2]
    if after.shape != before.shape:
        raise ValueError(f"{record.name}: before {before.shape[:2]} and after {after.shape[:2]} differ in size")
    # Mirror-pad to one tile of ground at the model's GSD (1e-9: 256 * 0.5 / 0.25 is exactly 512).
    needed = math.ceil(model.tile_size * model.gsd_m / data_gsd - 1e-9)
    (left, right), (top, bottom) = _padding(width, needed), _padding(height, needed)
    pad = ((top, bottom), (left, right), (0, 0))
    # The origin sits on the model's pixel lattice, so the working grid matches the pair's extent.
    x0 = round(LOCAL_ORIGIN[0] / model.gsd_m) * model.gsd_m
    y0 = round(LOCAL_ORIGIN[1] / model.gsd_m) * model.gsd_m
    full_w, full_h = width + left + right, height + top + bottom
    frame = _Frame(to_wkt(make_srs(f"EPSG:{LOCAL_EPSG}")), (x0, y0 - full_h * data_gsd, x0 + full_w * data_gsd, y0),
                   full_w, full_h)
    label = None
    if record.mask is not None:
        truth = _read_label(record.mask)
        if truth.shape != (height, width):
            raise ValueError(f"{record.name}: label {truth.shape} and images {(height, width)} differ in size")
        label = _write_geotiff(workdir / "label.tif", np.pad(truth, pad[:2], mode="symmetric"), frame)
    return _Prepared(
        _write_geotiff(workdir / "before.tif", np.pad(before, pad, mode="symmetric"), frame),
        _write_geotiff(workdir / "after.tif", np.pad(after, pad, mode="symmetric"), frame),
        label, frame, (left, top, width, height), (left, top, right, bottom),
    )


def _warp(path: Path, crs_wkt: str, bounds: Bounds, width: int, height: int, resampling: str) -> np.ndarray:
    """Band 1 of ``path`` on the given pixel grid (NaN where a float source has no data)."""
    ds = gdal.Warp("", str(path), options=gdal.WarpOptions(
        format="MEM", dstSRS=crs_wkt, outputBounds=bounds, width=width, height=height, resampleAlg=resampling))
    return ds.GetRasterBand(1).ReadAsArray()


def _tile_layer(gpkg: Path) -> dict[int, tuple[bool, float, str]]:
    """The ``tiles`` layer `hisem caption` wrote: index -> (changed, change_score, caption)."""
    ds = ogr.Open(str(gpkg))
    try:
        return {int(f.GetField("tile_index")): (bool(f.GetField("changed")), float(f.GetField("change_score")),
                                                 f.GetField("caption") or "")
                for f in ds.GetLayerByName("tiles")}
    finally:
        ds = None


def evaluate_pair(runner: Runner, model: ModelInfo, record: PairRecord, settings: EngineSettings,
                  workdir: Path) -> PairOutcome:
    """Run `hisem caption`'s pipeline on one pair (files go to ``workdir``) and score what it wrote."""
    data_gsd = settings.data_gsd if settings.data_gsd is not None else model.gsd_m
    pair = _prepare(record, model, data_gsd, workdir)
    options = CaptionOptions(model=str(model.path), runner=runner, threshold=settings.threshold, n_best=1,
                             batch_size=settings.batch_size, max_tiles=None, overwrite=True)
    plan = plan_run(pair.before, pair.after, options)  # the same grid and tiles the run below makes
    result = caption_changes(pair.before, pair.after, workdir / "pair.gpkg", options)
    tiles = _tile_layer(result.gpkg)
    frame, (x, y, w, h) = pair.frame, pair.window
    prob = _warp(result.prob_tif, frame.crs_wkt, frame.bounds, frame.width, frame.height, "bilinear")
    predicted = (np.nan_to_num(prob[y:y + h, x:x + w], nan=0.0) >= settings.threshold).astype(np.uint8)

    grid = plan.grid
    on_grid = None
    if pair.label is not None:
        on_grid = _warp(pair.label, grid.crs_wkt, grid.bounds, grid.width, grid.height, "near") > 0
    tile_rows, fractions = [], []
    for tile in plan.tiles:
        if tile.index not in tiles:  # skipped by the pipeline as mostly nodata
            continue
        changed, score, caption = tiles[tile.index]
        row: dict[str, Any] = {"index": tile.index, "change_prob": score, "changed": changed, "caption": caption}
        if on_grid is not None:
            tw, th = tile.clip(grid)
            row["changed_fraction"] = float(on_grid[tile.y_off:tile.y_off + th, tile.x_off:tile.x_off + tw].mean())
            fractions.append((row["changed_fraction"], changed))
        tile_rows.append(row)
    best = max(tile_rows, key=lambda r: r["change_prob"])
    truth = _read_label(record.mask) if record.mask is not None else None
    if truth is not None and truth.shape != predicted.shape:
        raise ValueError(f"{record.name}: label {truth.shape} and images {predicted.shape} differ in size")
    entry: dict[str, Any] = {
        "name": record.name, "tiles": len(tile_rows), "tiles_called_changed": sum(r["changed"] for r in tile_rows),
        "marked_fraction": float(predicted.mean()), "caption": best["caption"], "change_prob": best["change_prob"],
        "padding_px": list(pair.padding), "working_grid": [grid.width, grid.height], "overlap_px": plan.overlap,
        "tile_results": tile_rows,
    }
    if truth is not None:
        entry["changed_fraction"] = float(truth.mean())
    if record.captions:
        entry["references"] = [" ".join(tokens) for tokens in record.captions]
    return PairOutcome(entry, best["caption"], any(r["changed"] for r in tile_rows), predicted, truth, fractions)


def evaluate_engine(
    model: ModelInfo,
    records: Sequence[PairRecord],
    settings: EngineSettings | None = None,
    runner: Runner | None = None,
    field_vocab: Vocab | None = None,
) -> dict[str, Any]:
    """The report of ``hisem.evaluation.report`` for an installed model run as `hisem caption` runs it.

    Adds ``baselines`` (differencing, all_changed) and a per-tile ``change_flag`` for labelled
    pairs, and ``pairs`` (per pair: tiles, tiles called changed, share of pixels marked, the caption
    of its most-changed tile, every tile's answer). Records without both images are left out
    (``n.skipped_no_images``): a captions JSON may list far more pairs than a folder holds.
    """
    settings = settings or EngineSettings()
    usable = [r for r in records if r.before is not None and r.after is not None]
    if not usable:
        raise ValueError(f"none of the {len(records)} pairs has both images")
    runner = runner or OrtRunner(model.path)
    masks, tile_flags = MaskMetrics(), TileFlagMetrics()
    outcomes: list[PairOutcome] = []
    for record in tqdm(usable, desc=model.id, unit="pair", disable=not settings.progress):
        with tempfile.TemporaryDirectory(prefix="hisem-eval-") as tmp:
            outcome = evaluate_pair(runner, model, record, settings, Path(tmp))
        if outcome.truth is not None and outcome.predicted is not None:
            masks.update(outcome.predicted, outcome.truth)
        for fraction, called in outcome.tile_fractions:
            tile_flags.update(fraction, called)
        outcomes.append(outcome)
    labelled = masks.n > 0
    report = build_report(usable, captions=[o.caption for o in outcomes],
                          change_flags=[int(o.called_changed) for o in outcomes],
                          mask_metrics=masks if labelled else None, field_vocab=field_vocab)
    report["n"]["tiles"] = sum(o.entry["tiles"] for o in outcomes)
    report["n"]["skipped_no_images"] = len(records) - len(usable)
    if labelled:
        report["change_flag"] = tile_flags.compute()
        report["n"]["change_flag"] = report["change_flag"]["n"]
        report["baselines"] = baseline_scores(usable)
    report["pairs"] = [o.entry for o in outcomes]
    report["protocol"].update({
        "change_flag_from": "model, per tile: change_prob >= threshold (as `hisem caption`)" if labelled
        else "model: a pair is changed when any of its tiles is",
        "pair_caption": "the caption of the pair's tile with the highest change_prob",
        "mask_resolution": "the label's: stitched probabilities resampled bilinearly, then thresholded",
        "differencing": "grey |A-B| (PIL luma), Otsu threshold per pair, at the label's resolution",
    })
    report["inputs"] = {
        "model": model.id, "model_path": str(model.path), "engine": "onnxruntime", "providers": runner.providers,
        "model_gsd_m": model.gsd_m, "tile_size": model.tile_size, "overlap_px": outcomes[0].entry["overlap_px"],
        "data_gsd_m": settings.data_gsd, "threshold": settings.threshold,
    }
    return report
