"""What a caption run is asked to do, and what it reports back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hisem.engine.registry import ModelInfo
    from hisem.engine.runner import Runner
    from hisem.geo import Aoi, Grid, RasterInfo, Tile
    from hisem.geo.raster import RasterLimits

# progress(done_tiles, total_tiles): called after each batch (and once at 0).
ProgressCallback = Callable[[int, int], None]
# cancel() -> True stops the run between batches, leaving nothing at the output paths.
CancelHook = Callable[[], bool]
# Beam search costs time and memory in proportion to the width (beam 1000: 90 s and 10 GB a tile).
MAX_BEAM = 10


@dataclass
class CaptionOptions:
    """Parameters of one run; ``None`` means "the model's own" (GSD, tile size) or "none" (AOI)."""

    model: str | None = None  # installed id or model folder; None: the default model
    aoi: str | None = None  # vector file, WKT/EWKT or "minx,miny,maxx,maxy" (then aoi_crs is needed)
    aoi_crs: str | None = None
    aoi_files: bool = True  # False: ``aoi`` must be WKT or a bbox, never a path (the HTTP service)
    gsd: float | None = None
    tile_size: int | None = None
    overlap: int | None = None  # pixels; None: tile_size // 8
    beam: int = 1  # at most MAX_BEAM
    n_best: int = 3  # alternatives kept per tile (capped at ``beam``)
    # No n-gram of this size and no clause twice in a caption; 0: off. The engine's NO_REPEAT_NGRAM (not
    # imported: that loads onnxruntime wherever options are read; tests/backend/engine checks they agree).
    no_repeat_ngram: int = 3
    threshold: float = 0.5  # for both P(changed) of a tile and the per-pixel probability
    bands: tuple[int, int, int] | None = None
    max_tiles: int | None = 10_000
    batch_size: int = 8
    min_area_m2: float = 4.0
    simplify_m: float | None = None  # None: one working-grid pixel
    geojson: Path | None = None  # the ``changes`` layer as RFC 7946 GeoJSON
    prob_path: Path | None = None  # stitched probabilities; None: OUT with suffix ".prob.tif"
    overwrite: bool = False
    providers: str | list[str] = "auto"
    raster_limits: RasterLimits | None = None  # caps on what the rasters declare; None: the geo defaults
    input_names: dict[str, str] | None = None  # role -> name recorded instead of the path (the service's uploads)
    runner: Runner | None = None  # an engine already loaded for ``model`` (the service keeps one per worker)
    progress: ProgressCallback | None = None
    cancel: CancelHook | None = None


@dataclass
class RunPlan:
    """What a run will do, known before a pixel is read: the checks that the service runs at submission."""

    model: ModelInfo
    before: RasterInfo
    after: RasterInfo
    aoi: Aoi | None
    grid: Grid
    tiles: list[Tile]
    tile_size: int
    overlap: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class CaptionResult:
    """Where the results went and the figures of the run (also stored in the ``run`` table)."""

    gpkg: Path
    prob_tif: Path
    geojson: Path | None
    crs_wkt: str
    tiles_total: int
    tiles_skipped: int
    changes: int
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)
    model_id: str = ""
