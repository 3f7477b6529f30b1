"""The /v1 contract's bodies: what clients send (``JobParams``) and what they get back.

These pydantic models are the source of docs/openapi.json. ``JobParams`` forbids unknown fields
and accepts no file path anywhere: the model is an id, the AOI is WKT or a bbox, a CRS is an
authority code (GDAL would read a file named in a CRS or an AOI string). Types are strict (``"3"``
and ``true`` are not a beam width) and numbers finite (NaN is not a GSD).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hisem.pipeline.options import MAX_BEAM

MODEL_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
AUTHORITY_CODE = r"^[A-Za-z][A-Za-z0-9_]*:[A-Za-z0-9.]+$"  # EPSG:4326, OGC:CRS84, ESRI:102100
JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED_STATES = ("done", "failed", "cancelled")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class AoiParams(_Strict):
    """The area of interest: a polygon as WKT, or a bbox, in the CRS named by ``crs``."""

    wkt: str | None = Field(None, min_length=1, max_length=5_000_000,
                            description="Polygon or MultiPolygon WKT (EPSG:4326: longitude first)")
    bbox: tuple[float, float, float, float] | None = Field(None, description="minx, miny, maxx, maxy")
    crs: str = Field(..., pattern=AUTHORITY_CODE, max_length=64, examples=["EPSG:4326"])

    @model_validator(mode="after")
    def _one_shape(self) -> AoiParams:
        if (self.wkt is None) == (self.bbox is None):
            raise ValueError("give exactly one of wkt and bbox")
        return self

    def as_text(self) -> str:
        """The pipeline's AOI string: WKT, or "minx,miny,maxx,maxy"."""
        return self.wkt if self.wkt is not None else ",".join(repr(float(v)) for v in self.bbox or ())


class DatePair(_Strict):
    """Free-form acquisition dates (ISO 8601 preferred), kept in the result's provenance."""

    before: str | None = Field(None, max_length=64)
    after: str | None = Field(None, max_length=64)


class JobParams(_Strict):
    """The ``params`` part of ``POST /v1/jobs`` (JSON). Every field is optional."""

    model: str | None = Field(None, pattern=MODEL_ID, description="installed model id (default: the default model)")
    aoi: AoiParams | None = Field(None, description="limit the run to this area (default: the rasters' overlap)")
    gsd: float | None = Field(None, gt=0, le=1000, description="working ground sample distance in metres")
    tile_size: int | None = Field(None, ge=8, le=4096, description="tile side in pixels (default: the model's)")
    overlap: int | None = Field(None, ge=0, le=2048, description="tile overlap in pixels (default: tile/8)")
    beam: int = Field(1, ge=1, le=MAX_BEAM, description="beam width; 1 is greedy decoding")
    n_best: int = Field(3, ge=1, le=MAX_BEAM, description="captions kept per tile (at most beam)")
    no_repeat_ngram: int = Field(3, ge=0, le=64, description="no caption repeats an n-gram of this size "
                                 "or a clause; 0 turns repetition blocking off")
    threshold: float = Field(0.5, gt=0, lt=1, description="change probability threshold for tiles and pixels")
    bands: tuple[int, int, int] | None = Field(None, description="R, G, B band numbers (default: colour interp.)")
    max_tiles: int = Field(10_000, ge=1, le=1_000_000,
                           description="refuse runs with more tiles (the server's own cap, max_tiles, also applies)")
    min_area_m2: float = Field(4.0, ge=0, le=1e9, description="smallest change polygon kept")
    dates: DatePair | None = None
    labels: dict[str, str] | None = Field(None, max_length=32,
                                          description="free labels kept in provenance (e.g. layer names)")

    @model_validator(mode="after")
    def _bands_positive(self) -> JobParams:
        if self.bands is not None and min(self.bands) < 1:
            raise ValueError("bands: band numbers start at 1")
        return self

    def caption_options(self) -> dict[str, Any]:
        """Keyword arguments of ``hisem.pipeline.CaptionOptions`` (plain values: they cross to a worker)."""
        return {
            "model": self.model, "aoi": self.aoi.as_text() if self.aoi else None,
            "aoi_crs": self.aoi.crs if self.aoi else None, "aoi_files": False, "gsd": self.gsd,
            "tile_size": self.tile_size, "overlap": self.overlap, "beam": self.beam, "n_best": self.n_best,
            "no_repeat_ngram": self.no_repeat_ngram,
            "threshold": self.threshold, "bands": self.bands, "max_tiles": self.max_tiles,
            "min_area_m2": self.min_area_m2,
        }


class ErrorBody(BaseModel):
    """Every 4xx answer: ``detail`` names the problem in one sentence; ``cap`` and ``limit`` when a server
    cap was hit (the cap's name is the ``hisem serve`` flag's, and a key of ``Health.caps``)."""

    detail: str
    cap: str | None = Field(None, description="the server cap that refused the request, e.g. max_tiles")
    limit: float | None = Field(None, description="that cap's value on this server")


class JobStatus(BaseModel):
    """A job as ``GET /v1/jobs/{id}`` shows it."""

    id: str
    state: JobState
    tiles_done: int
    tiles_total: int
    progress: float = Field(description="tiles_done / tiles_total, 0 to 1")
    eta_s: float | None = Field(description="seconds left, estimated from the rate so far (running jobs)")
    created: str
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    warnings: list[str] = []
    model: str
    changes: int | None = Field(None, description="change regions found (done jobs)")
    result_url: str | None = None


class ModelEntry(BaseModel):
    """One installed model, as ``GET /v1/models`` lists it."""

    id: str
    preset: str
    tile_size: int
    gsd_m: float
    bands: str
    precisions: list[str]
    metrics: dict[str, float]
    training_data: Any = None
    default: bool


class Health(BaseModel):
    """``GET /v1/health``: answers without a token, so that a client can tell "down" from "refused"."""

    status: Literal["ok", "degraded"] = Field(description="degraded while a worker is down (being restarted)")
    version: str
    model: str | None = Field(description="the default model, None when no model is installed")
    execution_provider: str = Field(description="the ONNX Runtime provider the workers really use")
    providers: list[str]
    device: str
    workers: int
    jobs_queued: int
    jobs_running: int
    auth_required: bool
    workers_alive: int = Field(description="worker processes ready to run a job")
    worker_restarts: int = Field(description="workers replaced since the server started (died idle or in a job)")
    last_worker_failure: str | None = Field(None, description="what happened to the last worker replaced, and when")
    caps: dict[str, float] = Field(description="the server's caps by name (max_tiles, max_tile_megapixels, ...); "
                                   "a request beyond one gets a 4xx naming it")
