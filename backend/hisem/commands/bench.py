"""`hisem bench`: benchmarks that print their figures and write them as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks (figures printed and written as JSON)")
    which = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    t = which.add_parser("train", help="training throughput and forward latency per preset")
    t.add_argument("--presets", default="tiny,lite,paper",
                   help="comma-separated presets (default tiny,lite,paper; paper: forward latency only)")
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per figure")
    t.add_argument("-o", "--output", default=None, help="write the figures to this JSON file")
    t.set_defaults(func=run_train)
    e = which.add_parser("engine", help="inference: PyTorch eager vs ONNX Runtime fp32 vs int8, same tiles")
    e.add_argument("--model", default=None,
                   help="run folder or .pt checkpoint (default: a randomly initialised lite model)")
    e.add_argument("--tiles", type=int, default=16, help="distinct tiles, cycled through (default 16)")
    e.add_argument("--max-len", type=int, default=24, help="caption tokens incl. <START>/<END> (default 24)")
    e.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per figure")
    e.add_argument("--threads", type=int, default=None,
                   help="intra-op threads for PyTorch and ONNX Runtime alike (default: one per core)")
    e.add_argument("-o", "--output", default=None, help="write the figures to this JSON file")
    e.set_defaults(func=run_engine)
    c = which.add_parser("caption", help="hisem caption: overhead over the engine, peak RSS 1 vs 16 km², tiles/s")
    c.add_argument("--size-m", type=float, default=1000.0,
                   help="side of the small scene in metres (default 1000: 1 km²; the large one is 4x4 of it)")
    c.add_argument("--gsd", type=float, default=0.5, help="scene GSD in metres (default 0.5)")
    c.add_argument("-o", "--output", default=None, help="write the figures to this JSON file")
    c.set_defaults(func=run_caption)
    s = which.add_parser("serve", help="hisem serve: HTTP job vs hisem caption, jobs/min with concurrent clients, RSS")
    s.add_argument("--size-m", type=float, default=1000.0, help="side of the scene in metres (default 1000)")
    s.add_argument("--gsd", type=float, default=0.5, help="scene GSD in metres (default 0.5)")
    s.add_argument("--clients", type=int, default=8, help="concurrent clients, one job each (default 8)")
    s.add_argument("--repeats", type=int, default=2, help="timed runs of each of HTTP and CLI (best kept)")
    s.add_argument("--model", default=None,
                   help="model id or folder (default: the default model, else a random lite export)")
    s.add_argument("-o", "--output", default=None, help="write the figures to this JSON file")
    s.set_defaults(func=run_serve)
    g = which.add_parser("synth", help="the generator: pairs/s fully synthetic vs on real backgrounds")
    g.add_argument("--real", action="append", required=True, metavar="DIR",
                   help="folder of real background images, as `hisem synth --real` (repeatable)")
    g.add_argument("--pairs", type=int, default=40, help="pairs timed per kind (default 40)")
    g.add_argument("-o", "--output", default=None, help="write the figures to this JSON file")
    g.set_defaults(func=run_synth)


def _write(results: dict, output: str | None) -> None:
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(results, indent=2), encoding="utf-8")
        print(f"figures written to {output}")


def run_synth(args: argparse.Namespace) -> int:
    from hisem.benchmarks.synth import bench_synth, synth_table

    results = bench_synth(tuple(args.real), pairs=args.pairs)
    print(synth_table(results))
    print(f"{results['backgrounds']} backgrounds loaded in {results['bank_load_s']:.1f} s (once per worker)")
    _write(results, args.output)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from hisem.benchmarks.training import bench_training, training_table

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    results = bench_training(presets, batch_size=args.batch_size, min_seconds=args.seconds)
    print(training_table(results))
    print(f"peak RSS {results['peak_rss_mb']:.0f} MiB, {results['threads']} threads")
    _write(results, args.output)
    return 0


def run_engine(args: argparse.Namespace) -> int:
    from hisem.benchmarks.engine import bench_engine, engine_table

    if args.tiles < 8:
        raise ValueError(f"--tiles must be at least 8 (one batch of 8), got {args.tiles}")
    results = bench_engine(args.model, tiles=args.tiles, max_len=args.max_len, min_seconds=args.seconds,
                           threads=args.threads)
    print(f"model: {results['model']}; captions capped at {results['max_len']} tokens; "
          f"threads: {results['threads']}")
    print(engine_table(results))
    for kind in ("ort_fp32", "ort_int8"):
        r = results[kind]
        print(f"{kind}: {r['speedup_vs_torch']:.2f}x PyTorch at batch 8 greedy; providers {r['providers']}; "
              f"greedy captions equal to PyTorch's on {100 * r['captions_equal_to_torch']:.0f} % of tiles")
    print(f"peak RSS: {results['rss']}")
    _write(results, args.output)
    return 0


def run_caption(args: argparse.Namespace) -> int:
    from hisem.benchmarks.caption import bench_caption

    results = bench_caption(args.size_m, args.gsd)
    print(f"model: {results['model']}")
    for name, r in results["runs"].items():
        print(f"{name}: {r['tiles']} tiles in {r['wall_s']:.1f} s (engine {r['engine_s']:.1f} s), "
              f"peak RSS {r['peak_rss_mb']:.0f} MiB")
    print(f"overhead_ratio {results['overhead_ratio']:.3f} (target <= 1.25), rss_ratio_16x "
          f"{results['rss_ratio_16x']:.3f} (target <= 1.2), {results['tiles_per_s']:.2f} tiles/s")
    _write(results, args.output)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from hisem.benchmarks.serve import bench_serve

    if args.clients < 1 or args.repeats < 1:
        raise ValueError("--clients and --repeats must be at least 1")
    results = bench_serve(args.size_m, args.gsd, clients=args.clients, repeats=args.repeats, model=args.model)
    print(f"model: {results['model']}; {results['tiles']} tiles per job ({results['scene_km2']:g} km² at "
          f"{results['gsd_m']} m)")
    print(f"HTTP job {results['http_job_s']:.2f} s vs hisem caption {results['caption_cli_s']:.2f} s: "
          f"overhead_ratio {results['overhead_ratio']:.3f} (target <= 1.10)")
    print(f"{results['clients']} concurrent clients: {results['jobs_per_min']:.1f} jobs/min; peak RSS server "
          f"{results['peak_rss_mb']['server']:.0f} MiB, worker {results['peak_rss_mb']['workers_max']:.0f} MiB")
    _write(results, args.output)
    return 0
