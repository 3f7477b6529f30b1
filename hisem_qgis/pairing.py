"""Read the before and after layers over the AOI onto one grid, block by block, as two GeoTIFF chips.

The chips are what the plugin uploads (pixels, not paths, cross the wire), so this works for any
QgsRasterLayer QGIS can draw: local GDAL rasters, COGs and web layers (XYZ, WMS/WMTS). Everything
goes through ``dataProvider().block()`` behind a ``QgsRasterProjector``, one ``block_px`` square at
a time written straight into the GeoTIFF: memory stays at one block whatever the AOI.

Resampling is nearest neighbour throughout (the projector's only method, and the GDAL provider's
default): chips keep the source's raw values (no new values at nodata edges, none invented in
16-bit data), and the backend does its own stretch. Tests compare against ``gdal.Warp(resampleAlg
="near")``.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from osgeo import gdal
from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsCsException,
    QgsFeedback,
    QgsGeometry,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsPointXY,
    QgsRaster,
    QgsRasterBlock,
    QgsRasterBlockFeedback,
    QgsRasterDataProvider,
    QgsRasterInterface,
    QgsRasterLayer,
    QgsRasterProjector,
    QgsRectangle,
    QgsSingleBandGrayRenderer,
    QgsUnitTypes,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QImage

DEFAULT_MAX_PIXELS = 400_000_000
# Same snapping tolerance as the backend (hisem.geo.grid): an extent already on the lattice must not
# grow by a pixel because 1000.0 / 0.3 is 3333.3333333333335.
_SNAP_EPS = 1e-6
# Points added per AOI edge before a reprojection: a straight edge in one CRS is a curve in another.
_DENSIFY = 32
_WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")

_GDAL_TYPES = {
    Qgis.DataType.Byte: gdal.GDT_Byte,
    Qgis.DataType.UInt16: gdal.GDT_UInt16,
    Qgis.DataType.Int16: gdal.GDT_Int16,
    Qgis.DataType.UInt32: gdal.GDT_UInt32,
    Qgis.DataType.Int32: gdal.GDT_Int32,
    Qgis.DataType.Float32: gdal.GDT_Float32,
    Qgis.DataType.Float64: gdal.GDT_Float64,
}
PALETTE = QgsRaster.ColorInterpretation.PaletteIndex
_COLOUR_TYPES = (Qgis.DataType.ARGB32, Qgis.DataType.ARGB32_Premultiplied)
_CREATION_OPTIONS = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"]


class PairingError(ValueError):
    """The layers and the AOI cannot make a grid, or a layer cannot be read onto it."""


class PairingCancelled(Exception):  # not a PairingError: a cancel is no failure to report
    """The feedback asked to stop; no chip was left behind."""


@dataclass(frozen=True)
class PairGrid:
    """A north-up grid: ``extent`` is snapped to multiples of ``gsd`` (like ``gdalwarp -tap``)."""

    crs: QgsCoordinateReferenceSystem
    extent: QgsRectangle
    gsd: float
    width: int
    height: int

    @property
    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        return (self.extent.xMinimum(), self.gsd, 0.0, self.extent.yMaximum(), 0.0, -self.gsd)

    def window(self, x_off: int, y_off: int, width: int, height: int) -> QgsRectangle:
        """Georeferenced extent of a pixel window of the grid."""
        x0, y1 = self.extent.xMinimum(), self.extent.yMaximum()
        return QgsRectangle(x0 + x_off * self.gsd, y1 - (y_off + height) * self.gsd,
                            x0 + (x_off + width) * self.gsd, y1 - y_off * self.gsd)


@dataclass(frozen=True)
class PairedChips:
    before: Path
    after: Path
    grid: PairGrid


# --- the grid -----------------------------------------------------------------------------------


def is_metric_crs(crs: QgsCoordinateReferenceSystem) -> bool:
    """Projected, in metres, and not Mercator.

    Web Mercator (EPSG:3857, the CRS of every XYZ layer) is "in metres", but its metre is 1/cos(lat)
    ground metres: a 0.5 m grid at 50° N would really be 0.32 m, and areas off by 2.4x. Any Mercator
    has that scale error, so such layers get the UTM zone instead.
    """
    if not crs.isValid() or crs.isGeographic():
        return False
    if crs.mapUnits() != QgsUnitTypes.DistanceUnit.DistanceMeters:
        return False
    return "+proj=merc" not in crs.toProj()


def utm_crs(lon: float, lat: float) -> QgsCoordinateReferenceSystem:
    """The WGS 84 UTM zone containing (lon, lat), as the backend computes it (no Norway exceptions)."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise PairingError(f"({lon:g}, {lat:g}) is not a longitude/latitude: check the AOI's CRS")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return QgsCoordinateReferenceSystem(f"EPSG:{(32600 if lat >= 0 else 32700) + zone}")


def working_crs(before: QgsRasterLayer, aoi_centre_wgs84: QgsPointXY) -> QgsCoordinateReferenceSystem:
    """The before layer's CRS if projected in (true) metres, else the UTM zone of the AOI centre."""
    crs = before.crs()
    if is_metric_crs(crs):
        return crs
    return utm_crs(aoi_centre_wgs84.x(), aoi_centre_wgs84.y())


def _transformed(geom: QgsGeometry, src: QgsCoordinateReferenceSystem, dst: QgsCoordinateReferenceSystem,
                 context: QgsCoordinateTransformContext, what: str) -> QgsGeometry:
    """A densified, transformed copy of ``geom`` (PairingError when PROJ cannot transform it)."""
    out = QgsGeometry(geom)
    if src == dst:
        return out
    out = out.densifyByCount(_DENSIFY)
    try:
        if out.transform(QgsCoordinateTransform(src, dst, context)) != Qgis.GeometryOperationResult.Success:
            raise PairingError(f"cannot transform {what} from {src.authid() or 'its CRS'} to {dst.authid()}")
    except QgsCsException as exc:
        raise PairingError(f"cannot transform {what} from {src.authid() or 'its CRS'} to "
                           f"{dst.authid()}: {exc}") from exc
    return out


def _aoi_polygon(aoi: QgsGeometry) -> QgsGeometry:
    if aoi is None or aoi.isNull() or aoi.isEmpty():
        raise PairingError("the AOI is empty: draw or choose an area first")
    if aoi.type() != QgsWkbTypes.GeometryType.PolygonGeometry:
        raise PairingError("the AOI must be a polygon (an area), not a point or a line")
    geom = QgsGeometry(aoi)
    if not geom.isGeosValid():
        geom = geom.makeValid()
    return geom


def _aoi_centre_wgs84(aoi: QgsGeometry, aoi_crs: QgsCoordinateReferenceSystem,
                      context: QgsCoordinateTransformContext) -> QgsPointXY:
    centre = aoi.boundingBox().center()
    try:
        return QgsCoordinateTransform(aoi_crs, _WGS84, context).transform(centre)
    except QgsCsException as exc:
        raise PairingError(f"cannot find the AOI's longitude/latitude: {exc}") from exc


def _clip_to_layer(aoi: QgsGeometry, aoi_crs: QgsCoordinateReferenceSystem, layer: QgsRasterLayer,
                   work_crs: QgsCoordinateReferenceSystem, context: QgsCoordinateTransformContext) -> QgsGeometry:
    """AOI ∩ layer extent, in the working CRS.

    The intersection is made in the layer's CRS: only the (small) AOI is reprojected, never a web
    layer's whole-world extent, which has no image in most projected CRSs.
    """
    if not layer.isValid():
        raise PairingError(f"layer {layer.name()!r} is not valid (missing file or unreachable service?)")
    in_layer = _transformed(aoi, aoi_crs, layer.crs(), context, f"the AOI into {layer.name()!r}'s CRS")
    part = in_layer.intersection(QgsGeometry.fromRect(layer.extent()))
    if part.isNull() or part.isEmpty() or part.area() <= 0:
        raise PairingError(f"the AOI does not overlap layer {layer.name()!r}: move the AOI onto the imagery")
    return _transformed(part, layer.crs(), work_crs, context, "the AOI into the working CRS")


def _snapped(bbox: QgsRectangle, gsd: float) -> tuple[QgsRectangle, int, int]:
    """Outward-snap to the global lattice of multiples of ``gsd`` (hisem.geo.grid.snap_bounds)."""
    ix0 = math.floor(bbox.xMinimum() / gsd + _SNAP_EPS)
    iy0 = math.floor(bbox.yMinimum() / gsd + _SNAP_EPS)
    ix1 = math.ceil(bbox.xMaximum() / gsd - _SNAP_EPS)
    iy1 = math.ceil(bbox.yMaximum() / gsd - _SNAP_EPS)
    width, height = max(ix1 - ix0, 1), max(iy1 - iy0, 1)
    return QgsRectangle(ix0 * gsd, iy0 * gsd, (ix0 + width) * gsd, (iy0 + height) * gsd), width, height


def _grid(layers: list[QgsRasterLayer], aoi: QgsGeometry, aoi_crs: QgsCoordinateReferenceSystem, gsd: float,
          context: QgsCoordinateTransformContext, max_pixels: int | None) -> tuple[PairGrid, QgsGeometry]:
    if not gsd > 0 or not math.isfinite(gsd):
        raise PairingError(f"the GSD must be a positive number of metres, got {gsd}")
    aoi = _aoi_polygon(aoi)
    crs = working_crs(layers[0], _aoi_centre_wgs84(aoi, aoi_crs, context))
    area: QgsGeometry | None = None
    for layer in layers:
        part = _clip_to_layer(aoi, aoi_crs, layer, crs, context)
        area = part if area is None else area.intersection(part)
    assert area is not None
    if area.isNull() or area.isEmpty() or area.area() <= 0:
        names = " and ".join(repr(layer.name()) for layer in layers)
        raise PairingError(f"layers {names} do not overlap each other inside the AOI")
    extent, width, height = _snapped(area.boundingBox(), gsd)
    if max_pixels is not None and width * height > max_pixels:
        raise PairingError(f"the AOI makes a {width} x {height} px grid at {gsd:g} m ({width * height / 1e6:.0f} "
                           f"million pixels), more than the limit of {max_pixels / 1e6:.0f} million: use a "
                           f"smaller AOI or a coarser GSD")
    return PairGrid(crs, extent, float(gsd), width, height), area


def pair_grid(before: QgsRasterLayer, after: QgsRasterLayer, aoi: QgsGeometry, aoi_crs: QgsCoordinateReferenceSystem,
              gsd: float, transform_context: QgsCoordinateTransformContext,
              max_pixels: int = DEFAULT_MAX_PIXELS) -> PairGrid:
    """The grid both dates are read onto: AOI ∩ both layers' extents, in the working CRS, snapped to ``gsd``."""
    return _grid([before, after], aoi, aoi_crs, gsd, transform_context, max_pixels)[0]


def axis_offsets(length: int, size: int, overlap: int) -> list[int]:
    """Tile starts along one axis, exactly as the backend tiles (hisem.geo.tiles.axis_offsets)."""
    if size <= 0 or not 0 <= overlap < size:
        raise PairingError(f"need tile size > 0 and 0 <= overlap < tile size, got {size} and {overlap}")
    if length <= size:
        return [0]
    stride = size - overlap
    count = math.ceil((length - size) / stride) + 1
    return [min(i * stride, length - size) for i in range(count)]


def estimate(before: QgsRasterLayer, aoi: QgsGeometry, aoi_crs: QgsCoordinateReferenceSystem, gsd: float,
             tile_px: int, overlap_px: int, transform_context: QgsCoordinateTransformContext) -> tuple[float, int]:
    """(area in m², number of tiles) of the AOI over the before layer, before anything is read.

    The area is the AOI's part over the layer, in the metric working CRS; the tiles are the
    backend's tiling of the same snapped grid.
    """
    grid, area = _grid([before], aoi, aoi_crs, gsd, transform_context, None)
    return area.area(), len(axis_offsets(grid.width, tile_px, overlap_px)) * len(
        axis_offsets(grid.height, tile_px, overlap_px))


# --- reading a layer onto the grid --------------------------------------------------------------


def _colour_bands(provider: QgsRasterDataProvider) -> tuple[list[int], int | None]:
    """The data bands to write, and the alpha band (a GDAL mask QGIS exposes as a band), if any."""
    bands, alpha = [], None
    for b in range(1, provider.bandCount() + 1):
        if provider.colorInterpretation(b) == QgsRaster.ColorInterpretation.AlphaBand:
            alpha = b
        else:
            bands.append(b)
    return bands, alpha


def _mask_renderer(provider: QgsRasterDataProvider, bands: list[int], alpha: int | None) -> QgsRasterInterface:
    """A renderer used only for its alpha: 0 where any of the first three bands is nodata or masked.

    QGIS keeps nodata of a raw block in a bitmap Python cannot read in bulk; a renderer turns it
    into the alpha channel of an image, which Qt converts to bytes in C++.
    """
    if len(bands) >= 3:
        renderer = QgsMultiBandColorRenderer(provider, bands[0], bands[1], bands[2])
    else:
        renderer = QgsSingleBandGrayRenderer(provider, bands[0])
    if alpha is not None:
        renderer.setAlphaBand(alpha)
    return renderer


def _image_bytes(image: QImage, fmt: QImage.Format) -> tuple[bytes, int]:
    """Pixels of ``image`` converted to ``fmt``, and the bytes per line (Qt pads lines to 4 bytes)."""
    converted = image.convertToFormat(fmt)
    ptr = converted.constBits()
    ptr.setsize(converted.bytesPerLine() * converted.height())
    return bytes(ptr), converted.bytesPerLine()


class _Cancelled(Exception):
    pass


def write_chip(layer: QgsRasterLayer, grid: PairGrid, out_path: Path, transform_context: QgsCoordinateTransformContext,
               feedback: QgsFeedback | None = None, block_px: int = 1024) -> Path:
    """Read ``layer`` onto ``grid`` block by block into a tiled, DEFLATE GeoTIFF at ``out_path``.

    Data rasters keep their bands and data type (raw values) with an internal per-dataset mask
    for nodata and outside pixels; colour layers (XYZ, WMS: ARGB32 providers) become RGBA Byte.
    Written beside the target and renamed at the end: a failure or a cancel leaves no file. Safe in
    a worker thread: it reads through its own clone of the layer's provider.
    """
    if block_px <= 0:
        raise PairingError(f"block_px must be positive, got {block_px}")
    if not layer.isValid() or layer.dataProvider() is None:
        raise PairingError(f"layer {layer.name()!r} is not valid (missing file or unreachable service?)")
    provider = layer.dataProvider().clone()
    # (A GDAL provider's clone says isValid() False on QGIS 3.22 though it reads fine: ask for bands.)
    if provider is None or provider.bandCount() < 1:
        raise PairingError(f"cannot open another reader of layer {layer.name()!r}")
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.tif")
    inner = QgsRasterBlockFeedback()
    if feedback is not None:
        # Direct: the task cancels from the main thread while this runs in the worker.
        feedback.canceled.connect(inner.cancel, Qt.ConnectionType.DirectConnection)
        if feedback.isCanceled():
            inner.cancel()
    ds = None
    try:
        ds = _write_blocks(layer.name(), provider, grid, tmp, transform_context, inner, feedback, block_px)
        ds.FlushCache()
        ds = None
        os.replace(tmp, out_path)
    except _Cancelled:
        ds = None
        raise PairingCancelled(f"reading {layer.name()!r} was cancelled") from None
    finally:
        ds = None
        for leftover in (tmp, tmp.with_name(tmp.name + ".aux.xml"), tmp.with_name(tmp.name + ".msk")):
            with contextlib.suppress(OSError):  # never hide the error that brought us here
                leftover.unlink(missing_ok=True)
        if feedback is not None:
            feedback.canceled.disconnect(inner.cancel)
    return out_path


def _write_blocks(name: str, provider: QgsRasterDataProvider, grid: PairGrid, tmp: Path,
                  context: QgsCoordinateTransformContext, inner: QgsRasterBlockFeedback,
                  feedback: QgsFeedback | None, block_px: int) -> gdal.Dataset:
    bands, alpha = _colour_bands(provider)
    if not bands:
        raise PairingError(f"layer {name!r} has no colour bands")
    source: QgsRasterInterface = provider
    colour = provider.dataType(1) in _COLOUR_TYPES
    if not colour and len(bands) == 1 and provider.colorInterpretation(bands[0]) == PALETTE:
        # Palette indices mean nothing to the model: read the colours the palette gives them.
        classes = QgsPalettedRasterRenderer.colorTableToClassData(provider.colorTable(bands[0]))
        source = QgsPalettedRasterRenderer(provider, bands[0], classes)
        colour = True
    projector = QgsRasterProjector()
    projector.setCrs(provider.crs(), grid.crs, context)
    projector.setInput(source)
    mask_renderer = mask_projector = None
    if colour:
        gdal_type, count, options = gdal.GDT_Byte, 4, ["PHOTOMETRIC=RGB", "ALPHA=YES"]
    else:
        types = {provider.dataType(b) for b in bands}
        if len(types) != 1 or next(iter(types)) not in _GDAL_TYPES:
            raise PairingError(f"layer {name!r}: cannot write bands of data types "
                               f"{sorted(int(t) for t in types)} into one GeoTIFF")
        gdal_type, count = _GDAL_TYPES[next(iter(types))], len(bands)
        interp = [provider.colorInterpretation(b) for b in bands[:3]]
        rgb = [QgsRaster.ColorInterpretation.RedBand, QgsRaster.ColorInterpretation.GreenBand,
               QgsRaster.ColorInterpretation.BlueBand]
        options = ["PHOTOMETRIC=RGB"] if gdal_type == gdal.GDT_Byte and interp == rgb else []
        mask_renderer = _mask_renderer(provider, bands, alpha)
        mask_projector = QgsRasterProjector()
        mask_projector.setCrs(provider.crs(), grid.crs, context)
        mask_projector.setInput(mask_renderer)
    driver = gdal.GetDriverByName("GTiff")
    ds = driver.Create(str(tmp), grid.width, grid.height, count, gdal_type, _CREATION_OPTIONS + options)
    if ds is None:
        raise PairingError(f"cannot create {tmp.parent / tmp.name}: {gdal.GetLastErrorMsg()}")
    ds.SetGeoTransform(grid.geotransform)
    ds.SetProjection(grid.crs.toWkt(QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED_GDAL))
    if not colour:
        # Internal (inside the .tif, not a .msk beside it): the chip is one upload.
        gdal.SetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES")
        try:
            ds.CreateMaskBand(gdal.GMF_PER_DATASET)
        finally:
            gdal.SetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", None)
    windows = [(x, y) for y in range(0, grid.height, block_px) for x in range(0, grid.width, block_px)]
    try:
        for done, (x, y) in enumerate(windows):
            if inner.isCanceled() or (feedback is not None and feedback.isCanceled()):
                raise _Cancelled
            w, h = min(block_px, grid.width - x), min(block_px, grid.height - y)
            extent = grid.window(x, y, w, h)
            if colour:
                _write_colour_block(ds, projector, x, y, extent, w, h, inner, name, tmp)
            else:
                assert mask_projector is not None
                _write_data_block(ds, projector, mask_projector, bands, gdal_type, x, y, extent, w, h, inner, name,
                                  tmp)
            if inner.isCanceled() or (feedback is not None and feedback.isCanceled()):
                raise _Cancelled  # the provider may return a partial block once cancelled
            if x + w >= grid.width:
                ds.FlushCache()  # a finished row of blocks goes to disk: memory stays at one block row
            if feedback is not None:
                feedback.setProgress(100.0 * (done + 1) / len(windows))
    except BaseException:
        ds = None  # close it here: the traceback keeps this frame (and an open dataset) alive
        raise
    # Keep the interfaces alive until the last block: the projectors hold raw pointers to their inputs.
    del mask_projector, mask_renderer, projector, source
    return ds


def _write_colour_block(ds: gdal.Dataset, projector: QgsRasterProjector, x: int, y: int, extent: QgsRectangle,
                        w: int, h: int, feedback: QgsRasterBlockFeedback, name: str, tmp: Path) -> None:
    """An ARGB block (XYZ/WMS, or a palette's colours) as RGBA bytes: Qt un-premultiplies and interleaves."""
    block = _read(projector, 1, extent, w, h, feedback, name)  # alive until its pixels are copied
    data, line = _image_bytes(block.image(), QImage.Format.Format_RGBA8888)
    _check(ds.WriteRaster(x, y, w, h, data, w, h, gdal.GDT_Byte, [1, 2, 3, 4],
                          buf_pixel_space=4, buf_line_space=line, buf_band_space=1), tmp)


def _write_data_block(ds: gdal.Dataset, projector: QgsRasterProjector, mask_projector: QgsRasterProjector,
                      bands: list[int], gdal_type: int, x: int, y: int, extent: QgsRectangle, w: int, h: int,
                      feedback: QgsRasterBlockFeedback, name: str, tmp: Path) -> None:
    """Raw values of each band, then the validity mask from the mask renderer's alpha."""
    type_size = gdal.GetDataTypeSize(gdal_type) // 8
    for i, b in enumerate(bands, start=1):
        block = _read(projector, b, extent, w, h, feedback, name)
        data = bytes(block.data())  # data() points into the block: copy it while the block lives
        del block
        if len(data) != w * h * type_size:
            raise PairingError(f"layer {name!r}: band {b} gave {len(data)} bytes for a {w} x {h} block")
        _check(ds.GetRasterBand(i).WriteRaster(x, y, w, h, data, w, h, gdal_type), tmp)
    mask_block = _read(mask_projector, 1, extent, w, h, feedback, name)
    mask, line = _image_bytes(mask_block.image(), QImage.Format.Format_Alpha8)
    _check(ds.GetRasterBand(1).GetMaskBand().WriteRaster(x, y, w, h, mask, w, h, gdal.GDT_Byte,
                                                         buf_pixel_space=1, buf_line_space=line), tmp)


def _read(iface: QgsRasterInterface, band: int, extent: QgsRectangle, width: int, height: int,
          feedback: QgsRasterBlockFeedback, name: str) -> QgsRasterBlock:
    block = iface.block(band, extent, width, height, feedback)
    if feedback.isCanceled():
        raise _Cancelled
    if block is None or not block.isValid() or block.width() != width or block.height() != height:
        detail = f": {feedback.errors()[-1]}" if feedback.errors() else ""
        raise PairingError(f"layer {name!r}: cannot read band {band} over {extent.toString(2)}{detail}")
    return block


def _check(err: int, path: Path) -> None:
    if err != gdal.CE_None:
        raise PairingError(f"cannot write {path}: {gdal.GetLastErrorMsg() or 'GDAL write failed'}")


def pair_layers(before: QgsRasterLayer, after: QgsRasterLayer, aoi: QgsGeometry, aoi_crs: QgsCoordinateReferenceSystem,
                gsd: float, out_dir: Path, transform_context: QgsCoordinateTransformContext,
                feedback: QgsFeedback | None = None) -> PairedChips:
    """Both layers onto one grid, as ``out_dir``/before.tif and after.tif (progress: half each)."""
    grid = pair_grid(before, after, aoi, aoi_crs, gsd, transform_context)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / "before.tif", out_dir / "after.tif"
    written: list[Path] = []
    try:
        for i, (layer, path) in enumerate(zip((before, after), paths, strict=True)):
            part = ScaledFeedback(feedback, 50.0 * i, 50.0) if feedback is not None else None
            written.append(write_chip(layer, grid, path, transform_context, part))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return PairedChips(paths[0], paths[1], grid)


class ScaledFeedback(QgsFeedback):
    """Maps a step's 0-100 % onto [start, start + span] of the caller's progress, and passes its cancel on.

    Direct connections: the caller's feedback lives in the GUI thread, this one in the task's, which
    has no event loop to deliver a queued signal.
    """

    def __init__(self, outer: QgsFeedback, start: float, span: float) -> None:
        super().__init__()
        self._outer, self._start, self._span = outer, start, span
        outer.canceled.connect(self.cancel, Qt.ConnectionType.DirectConnection)
        if outer.isCanceled():
            self.cancel()
        self.progressChanged.connect(self._forward, Qt.ConnectionType.DirectConnection)

    def _forward(self, progress: float) -> None:
        self._outer.setProgress(self._start + self._span * progress / 100.0)
