"""The one error boundary of hisem.geo: every GDAL failure leaves this package as one of these.

Bad inputs (no CRS, no overlap, wrong bands...) are ``ValueError``s, so the command line prints
them as one line; a file that cannot be read is an ``OSError``. Every message names the file (or
the AOI) and the problem, because the analyst sees nothing else.
"""

from __future__ import annotations


class GeoError(ValueError):
    """An input that the geo layer cannot use as given."""


class NoCRSError(GeoError):
    """A raster or an AOI without a coordinate reference system (or without a geotransform)."""


class NoOverlapError(GeoError):
    """The two rasters (and the AOI) do not overlap."""


class BandError(GeoError):
    """The RGB bands cannot be chosen: too few bands, or a band number out of range."""


class TooManyTilesError(GeoError):
    """The working grid would make more tiles than the caller allows."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


class AllNodataError(GeoError):
    """A raster is nodata over the whole working extent."""


class OutputExistsError(GeoError):
    """The output path exists and overwriting was not asked for."""


class RasterReadError(OSError):
    """A raster that GDAL cannot open or read (missing, truncated, unsupported format)."""


# What a caller (the CLI, the HTTP service) catches to turn any geo failure into a clear message.
GEO_ERRORS: tuple[type[Exception], ...] = (GeoError, RasterReadError)
