"""`hisem models`: the models the engine can load, where they were found and how they score."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list installed models (id, preset, tile size, GSD, precisions, metrics)",
        description="Models are folders with model.json and ONNX graphs, found in $HISEM_MODELS_DIR, "
        "~/.local/share/hisem/models and the repository's resources/models (first one wins per id).",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _metrics_text(metrics: dict[str, float], limit: int = 3) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in list(metrics.items())[:limit]) or "-"


def run(args: argparse.Namespace) -> int:
    from hisem.benchmarks.common import markdown_table
    from hisem.engine.registry import default_model_id, list_models, model_dirs

    models = list_models()
    default = default_model_id(models)
    if args.json:
        print(json.dumps({"default": default, "models": [m.to_json() for m in models]}, indent=2))
        return 0
    if not models:
        print("no models installed; searched: " + ", ".join(str(d) for d in model_dirs()))
        return 0
    rows = [
        [("* " if m.id == default else "") + m.id, m.preset, m.tile_size, m.gsd_m, "/".join(m.precisions),
         _metrics_text(m.metrics), str(m.path)]
        for m in models
    ]
    header = ["id (* default)", "preset", "tile px", "GSD m", "precisions", "metrics", "path"]
    print(markdown_table(header, rows))
    return 0
