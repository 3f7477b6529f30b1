"""`hisem caption`: caption the changes between two dated rasters into a GeoPackage."""

from __future__ import annotations

import argparse
from pathlib import Path


def _bands(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated band numbers, got {text!r}") from None
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected three band numbers >= 1 (R,G,B), got {text!r}")
    return parts  # type: ignore[return-value]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "caption",
        help="caption the changes between two dated rasters (GeoPackage out)",
        description="Pair BEFORE and AFTER on one metric grid, caption them tile by tile and write the "
        "layers tiles, changes and run to OUT.gpkg; the stitched change probabilities go to "
        "OUT.prob.tif beside it.",
    )
    p.add_argument("before", type=Path, help="the earlier raster (any GDAL format)")
    p.add_argument("after", type=Path, help="the later raster")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.gpkg", help="result GeoPackage")
    p.add_argument("--aoi", default=None, metavar="FILE_OR_WKT",
                   help="area of interest: a vector file, WKT or EWKT (SRID=4326;POLYGON...)")
    p.add_argument("--aoi-crs", default=None, metavar="CRS", help="CRS of a plain-WKT --aoi (e.g. EPSG:4326)")
    p.add_argument("--bbox", default=None, metavar="MINX,MINY,MAXX,MAXY", help="area of interest as a box")
    p.add_argument("--bbox-crs", default=None, metavar="EPSG:N", help="CRS of --bbox (required with it)")
    p.add_argument("--model", default=None, metavar="ID", help="installed model id or folder (default model)")
    p.add_argument("--gsd", type=float, default=None, metavar="M", help="working GSD (default: the model's)")
    p.add_argument("--tile-size", type=int, default=None, metavar="PX", help="tile side (default: the model's)")
    p.add_argument("--overlap", type=int, default=None, metavar="PX", help="tile overlap (default: tile/8)")
    p.add_argument("--beam", type=int, default=1, metavar="K", help="beam width (default 1: greedy)")
    # default None: CaptionOptions' own (3), read in run(), which imports the pipeline
    p.add_argument("--no-repeat-ngram", type=int, default=None, metavar="N",
                   help="no caption repeats a phrase of N words or a clause (default 3; 0: off)")
    p.add_argument("--threshold", type=float, default=0.5, metavar="P",
                   help="change probability threshold for tiles and pixels (default 0.5)")
    p.add_argument("--bands", type=_bands, default=None, metavar="1,2,3",
                   help="R,G,B band numbers (default: by colour interpretation)")
    p.add_argument("--max-tiles", type=int, default=10_000, metavar="N", help="refuse larger runs (10000)")
    p.add_argument("--geojson", type=Path, default=None, metavar="OUT.geojson",
                   help="also write the changes as GeoJSON (WGS 84)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hisem.cli import CommandError
    from hisem.geo import GEO_ERRORS
    from hisem.pipeline import CaptionOptions, caption_changes

    if args.aoi is not None and args.bbox is not None:
        raise CommandError("give --aoi or --bbox, not both")
    if args.bbox is not None and args.bbox_crs is None:
        raise CommandError("--bbox needs --bbox-crs (e.g. EPSG:4326)")
    bar = tqdm(total=0, unit="tile", desc="caption", disable=args.no_progress)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    options = CaptionOptions(
        model=args.model, aoi=args.bbox if args.bbox is not None else args.aoi,
        aoi_crs=args.bbox_crs if args.bbox is not None else args.aoi_crs, gsd=args.gsd,
        tile_size=args.tile_size, overlap=args.overlap, beam=args.beam,
        no_repeat_ngram=CaptionOptions.no_repeat_ngram if args.no_repeat_ngram is None else args.no_repeat_ngram,
        threshold=args.threshold,
        bands=args.bands, max_tiles=args.max_tiles, geojson=args.geojson, overwrite=args.overwrite,
        progress=progress,
    )
    try:
        result = caption_changes(args.before, args.after, args.output, options)
    except GEO_ERRORS as exc:
        raise CommandError(str(exc)) from exc
    finally:
        bar.close()
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"{result.tiles_total} tiles ({result.tiles_skipped} skipped as nodata), {result.changes} changes "
          f"in {result.timings['total_s']:.1f} s on {', '.join(result.providers)}; model {result.model_id}")
    print(f"wrote {result.gpkg} and {result.prob_tif}" + (f" and {result.geojson}" if result.geojson else ""))
    return 0
