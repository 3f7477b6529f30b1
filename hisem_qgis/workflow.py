"""One caption run, start to finish, off the GUI thread: check → pair → submit → poll → GeoPackage.

Shared by the dock's QgsTask and the Processing algorithm, so both run the same steps with the
same errors. Nothing here touches the project: the caller adds the layers (on the main thread)
only when the run succeeded, so a failed or cancelled run changes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsFeedback,
    QgsGeometry,
    QgsRasterLayer,
)

from .backend import BackendClient, BackendError
from .layers import write_result_gpkg
from .pairing import PairGrid, PairingCancelled, ScaledFeedback, pair_layers

POLL_S = 0.5
# Share of the progress bar per step: pairing reads both layers; the backend does the rest.
PAIRING_SHARE, BACKEND_SHARE = 30.0, 68.0


class RunCancelled(Exception):
    """The user cancelled; the backend job (if any) was cancelled too and nothing was written."""


@dataclass(frozen=True)
class LayerSource:
    """What is needed to open a layer again in the task's own thread (layers are not thread-safe)."""

    source: str
    name: str
    provider: str

    @classmethod
    def of(cls, layer: QgsRasterLayer) -> LayerSource:
        return cls(layer.source(), layer.name(), layer.providerType())

    def open(self) -> QgsRasterLayer:
        layer = QgsRasterLayer(self.source, self.name, self.provider)
        if not layer.isValid():
            raise ValueError(f"cannot open the layer {self.name!r} again ({self.provider}: {self.source[:120]})")
        return layer


@dataclass
class CaptionRequest:
    """Everything one run needs, as plain values taken on the main thread."""

    before: LayerSource
    after: LayerSource
    aoi: QgsGeometry  # in aoi_crs
    aoi_crs: QgsCoordinateReferenceSystem
    gsd: float
    output: Path
    client: BackendClient  # built on the main thread: reading a token may need the master password
    params: dict[str, Any] = field(default_factory=dict)  # model, tile_size, overlap, beam, threshold, ...
    transform_context: QgsCoordinateTransformContext = field(default_factory=QgsCoordinateTransformContext)
    overwrite: bool = False


@dataclass
class CaptionOutcome:
    gpkg: Path
    provenance: dict[str, Any]
    changes: int
    tiles: int
    seconds: float


def _aoi_param(aoi: QgsGeometry, aoi_crs: QgsCoordinateReferenceSystem, grid: PairGrid,
               context: QgsCoordinateTransformContext) -> dict[str, str] | None:
    """The AOI polygon in the grid's CRS, so the backend masks what lies outside it in the chips."""
    if not grid.crs.authid():
        return None  # a custom CRS has no code to send; the chips are already cut to the AOI's box
    geometry = QgsGeometry(aoi)
    geometry.transform(QgsCoordinateTransform(aoi_crs, grid.crs, context))
    return {"wkt": geometry.asWkt(), "crs": grid.crs.authid()}


def _progress(feedback: QgsFeedback | None, value: float) -> None:
    if feedback is not None:
        feedback.setProgress(value)


def run_caption(request: CaptionRequest, feedback: QgsFeedback | None = None) -> CaptionOutcome:
    """The whole run; raises BackendError, PairingError, ResultError, FileExistsError or RunCancelled."""
    t0 = time.monotonic()
    if request.output.exists() and not request.overwrite:
        raise FileExistsError(f"{request.output} exists; choose another GeoPackage or allow overwriting")
    if not request.output.parent.is_dir():
        raise FileNotFoundError(f"the folder {request.output.parent} does not exist")
    client = request.client
    health = client.health(feedback)  # fail fast, before reading any pixel, when the backend is down
    workdir = Path(tempfile.mkdtemp(prefix="hisem-pair-"))
    try:
        before, after = request.before.open(), request.after.open()
        try:
            part = ScaledFeedback(feedback, 0.0, PAIRING_SHARE) if feedback is not None else None
            chips = pair_layers(before, after, request.aoi, request.aoi_crs, request.gsd, workdir,
                                request.transform_context, part)
        except PairingCancelled:
            raise RunCancelled("cancelled") from None
        if feedback is not None and feedback.isCanceled():
            raise RunCancelled("cancelled")
        params = dict(request.params, gsd=chips.grid.gsd)
        aoi = _aoi_param(request.aoi, request.aoi_crs, chips.grid, request.transform_context)
        if aoi is not None:
            params["aoi"] = aoi
        status = _submit_and_wait(client, chips.before, chips.after, params, feedback)
        job_id = status["id"]
        if status["state"] != "done":
            raise BackendError(None, f"the backend job {status['state']}: {status.get('error') or 'no reason given'}")
        result = client.result(job_id, feedback)
        provenance = dict(result.get("provenance") or {})
        provenance["backend"] = {"version": health.get("version"),
                                 "device": health.get("device")}
        provenance["layers"] = {"before": request.before.name, "after": request.after.name}
        provenance["backend"]["url"] = client.url
        result["provenance"] = provenance
        write_result_gpkg(result, request.output, overwrite=request.overwrite)
        _progress(feedback, 100.0)
        tiles = sum(1 for f in result["features"] if f["properties"].get("kind") == "tile")
        return CaptionOutcome(request.output, provenance, int(status.get("changes") or 0), tiles,
                              time.monotonic() - t0)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _submit_and_wait(client: BackendClient, before: Path, after: Path, params: dict[str, Any],
                     feedback: QgsFeedback | None) -> dict[str, Any]:
    """Upload, then poll until the job ends; a cancel aborts the request in flight and DELETEs the job."""
    job_id: str | None = None
    try:
        status = client.submit(before, after, params, feedback)
        job_id = status["id"]
        while status["state"] in ("queued", "running"):
            _progress(feedback, PAIRING_SHARE + BACKEND_SHARE * float(status.get("progress") or 0.0))
            if feedback is not None and feedback.isCanceled():
                break
            time.sleep(POLL_S)
            status = client.status(job_id, feedback)
    except BackendError:
        if feedback is None or not feedback.isCanceled():
            raise
    if feedback is not None and feedback.isCanceled():
        if job_id is not None:
            client.cancel(job_id)  # no feedback: this one request must go out
        raise RunCancelled("cancelled")
    return status
