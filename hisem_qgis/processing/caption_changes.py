"""``hisem:caption_changes``: the dock's run as a Processing algorithm (batch, Model Builder, qgis_process).

It builds the same ``workflow.CaptionRequest`` as the dock and calls the same ``workflow.run_caption``,
so both paths pair, submit and write the GeoPackage identically. Everything that touches project
layers or the authentication database happens in ``prepareAlgorithm`` (main thread); the run itself
needs only plain values and may go to Processing's worker thread. The result layers are loaded (and
styled) by Processing on completion, never by a failed run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeedback,
    QgsGeometry,
    QgsMapLayer,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingParameterAuthConfig,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsRasterLayer,
    QgsVectorLayer,
)

from ..backend import BackendClient, BackendError
from ..dates import guess_date
from ..layers import LAYERS, ResultError, set_metadata, styles_dir
from ..pairing import PairingError
from ..settings import DEFAULT_URL, PluginSettings
from ..workflow import CaptionOutcome, CaptionRequest, LayerSource, RunCancelled, run_caption
from . import HisemAlgorithm, tr

AOI_MISSING = ("no area of interest: set EXTENT (e.g. 'xmin,xmax,ymin,ymax [EPSG:32633]') or AOI (a layer of "
               "polygons)")
AOI_BOTH = "set the area of interest either as EXTENT or as AOI polygons, not both"
RESULT_LAYER_PROPERTY = "hisem/result_layer"  # "changes" or "tiles": which layer of a result this is


class ResultStyler(QgsProcessingLayerPostProcessorInterface):
    """Applies the plugin's QML style and the run's provenance to a result layer once Processing loaded it.

    Processing keeps only a C++ pointer to a post-processor, and ``QgsProcessingAlgorithm.run()`` runs
    (and then deletes) a copy of the algorithm: a styler lives in ``_PENDING`` until it has run.
    """

    def __init__(self, name: str, style: Path, provenance: dict[str, Any]) -> None:
        super().__init__()
        self.name, self.style, self.provenance = name, style, provenance
        _PENDING.add(self)

    def postProcessLayer(self, layer: QgsMapLayer, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> None:
        try:
            if not isinstance(layer, QgsVectorLayer):
                return
            message, ok = layer.loadNamedStyle(str(self.style))
            if not ok and feedback is not None:
                feedback.reportError(f"cannot apply the style {self.style.name} to {layer.name()!r}: {message}")
            set_metadata(layer, self.name, self.provenance)  # after the style, which may reset custom properties
            layer.setCustomProperty(RESULT_LAYER_PROPERTY, self.name)
            layer.triggerRepaint()
        finally:
            _PENDING.discard(self)  # Processing calls it once; the caller's reference keeps it alive until it returns


_PENDING: set[ResultStyler] = set()


class CaptionChangesAlgorithm(HisemAlgorithm):
    """Before + after raster + AOI → a GeoPackage of captioned changes and tiles, from a HiSem backend."""

    BEFORE, AFTER, EXTENT, AOI = "BEFORE", "AFTER", "EXTENT", "AOI"
    GSD, MODEL, TILE_SIZE, OVERLAP, BEAM, THRESHOLD, MAX_TILES = (
        "GSD", "MODEL", "TILE_SIZE", "OVERLAP", "BEAM", "THRESHOLD", "MAX_TILES")
    BEFORE_DATE, AFTER_DATE, BACKEND_URL, AUTHCFG = "BEFORE_DATE", "AFTER_DATE", "BACKEND_URL", "AUTHCFG"
    OUTPUT, CHANGES, TILES = "OUTPUT", "CHANGES", "TILES"

    def __init__(self) -> None:
        super().__init__()
        self._request: CaptionRequest | None = None
        self._outcome: CaptionOutcome | None = None

    # -- identity --------------------------------------------------------------------------------

    def name(self) -> str:
        return "caption_changes"

    def displayName(self) -> str:
        return tr("Caption changes")

    def tags(self) -> list[str]:
        return ["change", "captioning", "change detection", "remote sensing", "hisem", "deep learning"]

    def shortHelpString(self) -> str:
        return tr(
            "Pairs the BEFORE and AFTER raster layers over the area of interest (EXTENT, or the polygons of "
            "AOI) on one grid in a metric CRS, sends the pair to a HiSem backend (hisem serve) and writes "
            "the captioned changes and tiles to OUTPUT (GeoPackage).\n\n"
            "GSD 0, TILE_SIZE 0 and an empty MODEL take the backend's model and its native values; "
            "OVERLAP -1 takes the backend's default. AUTHCFG holds the backend's access token when it "
            "needs one. Empty dates are guessed from the layers' metadata or names.")

    def createInstance(self) -> CaptionChangesAlgorithm:
        return CaptionChangesAlgorithm()

    # -- parameters ------------------------------------------------------------------------------

    def initAlgorithm(self, configuration: dict[str, Any] | None = None) -> None:
        settings = PluginSettings.load()
        number = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterRasterLayer(self.BEFORE, tr("Before (earlier date)")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.AFTER, tr("After (later date)")))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, tr("Area of interest: extent"), optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.AOI, tr("Area of interest: polygons (instead of an extent)"),
            [QgsProcessing.SourceType.TypeVectorPolygon], optional=True))
        self.addParameter(number(self.GSD, tr("Ground sample distance in metres (0: the model's)"),
                                 number.Type.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterString(self.MODEL, tr("Model id (empty: the backend's default)"),
                                                       settings.model, optional=True))
        self.addParameter(number(self.TILE_SIZE, tr("Tile size in pixels (0: the model's)"), number.Type.Integer,
                                 0, minValue=0))
        self.addParameter(number(self.OVERLAP, tr("Tile overlap in pixels (-1: the backend's default)"),
                                 number.Type.Integer, -1, minValue=-1))
        self.addParameter(number(self.BEAM, tr("Beam size"), number.Type.Integer, settings.beam, minValue=1,
                                 maxValue=20))
        self.addParameter(number(self.THRESHOLD, tr("Change threshold"), number.Type.Double, settings.threshold,
                                 minValue=0.0, maxValue=1.0))
        self.addParameter(number(self.MAX_TILES, tr("Most tiles to caption"), number.Type.Integer,
                                 settings.max_tiles, minValue=1))
        self.addParameter(QgsProcessingParameterString(self.BEFORE_DATE, tr("Before date (empty: guessed)"),
                                                       optional=True))
        self.addParameter(QgsProcessingParameterString(self.AFTER_DATE, tr("After date (empty: guessed)"),
                                                       optional=True))
        backend = [
            QgsProcessingParameterString(self.BACKEND_URL, tr("Backend URL"), settings.backend_url or DEFAULT_URL),
            QgsProcessingParameterAuthConfig(self.AUTHCFG, tr("Backend access token (authentication configuration)"),
                                             settings.authcfg, optional=True),
        ]
        for parameter in backend:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(parameter)
        for name in (self.TILE_SIZE, self.OVERLAP, self.BEAM, self.THRESHOLD, self.MAX_TILES):
            definition = self.parameterDefinition(name)
            definition.setFlags(definition.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, tr("Captioned changes"),
                                                                "GeoPackage (*.gpkg)"))
        self.addOutput(QgsProcessingOutputNumber(self.CHANGES, tr("Number of change polygons")))
        self.addOutput(QgsProcessingOutputNumber(self.TILES, tr("Number of tiles captioned")))

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        """Exactly one AOI, said before the run starts (the dialog and batch rows show it at once)."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        extent = self.parameterAsExtent(parameters, self.EXTENT, context)
        has_extent = extent is not None and not extent.isNull() and not extent.isEmpty()
        has_aoi = parameters.get(self.AOI) not in (None, "")
        if has_extent and has_aoi:
            return False, AOI_BOTH
        if not has_extent and not has_aoi:
            return False, AOI_MISSING
        return True, ""

    # -- run -------------------------------------------------------------------------------------

    def prepareAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> bool:
        """Main thread: read the layers, the AOI and the token into a plain CaptionRequest."""
        self._outcome = None
        before = self.parameterAsRasterLayer(parameters, self.BEFORE, context)
        after = self.parameterAsRasterLayer(parameters, self.AFTER, context)
        for what, layer in (("BEFORE", before), ("AFTER", after)):
            if layer is None or not layer.isValid():
                raise QgsProcessingException(f"{what}: not a raster layer that QGIS can open")
        if before.source() == after.source() and before.providerType() == after.providerType():
            raise QgsProcessingException("BEFORE and AFTER are the same raster: choose the two dates' layers")
        aoi, aoi_crs = self._aoi(parameters, context, before)
        output = Path(self.parameterAsFileOutput(parameters, self.OUTPUT, context))
        if output.suffix.lower() != ".gpkg":
            raise QgsProcessingException(f"OUTPUT must be a GeoPackage (.gpkg), not {output.name!r}")
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise QgsProcessingException(f"cannot create the folder of OUTPUT {output.parent}: {exc}") from exc
        url = self.parameterAsString(parameters, self.BACKEND_URL, context).strip() or DEFAULT_URL
        try:
            client = BackendClient(url, self.parameterAsString(parameters, self.AUTHCFG, context) or None)
        except BackendError as exc:
            raise QgsProcessingException(exc.detail) from exc
        self._request = CaptionRequest(
            before=LayerSource.of(before), after=LayerSource.of(after), aoi=aoi, aoi_crs=aoi_crs,
            gsd=self.parameterAsDouble(parameters, self.GSD, context), output=output, client=client,
            params=self._params(parameters, context, before, after), transform_context=context.transformContext(),
            overwrite=True)  # a Processing destination is replaced; the write is atomic, so a failure keeps the old one
        return True

    def _aoi(self, parameters: dict[str, Any], context: QgsProcessingContext,
             before: QgsRasterLayer) -> tuple[QgsGeometry, QgsCoordinateReferenceSystem]:
        """The AOI from EXTENT or from AOI's (selected) polygons: exactly one of the two."""
        extent = self.parameterAsExtent(parameters, self.EXTENT, context)
        has_extent = extent is not None and not extent.isNull() and not extent.isEmpty()
        source = self.parameterAsSource(parameters, self.AOI, context)
        if has_extent and source is not None:
            raise QgsProcessingException(AOI_BOTH)
        if source is not None:
            geoms = [f.geometry() for f in source.getFeatures() if f.hasGeometry()]
            geoms = [g if g.isGeosValid() else g.makeValid() for g in geoms if not g.isEmpty()]
            if not geoms:
                raise QgsProcessingException("AOI: the layer has no polygon (or none selected while "
                                             "'selected features only' is ticked)")
            union = QgsGeometry.unaryUnion(geoms)
            if union.isNull() or union.isEmpty() or union.area() <= 0:
                raise QgsProcessingException("AOI: the polygons have no area")
            if not source.sourceCrs().isValid():
                raise QgsProcessingException("AOI: the layer has no CRS; set it first")
            return union, source.sourceCrs()
        if not has_extent:
            raise QgsProcessingException(AOI_MISSING)
        crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
        if not crs.isValid():  # an extent typed without "[EPSG:n]" outside a project: the BEFORE layer's CRS
            crs = before.crs()
        return QgsGeometry.fromRect(extent), crs

    def _params(self, parameters: dict[str, Any], context: QgsProcessingContext, before: QgsRasterLayer,
                after: QgsRasterLayer) -> dict[str, Any]:
        """The job's params as the dock sends them; defaults left out so the backend chooses."""
        params: dict[str, Any] = {
            "beam": self.parameterAsInt(parameters, self.BEAM, context),
            "threshold": round(self.parameterAsDouble(parameters, self.THRESHOLD, context), 4),
            "max_tiles": self.parameterAsInt(parameters, self.MAX_TILES, context),
        }
        if model := self.parameterAsString(parameters, self.MODEL, context).strip():
            params["model"] = model
        if (tile := self.parameterAsInt(parameters, self.TILE_SIZE, context)) > 0:
            params["tile_size"] = tile
        if (overlap := self.parameterAsInt(parameters, self.OVERLAP, context)) >= 0:
            params["overlap"] = overlap
        dates = {"before": self.parameterAsString(parameters, self.BEFORE_DATE, context).strip() or guess_date(before),
                 "after": self.parameterAsString(parameters, self.AFTER_DATE, context).strip() or guess_date(after)}
        params["dates"] = {k: v for k, v in dates.items() if v}
        params["labels"] = {"before": before.name(), "after": after.name()}
        return params

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        request = self._request
        if request is None:  # pragma: no cover - Processing always prepares first
            raise QgsProcessingException("the algorithm was not prepared")
        try:
            if request.gsd <= 0:
                request.gsd = self._model_gsd(request.client, request.params.get("model"), feedback)
            feedback.pushInfo(f"backend {request.client.url}, model {request.params.get('model') or '(default)'}, "
                              f"GSD {request.gsd:g} m, AOI in {request.aoi_crs.authid() or 'a custom CRS'}")
            outcome = run_caption(request, feedback)
        except RunCancelled:
            raise QgsProcessingException("cancelled: nothing was written") from None
        except BackendError as exc:
            raise QgsProcessingException(exc.detail) from exc
        except (PairingError, ResultError, OSError, ValueError) as exc:
            raise QgsProcessingException(str(exc)) from exc
        self._outcome = outcome
        feedback.pushInfo(f"{outcome.changes} change(s) in {outcome.tiles} tile(s), model "
                          f"{outcome.provenance.get('model')}, {outcome.seconds:.1f} s → {outcome.gpkg}")
        return {self.OUTPUT: str(outcome.gpkg), self.CHANGES: outcome.changes, self.TILES: outcome.tiles}

    @staticmethod
    def _model_gsd(client: BackendClient, model_id: str | None, feedback: QgsFeedback) -> float:
        """The chosen (or the backend's default) model's native GSD, from GET /v1/models."""
        models = client.models(feedback)
        if not models:
            raise QgsProcessingException(f"the backend at {client.url} has no model installed: "
                                         "see `hisem models` on the backend's machine")
        if model_id:
            model = next((m for m in models if m.get("id") == model_id), None)
            if model is None:
                raise QgsProcessingException(f"the backend at {client.url} has no model {model_id!r}; it has: "
                                             + ", ".join(str(m.get("id")) for m in models))
        else:
            model = next((m for m in models if m.get("default")), models[0])
        gsd = model.get("gsd_m")
        if not isinstance(gsd, (int, float)) or gsd <= 0:
            raise QgsProcessingException(f"the model {model.get('id')!r} names no native GSD: set GSD")
        return float(gsd)

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Main thread: hand the styled ``changes`` and ``tiles`` layers to Processing to load on completion."""
        outcome = self._outcome
        if outcome is None:
            return {}
        styles = styles_dir()
        for name, qml in LAYERS:
            layer = QgsVectorLayer(f"{outcome.gpkg}|layername={name}", f"{outcome.gpkg.stem} {name}", "ogr")
            if not layer.isValid():
                feedback.reportError(f"{outcome.gpkg}: cannot open layer {name!r}")
                continue
            context.temporaryLayerStore().addMapLayer(layer)
            details = QgsProcessingContext.LayerDetails(layer.name(), context.project(), self.OUTPUT)
            details.setPostProcessor(ResultStyler(name, styles / qml, outcome.provenance))
            context.addLayerToLoadOnCompletion(layer.id(), details)
        return {self.OUTPUT: str(outcome.gpkg), self.CHANGES: outcome.changes, self.TILES: outcome.tiles}
