"""AOI parsing, the working CRS and the working grid (extent, snapping, warnings, errors)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from geo_helpers import smooth_rgb, write_tif
from hypothesis import given
from hypothesis import strategies as st
from osgeo import ogr, osr

from hisem.geo import Aoi, GeoError, NoCRSError, NoOverlapError, open_raster, parse_aoi, working_grid
from hisem.geo.crs import make_srs, to_wkt
from hisem.geo.grid import grid_from_bounds, snap_bounds


def _utm33_to_lonlat(x: float, y: float) -> tuple[float, float]:
    transform = osr.CoordinateTransformation(make_srs("EPSG:32633"), make_srs("EPSG:4326"))
    lon, lat, _ = transform.TransformPoint(x, y)
    return lon, lat


def test_bbox_in_4326_is_lon_lat() -> None:
    aoi = parse_aoi("15.0, 45.0, 15.01, 45.01", crs="EPSG:4326")
    minx, maxx, miny, maxy = aoi.to_crs(to_wkt(make_srs("EPSG:32633"))).geometry().GetEnvelope()
    # Longitude 15 E is the central meridian of UTM zone 33: easting 500000 exactly.
    assert minx == pytest.approx(500_000.0, abs=1e-6)
    assert miny == pytest.approx(4_982_950.4, abs=0.1) and maxy - miny == pytest.approx(1111, abs=2)
    assert maxx - minx == pytest.approx(790, abs=2)  # 0.01 degree of longitude at 45 N


def test_wkt_ewkt_and_vector_file(tmp_path: Path) -> None:
    square = "POLYGON ((0 0,10 0,10 10,0 10,0 0))"
    assert parse_aoi(square, crs="EPSG:32633").area == 100.0
    ewkt = parse_aoi(f"SRID=32633;{square}")
    assert make_srs(ewkt.crs_wkt).GetAuthorityCode(None) == "32633"
    rings = ([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], [[5, 0], [20, 0], [20, 10], [5, 10], [5, 0]])
    geometries = [{"type": "Polygon", "coordinates": [ring]} for ring in rings]
    geometries.append({"type": "Point", "coordinates": [50, 50]})
    features = [{"type": "Feature", "properties": {}, "geometry": g} for g in geometries]
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    aoi = parse_aoi(path)  # GeoJSON is WGS 84 by definition
    assert aoi.area == pytest.approx(200.0)  # the union: the overlap counted once, the point ignored
    assert make_srs(aoi.crs_wkt).IsGeographic()


def test_aoi_errors(tmp_path: Path) -> None:
    with pytest.raises(NoCRSError, match="give its CRS"):
        parse_aoi("0,0,1,1")
    with pytest.raises(GeoError, match="min < max"):
        parse_aoi("1,0,0,1", crs="EPSG:4326")
    with pytest.raises(GeoError, match="LINESTRING is not an area"):
        parse_aoi("LINESTRING (0 0,1 1)", crs="EPSG:4326")
    with pytest.raises(GeoError, match="neither a file, a bbox nor WKT"):
        parse_aoi("somewhere nice", crs="EPSG:4326")
    with pytest.raises(NoCRSError, match="cannot read the CRS"):
        parse_aoi("0,0,1,1", crs="EPSG:999999")
    points = tmp_path / "points.geojson"
    points.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [1, 1]}}]}))
    with pytest.raises(GeoError, match="holds no polygon"):
        parse_aoi(points)


def test_long_wkt_is_not_mistaken_for_a_path() -> None:
    ring = [(10 * math.cos(a / 50 * math.pi), 10 * math.sin(a / 50 * math.pi)) for a in range(100)]
    wkt = "POLYGON ((" + ",".join(f"{x:.6f} {y:.6f}" for x, y in [*ring, ring[0]]) + "))"
    assert len(wkt) > 1000
    assert parse_aoi(wkt, crs="EPSG:32633").area == pytest.approx(math.pi * 100, rel=0.01)


def test_invalid_bowtie_is_repaired() -> None:
    aoi = parse_aoi("POLYGON ((0 0,10 10,10 0,0 10,0 0))", crs="EPSG:32633")
    assert aoi.geometry().IsValid() and aoi.area == pytest.approx(50.0)


@given(
    st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(0.0, 5e3), st.floats(0.0, 5e3),
    st.sampled_from([0.3, 0.5, 1.0, 2.0, 10.0]),
)
def test_snap_bounds_contains_and_stays_close(x: float, y: float, w: float, h: float, gsd: float) -> None:
    ix0, iy0, ix1, iy1 = snap_bounds((x, y, x + w, y + h), gsd)
    tolerance = 1e-5 * gsd
    assert ix0 * gsd <= x + tolerance and ix1 * gsd >= x + w - tolerance
    assert iy0 * gsd <= y + tolerance and iy1 * gsd >= y + h - tolerance
    assert x - ix0 * gsd < gsd and ix1 * gsd - (x + w) < gsd


def test_snap_keeps_an_extent_already_on_the_lattice() -> None:
    grid = grid_from_bounds("", (0.0, 0.0, 1000.0, 999.9), 0.3)
    assert (grid.width, grid.height) == (math.ceil(1000 / 0.3 - 1e-6), 3333)
    assert grid_from_bounds("", (10.0, 20.0, 30.0, 60.0), 2.0).bounds == (10.0, 20.0, 30.0, 60.0)


def test_same_crs_grid_is_the_overlap(tmp_path: Path) -> None:
    before = open_raster(write_tif(tmp_path / "b.tif", smooth_rgb(100, 100)))  # 500000..500200
    after = open_raster(write_tif(tmp_path / "a.tif", smooth_rgb(100, 100), origin=(500_050.0, 4_999_970.0)))
    grid, warnings = working_grid(before, after, None, None, native_gsd=2.0)
    assert grid.crs_wkt == before.crs_wkt and grid.gsd == 2.0
    assert grid.bounds == (500_050.0, 4_999_800.0, 500_200.0, 4_999_970.0)
    assert (grid.width, grid.height) == (75, 85)
    assert warnings == []


def test_aoi_in_a_third_crs_trims_the_grid(tmp_path: Path) -> None:
    before = open_raster(write_tif(tmp_path / "b.tif", smooth_rgb(100, 100)))
    # The after image in Web Mercator, covering the whole before footprint.
    transform = osr.CoordinateTransformation(make_srs("EPSG:32633"), make_srs("EPSG:3857"))
    x0, y0, _ = transform.TransformPoint(499_900.0, 5_000_100.0)
    after_path = write_tif(tmp_path / "a.tif", smooth_rgb(150, 150), epsg=3857, origin=(x0, y0), gsd=3.0)
    after = open_raster(after_path)
    # An AOI in EPSG:4326 whose corners are the UTM corners 500030..500110 x 4999850..4999930.
    corners = [_utm33_to_lonlat(x, y) for x, y in
               [(500_030, 4_999_930), (500_110, 4_999_930), (500_110, 4_999_850), (500_030, 4_999_850)]]
    ring = ",".join(f"{lon!r} {lat!r}" for lon, lat in [*corners, corners[0]])
    aoi = parse_aoi(f"POLYGON (({ring}))", crs="EPSG:4326")
    grid, warnings = working_grid(before, after, aoi, 1.0, native_gsd=0.5)
    assert grid.bounds == (500_030.0, 4_999_850.0, 500_110.0, 4_999_930.0)
    assert (grid.width, grid.height, grid.gsd) == (80, 80, 1.0)
    assert warnings == [f"{after_path}: native GSD 3 m is upsampled 3.0x to the working GSD 1 m"]


def test_geographic_rasters_get_the_local_utm_zone(tmp_path: Path) -> None:
    args = {"epsg": 4326, "origin": (-70.61, -33.40), "gsd": 1e-5}
    before = open_raster(write_tif(tmp_path / "b.tif", smooth_rgb(50, 50), **args))
    after = open_raster(write_tif(tmp_path / "a.tif", smooth_rgb(50, 50), **args))
    grid, _ = working_grid(before, after, None, 0.5, native_gsd=0.5)
    assert make_srs(grid.crs_wkt).GetAuthorityCode(None) == "32719"  # southern zone 19
    # 50 px of 0.93 x 1.11 m at 0.5 m, a little more because the UTM grid is rotated against the meridians
    assert 93 <= grid.width <= 98 and 111 <= grid.height <= 116


def test_gsd_and_partial_aoi_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    before = open_raster(write_tif(tmp_path / "b.tif", smooth_rgb(100, 100), gsd=0.5))
    after = open_raster(write_tif(tmp_path / "a.tif", smooth_rgb(20, 20), gsd=2.5))
    aoi = parse_aoi("499950,4999950,500050,5000050", crs="EPSG:32633")  # three quarters outside
    grid, warnings = working_grid(before, after, aoi, None, native_gsd=0.5)
    assert grid.bounds == (500_000.0, 4_999_950.0, 500_050.0, 5_000_000.0)
    assert len(warnings) == 3
    assert "native GSDs differ 5.0x" in warnings[0]
    assert "a.tif: native GSD 2.5 m is upsampled 5.0x" in warnings[1]
    assert warnings[2] == "75% of the AOI lies outside the area that both images cover"
    assert [r.getMessage() for r in caplog.records] == warnings


def test_no_overlap(tmp_path: Path) -> None:
    before = open_raster(write_tif(tmp_path / "b.tif", smooth_rgb(10, 10)))
    after = open_raster(write_tif(tmp_path / "a.tif", smooth_rgb(10, 10), origin=(600_000.0, 5_000_000.0)))
    with pytest.raises(NoOverlapError, match=r"b.tif and .*a.tif do not overlap"):
        working_grid(before, after, None, None, native_gsd=0.5)
    far = Aoi(ogr.CreateGeometryFromWkt("POLYGON ((0 0,1 0,1 1,0 0))").ExportToWkt(), before.crs_wkt)
    with pytest.raises(NoOverlapError, match="the AOI does not overlap"):
        working_grid(before, before, far, None, native_gsd=0.5)
    with pytest.raises(GeoError, match="GSD must be positive"):
        working_grid(before, before, None, 0.0, native_gsd=0.5)
