"""`hisem synth`: write a synthetic change-captioning data set in the LEVIR-CC layout."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}") from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}")
    return parts  # type: ignore[return-value]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write synthetic bi-temporal pairs with masks and captions (LEVIR-CC layout)",
        description="Render N synthetic before/after pairs with change masks and five LEVIR-CC-style "
        "captions each into DIR/images/{train,val,test}/{A,B,label} and DIR/LevirCCcaptions.json. "
        "The same arguments give byte-identical files, whatever --workers.",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (required without --scene)")
    p.add_argument("--pairs", type=int, metavar="N", help="number of pairs over all splits (required without --scene)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed (required without --scene)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--gsd", type=float, default=0.5, help="metres per pixel (default 0.5)")
    p.add_argument("--unchanged-fraction", type=float, default=0.5,
                   help="share of pairs without change, per split (default 0.5)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: CPU count)")
    p.add_argument("--split-fractions", type=_fractions, default=(0.8, 0.1, 0.1),
                   help="train,val,test shares, assigned in index order (default 0.8,0.1,0.1)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a folder that already holds a data set (same-named files are replaced)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    real = p.add_argument_group(
        "real backgrounds", "--real DIR (repeatable): real single-date images (GeoTIFF/PNG) as backgrounds; "
        "GeoJSON/GeoPackage building footprints in the same folder are used on its georeferenced images. "
        "Pairs on them: real unchanged pairs under real-looking nuisances, synthetic objects composited on "
        "real ground, real buildings removed or added by their footprints (see docs/training.md)")
    real.add_argument("--real", action="append", type=Path, default=[], metavar="DIR",
                      help="folder of real background images (repeatable)")
    real.add_argument("--real-gsd", type=float, default=None, metavar="M",
                      help="GSD of background images without georeference (PNG)")
    real.add_argument("--real-fraction", type=float, default=0.6,
                      help="share of pairs on real backgrounds, changed and unchanged alike (default 0.6)")
    real.add_argument("--footprint-fraction", type=float, default=0.4,
                      help="share of the changed real pairs that remove/add real buildings (default 0.4)")
    scene = p.add_argument_group(
        "georeferenced scene", "--scene DIR writes DIR/before.tif, DIR/after.tif (GeoTIFF) and DIR/truth.gpkg "
        "(true change polygons) instead of a data set; rendered in one go, so keep it within ~4000 px a side")
    scene.add_argument("--scene", type=Path, default=None, metavar="OUT_DIR", help="write a scene to OUT_DIR")
    scene.add_argument("--size-m", type=float, default=2000.0, help="scene side in metres (default 2000)")
    scene.add_argument("--crs", default="EPSG:32633", help="projected CRS of the scene (default EPSG:32633)")
    scene.add_argument("--after-crs", default=None, metavar="EPSG:N", help="warp after.tif to this CRS")
    scene.add_argument("--after-gsd", type=float, default=None, metavar="M", help="warp after.tif to this GSD")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hisem.cli import CommandError
    from hisem.data.synth.backgrounds import BackgroundError
    from hisem.data.synth.writer import CAPTIONS_FILE, write_dataset

    if args.scene is not None:
        return run_scene(args)
    missing = [f"--{name}" for name in ("out", "pairs", "seed") if getattr(args, name) is None]
    if missing:
        raise CommandError(f"the following arguments are required: {', '.join(missing)} (or give --scene)")
    out: Path = args.out
    if (out / CAPTIONS_FILE).exists() and not args.overwrite:
        raise CommandError(f"{out} already holds a data set ({CAPTIONS_FILE}); "
                           "pass --overwrite to write over it")
    if args.seed < 0:
        raise CommandError(f"--seed must be non-negative, got {args.seed}")
    start = time.perf_counter()
    try:
        path = write_dataset(out, args.pairs, args.seed, args.size, args.gsd, args.unchanged_fraction,
                             max(1, args.workers), args.split_fractions, progress=not args.no_progress,
                             real=tuple(str(r) for r in args.real), real_gsd=args.real_gsd,
                             real_fraction=args.real_fraction, footprint_fraction=args.footprint_fraction)
    except BackgroundError as exc:
        raise CommandError(str(exc)) from None
    seconds = time.perf_counter() - start
    print(f"{args.pairs} pairs in {seconds:.1f} s ({args.pairs / seconds:.1f} pairs/s, "
          f"{max(1, args.workers)} workers); captions: {path}")
    return 0


def run_scene(args: argparse.Namespace) -> int:
    from hisem.cli import CommandError
    from hisem.data.synth.georef import write_scene

    seed = 0 if args.seed is None else args.seed
    if seed < 0:
        raise CommandError(f"--seed must be non-negative, got {seed}")
    if not args.overwrite and (args.scene / "before.tif").exists():
        raise CommandError(f"{args.scene} already holds a scene; pass --overwrite to write over it")
    start = time.perf_counter()
    scene = write_scene(args.scene, args.size_m, args.gsd, args.crs, args.after_crs, args.after_gsd, seed)
    print(f"scene of {scene.size_px} px a side at {scene.gsd:g} m ({scene.crs}), {scene.changed_px} changed px, "
          f"in {time.perf_counter() - start:.1f} s: {scene.before}, {scene.after}, {scene.truth}")
    return 0
