"""GDAL layer of the backend: open rasters, pair two dates on one grid, tile, stitch, vectorise.

The flow of ``hisem caption``::

    before, after = open_raster(a), open_raster(b)
    grid, warnings = working_grid(before, after, aoi, gsd, native_gsd)   # one CRS, GSD, extent
    tiles = tile_grid(grid, tile_size, overlap, max_tiles)
    with PairReader(a, b, grid, aoi=aoi) as reader, ProbabilityStitcher(tif, grid, overlap_px=overlap) as st:
        for tile in tiles: pair = reader.read_tile(tile) ... st.add(tile, prob, pair.valid)
        st.finish()
    regions = polygonize(tif, threshold, min_area_m2, simplify_m)
    write_gpkg(out, grid.crs_wkt, tile_features, change_features, run_info)

GDAL is switched to exceptions here, once, for the whole package; every GDAL failure that leaves
the package is one of the errors in ``hisem.geo.errors``.
"""

from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()
osr.UseExceptions()

from hisem.geo.aoi import Aoi, parse_aoi  # noqa: E402  (after UseExceptions, which they rely on)
from hisem.geo.bands import Stretch, select_bands  # noqa: E402
from hisem.geo.errors import (  # noqa: E402
    GEO_ERRORS,
    AllNodataError,
    BandError,
    GeoError,
    NoCRSError,
    NoOverlapError,
    OutputExistsError,
    RasterReadError,
    TooManyTilesError,
)
from hisem.geo.grid import Grid, working_grid  # noqa: E402
from hisem.geo.output import (  # noqa: E402
    ChangeFeature,
    TileFeature,
    check_output_path,
    sha256_file,
    write_geojson,
    write_gpkg,
)
from hisem.geo.raster import RasterInfo, open_raster  # noqa: E402
from hisem.geo.reading import PairReader, TilePair  # noqa: E402
from hisem.geo.stitch import ProbabilityStitcher  # noqa: E402
from hisem.geo.tiles import Tile, count_tiles, tile_grid  # noqa: E402
from hisem.geo.vectors import ChangeRegion, assign_tile, polygonize  # noqa: E402

__all__ = [
    "GEO_ERRORS", "AllNodataError", "Aoi", "BandError", "ChangeFeature", "ChangeRegion", "GeoError", "Grid",
    "NoCRSError", "NoOverlapError", "OutputExistsError", "PairReader", "ProbabilityStitcher", "RasterInfo",
    "RasterReadError", "Stretch", "Tile", "TileFeature", "TilePair", "TooManyTilesError", "assign_tile",
    "check_output_path", "count_tiles", "open_raster", "parse_aoi", "polygonize", "select_bands",
    "sha256_file", "tile_grid", "working_grid", "write_geojson", "write_gpkg",
]
