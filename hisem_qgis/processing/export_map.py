"""``hisem:export_map``: a result GeoPackage → the annotated map (PDF and/or PNG) of ``export.export_map``.

The layout renders project layers, which are not thread-safe: the algorithm runs on the main thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from . import HisemAlgorithm, tr


class ExportMapAlgorithm(HisemAlgorithm):
    """Before/after maps, numbered change polygons, the captions table and provenance, as PDF and PNG."""

    INPUT, BEFORE, AFTER, TITLE, EXTENT, DPI = "INPUT", "BEFORE", "AFTER", "TITLE", "EXTENT", "DPI"
    OUTPUT_PDF, OUTPUT_PNG = "OUTPUT_PDF", "OUTPUT_PNG"

    def name(self) -> str:
        return "export_map"

    def displayName(self) -> str:
        return tr("Export annotated change map")

    def tags(self) -> list[str]:
        return ["change", "captioning", "map", "layout", "pdf", "png", "hisem"]

    def shortHelpString(self) -> str:
        return tr(
            "Renders a HiSem result GeoPackage (from Caption changes) with the print layout template: the "
            "BEFORE and AFTER rasters side by side, the numbered change polygons, a table of their captions, "
            "legend, scale bar, north arrow, a title with both dates and a provenance footer. EXTENT "
            "(optional) limits the maps to a part of the result; by default they show the whole AOI.")

    def flags(self) -> QgsProcessingAlgorithm.Flags:
        return super().flags() | QgsProcessingAlgorithm.Flag.FlagNoThreading

    def createInstance(self) -> ExportMapAlgorithm:
        return ExportMapAlgorithm()

    def initAlgorithm(self, configuration: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterFile(self.INPUT, tr("HiSem result (GeoPackage)"),
                                                     QgsProcessingParameterFile.Behavior.File, "gpkg"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.BEFORE, tr("Before raster"), optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(self.AFTER, tr("After raster"), optional=True))
        self.addParameter(QgsProcessingParameterString(self.TITLE, tr("Title (empty: from the dates)"),
                                                       optional=True))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, tr("Map extent (empty: the whole AOI)"),
                                                       optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.DPI, tr("Resolution (dpi)"),
                                                       QgsProcessingParameterNumber.Type.Integer, 150,
                                                       minValue=36, maxValue=1200))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_PDF, tr("Map (PDF)"), "PDF (*.pdf)",
                                                                optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_PNG, tr("Map (PNG)"), "PNG (*.png)",
                                                                optional=True))

    def _destination(self, parameters: dict[str, Any], name: str, suffix: str,
                     context: QgsProcessingContext) -> Path | None:
        text = self.parameterAsFileOutput(parameters, name, context)
        if not text:
            return None
        path = Path(text)
        if path.suffix.lower() != suffix:
            raise QgsProcessingException(f"{name} must be a {suffix} file, not {path.name!r}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise QgsProcessingException(f"cannot create the folder of {name} {path.parent}: {exc}") from exc
        return path

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from .. import export  # the layout code loads only when a map is made

        gpkg = Path(self.parameterAsFile(parameters, self.INPUT, context))
        if not gpkg.is_file():
            raise QgsProcessingException(f"INPUT: the result {gpkg} does not exist")
        before = self.parameterAsRasterLayer(parameters, self.BEFORE, context)
        after = self.parameterAsRasterLayer(parameters, self.AFTER, context)
        pdf = self._destination(parameters, self.OUTPUT_PDF, ".pdf", context)
        png = self._destination(parameters, self.OUTPUT_PNG, ".png", context)
        if pdf is None and png is None:
            raise QgsProcessingException("nothing to write: set OUTPUT_PDF, OUTPUT_PNG or both")
        extent = self.parameterAsExtent(parameters, self.EXTENT, context)
        extent_crs = None
        if extent.isNull() or extent.isEmpty():
            extent = None
        else:
            extent_crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
            if not extent_crs.isValid():
                raise QgsProcessingException("EXTENT names no CRS: write it as 'xmin,xmax,ymin,ymax [EPSG:n]'")
        title = self.parameterAsString(parameters, self.TITLE, context).strip() or None
        try:
            written = export.export_map(gpkg, before, after, pdf, png, title=title, extent=extent,
                                        extent_crs=extent_crs, dpi=self.parameterAsInt(parameters, self.DPI, context))
        except (OSError, ValueError, RuntimeError) as exc:
            raise QgsProcessingException(f"cannot export the map of {gpkg.name}: {exc}") from exc
        for path in written:
            feedback.pushInfo(f"wrote {path}")
        return {self.OUTPUT_PDF: str(pdf) if pdf else None, self.OUTPUT_PNG: str(png) if png else None}
