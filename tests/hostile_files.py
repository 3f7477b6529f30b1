"""Hostile GeoTIFFs written at test time: a decompression bomb, and rasters GDAL opens but cannot use.

The bomb is written by hand (a classic little-endian TIFF with GeoTIFF keys) because GDAL would hold
the whole declared block in memory to compress it; here the zeros are deflated in chunks, so making a
12288² RGB block (453 MB once decoded) costs a few MB and about a second.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from geo_helpers import UTM33_ORIGIN
from osgeo import gdal

from hisem.geo.crs import make_srs

LOCAL_CS = 'LOCAL_CS["site grid",UNIT["metre",1]]'  # an engineering CRS: metres, but nowhere on the Earth
MARS_UTM = "IAU_2015:49910"  # a projected CRS of Mars: parses, but never reaches WGS 84

_SHORT, _LONG, _DOUBLE = 3, 4, 12
_FORMATS = {_SHORT: "H", _LONG: "I", _DOUBLE: "d"}


def _deflated_zeros(size: int, chunk: int = 16 << 20) -> bytes:
    compressor = zlib.compressobj(9)
    zeros = bytes(chunk)
    parts = [compressor.compress(zeros[: min(chunk, size - done)]) for done in range(0, size, chunk)]
    return b"".join(parts) + compressor.flush()


def write_block_bomb(path: Path, side: int = 12288, bands: int = 3, epsg: int = 32633, gsd: float = 0.5,
                     origin: tuple[float, float] = UTM33_ORIGIN) -> Path:
    """A deflate-compressed GeoTIFF of one ``side`` x ``side`` tile of zeros (``bands`` bytes per pixel)."""
    data = _deflated_zeros(side * side * bands)
    entries = [  # (tag, type, values), in ascending tag order as TIFF requires
        (256, _LONG, [side]), (257, _LONG, [side]), (258, _SHORT, [8] * bands), (259, _SHORT, [8]),
        (262, _SHORT, [2 if bands == 3 else 1]), (277, _SHORT, [bands]), (284, _SHORT, [1]),
        (322, _LONG, [side]), (323, _LONG, [side]), (324, _LONG, [8]), (325, _LONG, [len(data)]),
        (339, _SHORT, [1] * bands), (33550, _DOUBLE, [gsd, gsd, 0.0]),
        (33922, _DOUBLE, [0.0, 0.0, 0.0, origin[0], origin[1], 0.0]),
        # GTModelType projected, GTRasterType PixelIsArea, ProjectedCSType = epsg
        (34735, _SHORT, [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, epsg]),
    ]
    ifd_offset = 8 + len(data) + len(data) % 2
    extra_offset = ifd_offset + 2 + 12 * len(entries) + 4
    ifd, extra = [struct.pack("<H", len(entries))], []
    for tag, kind, values in entries:
        packed = struct.pack(f"<{len(values)}{_FORMATS[kind]}", *values)
        if len(packed) <= 4:
            ifd.append(struct.pack("<HHI", tag, kind, len(values)) + packed.ljust(4, b"\0"))
        else:
            ifd.append(struct.pack("<HHII", tag, kind, len(values), extra_offset + sum(map(len, extra))))
            extra.append(packed + b"\0" * (len(packed) % 2))
    ifd.append(struct.pack("<I", 0))
    path.write_bytes(b"II*\0" + struct.pack("<I", ifd_offset) + data + b"\0" * (len(data) % 2)
                     + b"".join(ifd) + b"".join(extra))
    return path


def relabel_crs(src: Path, out: Path, crs: str) -> Path:
    """A copy of ``src`` whose CRS is replaced by ``crs``: the same numbers, another meaning."""
    ds = gdal.Translate(str(out), str(src))
    ds.SetSpatialRef(make_srs(crs))
    ds = None
    return out


def damage_block(path: Path, x: int, y: int) -> Path:
    """Overwrite the bytes of block (x, y) of band 1 of a tiled, compressed GeoTIFF with garbage, in place.

    Its header stays intact and so do the other blocks: only reading that block fails.
    """
    ds = gdal.Open(str(path))
    offset = int(ds.GetRasterBand(1).GetMetadataItem(f"BLOCK_OFFSET_{x}_{y}", "TIFF"))
    size = int(ds.GetRasterBand(1).GetMetadataItem(f"BLOCK_SIZE_{x}_{y}", "TIFF"))
    ds = None
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(bytes((i * 37 + 11) % 256 for i in range(size)))
    return path
