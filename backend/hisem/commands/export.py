"""`hisem export`: a checkpoint or run folder -> a model folder of ONNX graphs for the engine."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained model to ONNX (encoder + decoder step) for the inference engine",
        description="Write MODEL_DIR/encoder.onnx, MODEL_DIR/decoder_step.onnx, MODEL_DIR/weights.pt "
        "(the PyTorch weights `hisem train --init` fine-tunes from) and MODEL_DIR/model.json "
        "(with --quantize int8 also *.int8.onnx). The graphs take raw 0-255 RGB tiles and carry their "
        "vocabulary, tile size, normalisation and GSD inside. Copy MODEL_DIR into a models folder "
        "(see `hisem models`) to make it available.",
    )
    p.add_argument("--model", required=True, help="run folder (its best.pt, else last.pt) or .pt checkpoint")
    p.add_argument("-o", "--out", required=True, type=Path, help="model folder to write (MODEL_DIR)")
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="also write int8-weight graphs (opt-in: no faster than fp32 on CPU; docs/decisions.md)")
    p.add_argument("--id", default=None, help="model id (default: the name of MODEL_DIR)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 20)")
    p.add_argument("--gsd", type=float, default=None,
                   help="native ground sample distance in metres (default: from the checkpoint, else 0.5)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export in MODEL_DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hisem.cli import CommandError
    from hisem.engine.modelfiles import export_files
    from hisem.export import DEFAULT_OPSET, export_checkpoint
    from hisem.model.checkpoint import WEIGHTS_FILE

    existing = [name for name in (*export_files(), WEIGHTS_FILE) if (args.out / name).exists()]
    if existing and not args.overwrite:
        raise CommandError(f"{args.out} already holds an export ({existing[0]}); "
                           "pass --overwrite to replace it")
    start = time.perf_counter()
    result = export_checkpoint(
        args.model, args.out, model_id=args.id, opset=args.opset or DEFAULT_OPSET,
        quantize=args.quantize, gsd_m=args.gsd,
    )
    meta = result.metadata
    print(f"exported {meta['model_id']} ({meta['preset']}, {meta['tile_size']} px tiles, "
          f"{len(meta['vocab'])} words, precisions {', '.join(result.precisions)}) to {result.model_dir} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0
