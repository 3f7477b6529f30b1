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


def _write(results: dict, output: str | None) -> None:
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(results, indent=2), encoding="utf-8")
        print(f"figures written to {output}")


def run_train(args: argparse.Namespace) -> int:
    from hisem.benchmarks.training import bench_training, training_table

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    results = bench_training(presets, batch_size=args.batch_size, min_seconds=args.seconds)
    print(training_table(results))
    print(f"peak RSS {results['peak_rss_mb']:.0f} MiB, {results['threads']} threads")
    _write(results, args.output)
    return 0
