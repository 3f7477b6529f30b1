"""Pairing reads layers onto one grid like gdal.Warp does, for GeoTIFFs in other CRSs/GSDs and for XYZ tiles.

Fixtures are made here, at test time: small GeoTIFFs in EPSG:32633 and EPSG:4326, and PNG tiles served
by an HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import math
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeedback,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsTask,
)
from qgis.PyQt.QtCore import QCoreApplication, QEventLoop, QThread, QTimer

from hisem_qgis.pairing import (
    PairingCancelled,
    PairingError,
    estimate,
    pair_grid,
    pair_layers,
    working_crs,
    write_chip,
)

UTM33 = QgsCoordinateReferenceSystem("EPSG:32633")
WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")
MERCATOR = QgsCoordinateReferenceSystem("EPSG:3857")
X0, Y1 = 500000.0, 5000000.0  # top-left of the UTM fixture: about 15° E, 45.1° N


def _srs(epsg: int) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _pattern(rows: int, cols: int) -> list[np.ndarray]:
    """A smooth band, a checkerboard (sharp edges show misalignment) and a ramp."""
    r, c = np.mgrid[0:rows, 0:cols].astype(np.float64)
    smooth = 128 + 100 * np.sin(c / 40.0) * np.cos(r / 35.0)
    checker = np.where(((r // 12) + (c // 12)) % 2 == 0, 30.0, 220.0)
    ramp = 250 * (r + c) / (rows + cols)
    return [smooth, checker, ramp]


def make_tif(path: Path, epsg: int, geotransform: tuple, cols: int, rows: int, dtype: int = gdal.GDT_Byte,
             bands: int = 3, nodata: float | None = None, scale: float = 1.0) -> Path:
    ds = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, bands, dtype)
    ds.SetGeoTransform(geotransform)
    ds.SetProjection(_srs(epsg).ExportToWkt())
    patterns = _pattern(rows, cols)
    for b in range(bands):
        values = patterns[b % 3] * scale + b
        if nodata is not None:
            values[rows // 3: rows // 2, cols // 3: cols // 2] = nodata  # a hole of nodata inside
            ds.GetRasterBand(b + 1).SetNoDataValue(nodata)
        ds.GetRasterBand(b + 1).WriteArray(values)
    if bands == 3 and dtype == gdal.GDT_Byte:
        for b, ci in enumerate((gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand), start=1):
            ds.GetRasterBand(b).SetColorInterpretation(ci)
    ds = None
    return path


def layer(path: Path, name: str) -> QgsRasterLayer:
    lyr = QgsRasterLayer(str(path), name)
    assert lyr.isValid(), path
    return lyr


def utm_to_wgs84_bounds(minx: float, miny: float, maxx: float, maxy: float) -> tuple[float, float, float, float]:
    ct = osr.CoordinateTransformation(_srs(32633), _srs(4326))
    pts = [ct.TransformPoint(x, y)[:2] for x in (minx, maxx) for y in (miny, maxy)]
    return (min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts))


def utm_rect(minx: float, miny: float, maxx: float, maxy: float, crs: QgsCoordinateReferenceSystem) -> QgsGeometry:
    """A UTM rectangle as a polygon in ``crs`` (the AOI arrives in the project's CRS)."""
    geom = QgsGeometry.fromRect(QgsRectangle(minx, miny, maxx, maxy)).densifyByCount(8)
    geom.transform(QgsCoordinateTransform(UTM33, crs, QgsProject.instance().transformContext()))
    return geom


@pytest.fixture()
def context():
    return QgsProject.instance().transformContext()


@pytest.fixture()
def pair_files(tmp_path: Path) -> tuple[Path, Path]:
    """before: 200 m at 0.5 m in EPSG:32633; after: the same place at about 0.8 m in EPSG:4326."""
    before = make_tif(tmp_path / "before.tif", 32633, (X0, 0.5, 0.0, Y1, 0.0, -0.5), 400, 400)
    lon0, lat0, lon1, lat1 = utm_to_wgs84_bounds(X0 - 20, Y1 - 220, X0 + 220, Y1 + 20)
    dx, dy = 0.8 / (111320 * math.cos(math.radians(lat1))), 0.8 / 111320
    cols, rows = math.ceil((lon1 - lon0) / dx), math.ceil((lat1 - lat0) / dy)
    after = make_tif(tmp_path / "after.tif", 4326, (lon0, dx, 0.0, lat1, 0.0, -dy), cols, rows)
    return before, after


def warp(src: Path, grid, alpha: bool = False) -> gdal.Dataset:
    e = grid.extent
    return gdal.Warp("", str(src), format="MEM", dstSRS=grid.crs.toWkt(),
                     outputBounds=(e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()),
                     xRes=grid.gsd, yRes=grid.gsd, resampleAlg="near", dstAlpha=alpha)


def test_working_crs_is_metric(pair_files) -> None:
    before, after = pair_files
    centre = QgsPointXY(15.0, 45.1)
    assert working_crs(layer(before, "b"), centre) == UTM33
    # Geographic -> the UTM zone of the AOI centre, north and south.
    assert working_crs(layer(after, "a"), centre).authid() == "EPSG:32633"
    assert working_crs(layer(after, "a"), QgsPointXY(-70.5, -33.4)).authid() == "EPSG:32719"


def test_pairing_agrees_with_gdal_warp(pair_files, tmp_path, context) -> None:
    before, after = pair_files
    # The AOI comes in a third CRS (Web Mercator, a usual project CRS).
    aoi = utm_rect(X0 + 40, Y1 - 160, X0 + 160, Y1 - 40, MERCATOR)
    (tmp_path / "chips").mkdir()
    chips = pair_layers(layer(before, "before"), layer(after, "after"), aoi, MERCATOR, 1.0, tmp_path / "chips",
                        context)
    grid = chips.grid
    assert grid.crs == UTM33 and grid.gsd == 1.0
    # Snapped to the 1 m lattice, and about the AOI's 120 m (the Mercator polygon is not exactly square).
    e = grid.extent
    assert all(v == round(v) for v in (e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()))
    assert 119 <= grid.width <= 122 and 119 <= grid.height <= 122
    for src, chip in ((before, chips.before), (after, chips.after)):
        ours, ref = gdal.Open(str(chip)), warp(src, grid)
        assert (ours.RasterXSize, ours.RasterYSize) == (ref.RasterXSize, ref.RasterYSize) == (grid.width, grid.height)
        assert ours.GetGeoTransform() == pytest.approx(ref.GetGeoTransform(), abs=1e-9)
        assert osr.SpatialReference(ours.GetProjection()).IsSame(_srs(32633))
        assert ours.RasterCount == 3 and ours.GetRasterBand(1).DataType == gdal.GDT_Byte
        assert ours.GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION") == "DEFLATE"
        assert ours.GetRasterBand(1).GetBlockSize() == [256, 256] or grid.width < 256
        # Every pixel lies inside both images: the mask is all valid.
        assert ours.GetRasterBand(1).GetMaskFlags() == gdal.GMF_PER_DATASET
        assert ours.GetRasterBand(1).GetMaskBand().ReadAsArray().min() == 255
        a = ours.ReadAsArray().astype(np.float64)
        b = ref.ReadAsArray().astype(np.float64)
        # Nearest neighbour on both sides. Where an output pixel centre falls exactly between two
        # source pixels (0.5 m -> 1 m) GDAL and QGIS may break the tie differently: smooth bands then
        # differ by one source pixel's gradient, the checkerboard's 6 m squares not at all.
        diff = np.abs(a - b).mean(axis=(1, 2))
        assert diff[0] < 3.0 and diff[2] < 3.0, (src.name, diff)
        checker, ref_checker = a[1], b[1]
        assert (checker == ref_checker).mean() > 0.95, (src.name, (checker == ref_checker).mean())
        # One output pixel of misregistration would show on the checkerboard's edges: the test can tell.
        shifted = np.abs(checker[:, 1:] - ref_checker[:, :-1]).mean()
        assert diff[1] < shifted / 5, (src.name, diff, shifted)


def test_16_bit_nodata_and_outside_pixels_are_masked(tmp_path, context) -> None:
    before = make_tif(tmp_path / "before.tif", 32633, (X0, 0.5, 0.0, Y1, 0.0, -0.5), 400, 400)
    # A 4-band 16-bit raster in lon/lat with a nodata hole, smaller than the AOI: its edges are not
    # grid-aligned in UTM, so the grid's corners fall outside it.
    lon0, lat0, lon1, lat1 = utm_to_wgs84_bounds(X0 + 50, Y1 - 150, X0 + 150, Y1 - 50)
    cols, rows = 110, 130
    after = make_tif(tmp_path / "after.tif", 4326, (lon0, (lon1 - lon0) / cols, 0.0, lat1, 0.0, -(lat1 - lat0) / rows),
                     cols, rows, gdal.GDT_UInt16, bands=4, nodata=0, scale=200.0)
    aoi = utm_rect(X0 + 10, Y1 - 190, X0 + 190, Y1 - 10, UTM33)
    (tmp_path / "chips").mkdir()
    chips = pair_layers(layer(before, "before"), layer(after, "after"), aoi, UTM33, 1.0, tmp_path / "chips", context)
    # The grid is AOI ∩ both layers: 100 m, not the AOI's 180 m.
    assert 100 <= chips.grid.width <= 103
    # Onto a grid made from the before layer alone, most of the after chip lies outside its image.
    wide = pair_grid(layer(before, "before"), layer(before, "before"), aoi, UTM33, 1.0, context)
    assert wide.width == 180
    out = write_chip(layer(after, "after"), wide, tmp_path / "wide.tif", context, block_px=64)
    for grid, path in ((chips.grid, chips.after), (wide, out)):
        _check_16_bit_chip(after, grid, path)


def _check_16_bit_chip(after: Path, grid, path: Path) -> None:
    ours = gdal.Open(str(path))
    assert ours.RasterCount == 4 and ours.GetRasterBand(1).DataType == gdal.GDT_UInt16
    ref = warp(after, grid, alpha=True)
    ref_valid = ref.GetRasterBand(5).ReadAsArray() > 0
    our_valid = ours.GetRasterBand(1).GetMaskBand().ReadAsArray() > 0
    assert (~our_valid).mean() > 0.02  # the hole (and, on the wide grid, the outside) really are there
    assert (our_valid == ref_valid).mean() > 0.98
    both = our_valid & ref_valid
    a = ours.ReadAsArray().astype(np.float64)[:, both]
    b = ref.ReadAsArray()[:4].astype(np.float64)[:, both]
    assert a.max() > 255  # raw 16-bit values, not stretched to 8 bits
    # Two nearest-neighbour steps in QGIS (provider, then projector) against one in GDAL: within a
    # source pixel, so smooth bands agree closely and the checkerboard mostly exactly.
    relative = np.abs(a - b).mean(axis=1) / a.mean(axis=1)
    assert (relative[[0, 2, 3]] < 0.015).all(), relative
    assert (a[1] == b[1]).mean() > 0.9


def test_paletted_raster_is_read_as_its_colours(tmp_path, context) -> None:
    path = tmp_path / "landcover.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 100, 100, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((X0, 1.0, 0.0, Y1, 0.0, -1.0))
    ds.SetProjection(_srs(32633).ExportToWkt())
    table = gdal.ColorTable()
    table.SetColorEntry(0, (200, 30, 30, 255))
    table.SetColorEntry(1, (20, 160, 40, 255))
    band = ds.GetRasterBand(1)
    band.SetRasterColorTable(table)
    band.SetColorInterpretation(gdal.GCI_PaletteIndex)
    band.WriteArray((np.arange(100)[None, :] >= 50).astype(np.uint8).repeat(100, axis=0))  # west 0, east 1
    ds = None
    lyr = layer(path, "landcover")
    grid = pair_grid(lyr, lyr, utm_rect(X0 + 10, Y1 - 90, X0 + 90, Y1 - 10, UTM33), UTM33, 1.0, context)
    chip = gdal.Open(str(write_chip(lyr, grid, tmp_path / "chip.tif", context)))
    assert chip.RasterCount == 4
    pixels = chip.ReadAsArray()
    assert tuple(pixels[:, 5, 5]) == (200, 30, 30, 255) and tuple(pixels[:, 5, 75]) == (20, 160, 40, 255)


def test_aoi_outside_a_layer_is_refused(pair_files, tmp_path, context) -> None:
    before, after = pair_files
    far = utm_rect(X0 + 5000, Y1 - 5200, X0 + 5200, Y1 - 5000, UTM33)
    with pytest.raises(PairingError, match="does not overlap layer 'before'"):
        pair_grid(layer(before, "before"), layer(after, "after"), far, UTM33, 1.0, context)
    elsewhere = make_tif(tmp_path / "elsewhere.tif", 32633, (X0 + 1000, 0.5, 0.0, Y1, 0.0, -0.5), 100, 100)
    aoi = utm_rect(X0 + 40, Y1 - 160, X0 + 160, Y1 - 40, UTM33)
    with pytest.raises(PairingError, match="does not overlap layer 'after'"):
        pair_grid(layer(before, "before"), layer(elsewhere, "after"), aoi, UTM33, 1.0, context)
    aoi = utm_rect(X0 + 40, Y1 - 160, X0 + 160, Y1 - 40, UTM33)
    with pytest.raises(PairingError, match="GSD must be a positive"):
        pair_grid(layer(before, "before"), layer(after, "after"), aoi, UTM33, 0.0, context)
    with pytest.raises(PairingError, match="more than the limit"):
        pair_grid(layer(before, "before"), layer(after, "after"), aoi, UTM33, 1.0, context, max_pixels=10_000)
    assert not list(tmp_path.glob("chips*"))


def test_cancel_leaves_no_file(pair_files, tmp_path, context) -> None:
    before, _ = pair_files
    lyr = layer(before, "before")
    grid = pair_grid(lyr, lyr, utm_rect(X0 + 10, Y1 - 190, X0 + 190, Y1 - 10, UTM33), UTM33, 0.5, context)
    out = tmp_path / "out"
    out.mkdir()
    feedback = QgsFeedback()
    # Cancel as soon as the first block is written (progress is reported after each block).
    feedback.progressChanged.connect(lambda _: feedback.cancel())
    with pytest.raises(PairingCancelled):
        write_chip(lyr, grid, out / "before.tif", context, feedback, block_px=64)
    assert feedback.progress() < 100
    assert list(out.iterdir()) == []
    # A completed write to the same place works, and reports 100 %.
    done = QgsFeedback()
    write_chip(lyr, grid, out / "before.tif", context, done, block_px=64)
    assert done.progress() == 100 and [p.name for p in out.iterdir()] == ["before.tif"]


def test_estimate_matches_the_backend(pair_files, context) -> None:
    from hisem.geo.aoi import Aoi
    from hisem.geo.grid import working_grid
    from hisem.geo.raster import open_raster
    from hisem.geo.tiles import count_tiles

    before, _ = pair_files
    aoi = utm_rect(X0 + 13.3, Y1 - 187.1, X0 + 171.9, Y1 - 21.7, WGS84)
    area, tiles = estimate(layer(before, "before"), aoi, WGS84, 0.5, 64, 16, context)
    info = open_raster(str(before))
    grid, _ = working_grid(info, info, Aoi(aoi.asWkt(12), _srs(4326).ExportToWkt()), 0.5, 0.5)
    assert tiles == count_tiles(grid, 64, 16) > 20
    assert area == pytest.approx(158.6 * 165.4, rel=0.01)


# --- XYZ ----------------------------------------------------------------------------------------

ZOOM = 15


def tile_colour(x: int, y: int) -> tuple[int, int, int]:
    return (40 + 50 * (x % 4), 30 + 60 * (y % 4), 200)


def _png(colour: tuple[int, int, int]) -> bytes:
    path = f"/vsimem/tile-{uuid.uuid4().hex}.png"
    mem = gdal.GetDriverByName("MEM").Create("", 256, 256, 3, gdal.GDT_Byte)
    for b, value in enumerate(colour, start=1):
        mem.GetRasterBand(b).Fill(value)
    gdal.GetDriverByName("PNG").CreateCopy(path, mem)
    f = gdal.VSIFOpenL(path, "rb")
    gdal.VSIFSeekL(f, 0, 2)
    size = gdal.VSIFTellL(f)
    gdal.VSIFSeekL(f, 0, 0)
    data = gdal.VSIFReadL(1, size, f)
    gdal.VSIFCloseL(f)
    gdal.Unlink(path)
    return data


class _TileHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            z, x, y = (int(p) for p in self.path.strip("/").removesuffix(".png").split("/"))
        except ValueError:
            self.send_error(404)
            return
        body = _png(tile_colour(x, y))
        self.server.requests.append((z, x, y))
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def tile_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TileHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_xyz_layer_is_read_into_rgba_chip(tile_server, tmp_path, context) -> None:
    port = tile_server.server_address[1]
    url = f"type=xyz&url=http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png&zmin={ZOOM}&zmax={ZOOM}"
    xyz = QgsRasterLayer(url, "tiles", "wms")
    assert xyz.isValid(), xyz.error().message()
    # About 2 km x 2 km near 15.3° E 45° N: several z15 tiles (about 860 m each).
    aoi = QgsGeometry.fromRect(QgsRectangle(15.30, 45.00, 15.325, 45.018))
    grid = pair_grid(xyz, xyz, aoi, WGS84, 4.0, context)
    assert grid.crs.authid() == "EPSG:32633"  # Web Mercator is not a metric working CRS
    out = write_chip(xyz, grid, tmp_path / "xyz.tif", context, block_px=128)
    assert tile_server.requests and {r[0] for r in tile_server.requests} == {ZOOM}
    ds = gdal.Open(str(out))
    assert ds.RasterCount == 4 and ds.GetRasterBand(1).DataType == gdal.GDT_Byte
    assert ds.GetRasterBand(4).GetColorInterpretation() == gdal.GCI_AlphaBand
    pixels = ds.ReadAsArray()
    # Expected colour at each pixel centre: the z15 tile that holds it.
    gt = ds.GetGeoTransform()
    rows, cols = np.mgrid[0:ds.RasterYSize, 0:ds.RasterXSize]
    xs, ys = gt[0] + (cols + 0.5) * gt[1], gt[3] + (rows + 0.5) * gt[5]
    ct = osr.CoordinateTransformation(_srs(32633), _srs(4326))
    lonlat = np.array(ct.TransformPoints(np.column_stack([xs.ravel(), ys.ravel()]).tolist()))[:, :2]
    n = 2 ** ZOOM
    tx = (lonlat[:, 0] + 180.0) / 360.0 * n
    ty = (1.0 - np.arcsinh(np.tan(np.radians(lonlat[:, 1]))) / math.pi) / 2.0 * n
    interior = (np.abs(tx - np.round(tx)) > 0.03) & (np.abs(ty - np.round(ty)) > 0.03)  # away from tile edges
    expected = np.array([tile_colour(int(a), int(b)) for a, b in zip(tx, ty, strict=True)]).T
    got = pixels[:3].reshape(3, -1)
    match = (np.abs(got.astype(int) - expected) <= 2).all(axis=0)
    assert len(set(zip(tx.astype(int), ty.astype(int), strict=True))) >= 4  # really several tiles
    assert match[interior].mean() > 0.99, match[interior].mean()
    assert (pixels[3] == 255).all()


class _ChipTask(QgsTask):
    """What the plugin's task does: pair in run(), on a worker thread, through a QgsFeedback it owns
    (cancel() cancels it; its progress becomes the task's)."""

    def __init__(self, layers: tuple[QgsRasterLayer, QgsRasterLayer], aoi: QgsGeometry, out_dir: Path) -> None:
        super().__init__("pair", QgsTask.Flag.CanCancel)
        self.layers, self.aoi, self.out_dir = layers, aoi, out_dir
        self.context = QgsProject.instance().transformContext()
        self.chips = None
        self.error: BaseException | None = None
        self.thread_is_main: bool | None = None
        self.feedback = QgsFeedback()
        self.feedback.progressChanged.connect(self.setProgress)

    def cancel(self) -> None:
        self.feedback.cancel()
        super().cancel()

    def run(self) -> bool:
        self.thread_is_main = QThread.currentThread() is QCoreApplication.instance().thread()
        try:
            self.chips = pair_layers(*self.layers, self.aoi, WGS84, 4.0, self.out_dir, self.context, self.feedback)
        except BaseException as exc:  # reported by the test, not swallowed
            self.error = exc
            return False
        return True


def test_pairing_runs_in_a_background_task(tile_server, pair_files, tmp_path) -> None:
    """A GeoTIFF and an XYZ layer read from a QgsTask's worker thread (network included)."""
    port = tile_server.server_address[1]
    xyz = QgsRasterLayer(f"type=xyz&url=http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png&zmin={ZOOM}&zmax={ZOOM}",
                         "tiles", "wms")
    before, _ = pair_files
    lon0, lat0, lon1, lat1 = utm_to_wgs84_bounds(X0 + 20, Y1 - 180, X0 + 180, Y1 - 20)
    task = _ChipTask((layer(before, "before"), xyz), QgsGeometry.fromRect(QgsRectangle(lon0, lat0, lon1, lat1)),
                     tmp_path / "chips")
    QgsApplication.taskManager().addTask(task)
    loop = QEventLoop()
    task.taskCompleted.connect(loop.quit)
    task.taskTerminated.connect(loop.quit)
    QTimer.singleShot(120_000, loop.quit)  # a guard against hanging the suite, not a timing assertion
    loop.exec()
    assert task.error is None, task.error
    assert task.thread_is_main is False and task.chips is not None and task.progress() == 100
    assert gdal.Open(str(task.chips.before)).RasterCount == 3 and gdal.Open(str(task.chips.after)).RasterCount == 4
    assert tile_server.requests
