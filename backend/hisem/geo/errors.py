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


class CRSError(GeoError):
    """A CRS that cannot be used: engineering (local), of another planet, or not transformable."""


class NoOverlapError(GeoError):
    """The two rasters (and the AOI) do not overlap."""


class BandError(GeoError):
    """The RGB bands cannot be chosen: too few bands, or a band number out of range."""


class TooManyTilesError(GeoError):
    """The working grid would make more tiles than the caller allows."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


class LimitError(GeoError):
    """An input beyond a cap (declared block or raster size, pixels read per tile): refused before any decode.

    ``cap`` names the setting (e.g. ``max_block_mb``) and ``limit`` its value, so that a server can
    say which of its caps was hit and a client can show it.
    """

    def __init__(self, message: str, cap: str, limit: float) -> None:
        super().__init__(message)
        self.cap = cap
        self.limit = limit


class OptionError(GeoError):
    """A run parameter out of range; ``option`` is its name (``tile_size``), so each caller words it its way.

    ``str()`` names the command-line flag (``--tile-size 128: ...``); the HTTP service names the
    ``params`` field instead (``params.tile_size = 128: ...``).
    """

    def __init__(self, option: str, value: object, reason: str) -> None:
        super().__init__(f"--{option.replace('_', '-')} {value}: {reason}")
        self.option = option
        self.value = value
        self.reason = reason


class AllNodataError(GeoError):
    """A raster is nodata over the whole working extent."""


class OutputExistsError(GeoError):
    """The output path exists and overwriting was not asked for."""


class RasterReadError(OSError):
    """A raster that GDAL cannot open or read (missing, truncated, unsupported format)."""


# What a caller (the CLI, the HTTP service) catches to turn any geo failure into a clear message.
GEO_ERRORS: tuple[type[Exception], ...] = (GeoError, RasterReadError)
