"""`hisem evaluate`: score a predictions file, or a model over a dataset, as the field scores them.

Two sources, one report (``hisem.evaluation.report``):

- ``--predictions FILE --references CAPTIONS_JSON``: one caption per line, in the order of the
  split's entries in the JSON (the order every LEVIR-CC release and paper uses);
- ``--data DIR [--model ID|FOLDER|CHECKPOINT]``: the model predicts captions, change probabilities
  and masks. An installed model (an id, a model folder, or none: the default one) runs through the
  ONNX Runtime engine exactly as `hisem caption` runs it (``hisem.evaluation.engine_eval``: pairs
  resampled from ``--gsd`` to the model's GSD, tiled, stitched); a checkpoint or run folder runs
  through PyTorch on whole pairs (``hisem.evaluation.model_eval``). A folder of ``A/B/label``
  pairs gives the flag and mask figures and the baselines.

The Markdown tables go to stdout, the full report to the JSON file named by ``-o``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hisem.data.readers import PairRecord
    from hisem.data.vocab import Vocab

log = logging.getLogger(__name__)

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score captions, change flags and change masks",
        description="Caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr, S*m) overall and on the "
        "changed/unchanged subsets, change-flag accuracy/precision/recall, change-mask "
        "precision/recall/F1/IoU/cIoU.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--predictions", help="text file: one caption per line, in the split's entry order")
    source.add_argument(
        "--model", help="installed model id or model folder (ONNX Runtime, as `hisem caption`; default: the "
        "default model), or a checkpoint file / run folder (PyTorch)",
    )
    p.add_argument("--references", help="with --predictions: captions JSON or dataset folder")
    p.add_argument("--data", help="dataset folder to predict (LEVIR-CC layout or A/B/label)")
    p.add_argument("--split", default="test", help="split to score (default test)")
    p.add_argument("--gsd", type=float, default=None, metavar="M",
                   help="ground sample distance of pairs without georeference, in metres (default: the "
                   "model's); they are resampled to the model's GSD. Installed models only")
    p.add_argument("--threshold", type=float, default=None, metavar="P",
                   help="installed models: change probability threshold for tiles and pixels (default: "
                   "`hisem caption`'s, 0.5)")
    p.add_argument("-o", "--output", default=None, help="also write the full report to this JSON file")
    p.add_argument("--batch-size", type=int, default=None, help="tiles or pairs per batch (default 8 for "
                   "installed models, 32 for checkpoints)")
    p.add_argument("--device", default=None, help="checkpoints: cpu | cuda | cuda:N (default: cuda if any)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--field-vocab", metavar="VOCAB_JSON",
        help="score vocabulary ids instead of words, exactly as the field's code does "
        "(e.g. vocab-501.json): moves METEOR, barely the rest; see hisem.evaluation.captions",
    )
    p.set_defaults(func=run)


def _field_vocab(args: argparse.Namespace) -> Vocab | None:
    from hisem.data.vocab import Vocab

    return Vocab.load(args.field_vocab) if args.field_vocab else None


def _from_predictions(args: argparse.Namespace) -> dict[str, Any]:
    from hisem.cli import CommandError
    from hisem.data.readers import read_dataset
    from hisem.evaluation.report import build_report

    if not args.references:
        raise CommandError("--predictions needs --references (the captions JSON of the split)")
    predictions = Path(args.predictions)
    if not predictions.is_file():
        raise FileNotFoundError(f"{predictions}: no such predictions file")
    records = read_dataset(Path(args.references), split=args.split)
    lines = predictions.read_text(encoding="utf-8").splitlines()
    if len(lines) != len(records):
        raise CommandError(
            f"{predictions} has {len(lines)} lines but the {args.split!r} split of {args.references} "
            f"has {len(records)} pairs (one caption per line, in the order of the entries)"
        )
    report = build_report(records, captions=lines, field_vocab=_field_vocab(args))
    report["inputs"] = {"predictions": str(predictions), "references": args.references, "split": args.split}
    return report


def _is_checkpoint(model: str | None) -> bool:
    """A checkpoint file or a run folder (PyTorch), as opposed to an installed id or model folder (engine)."""
    from hisem.engine.modelfiles import MODEL_CARD

    if model is None:
        return False
    path = Path(model)
    if path.is_dir():
        return not (path / MODEL_CARD).is_file() and any((path / n).is_file() for n in ("best.pt", "last.pt"))
    return path.is_file()


def _from_model(args: argparse.Namespace) -> dict[str, Any]:
    from hisem.cli import CommandError
    from hisem.data.readers import read_dataset

    if not args.data:
        raise CommandError("--model needs --data (the dataset folder to predict)" if args.model else
                           "give --data DIR (with --model, or the default model) or --predictions FILE")
    records = read_dataset(Path(args.data), split=args.split)
    if not records:
        raise CommandError(f"{args.data}: no pairs to evaluate")
    try:
        if _is_checkpoint(args.model):
            return _from_checkpoint(args, records)
        return _from_installed(args, records)
    except ValueError as exc:
        raise CommandError(f"{args.data}: {exc}") from exc


def _from_installed(args: argparse.Namespace, records: list[PairRecord]) -> dict[str, Any]:
    from hisem.cli import CommandError
    from hisem.engine import resolve_model
    from hisem.evaluation.engine_eval import EngineSettings, evaluate_engine

    if args.gsd is not None and not args.gsd > 0:
        raise CommandError(f"--gsd must be positive, got {args.gsd}")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise CommandError(f"--threshold must be within (0, 1), got {args.threshold}")
    model = resolve_model(args.model)
    defaults = EngineSettings()
    settings = EngineSettings(
        data_gsd=args.gsd, threshold=defaults.threshold if args.threshold is None else args.threshold,
        batch_size=args.batch_size or defaults.batch_size, progress=not args.no_progress,
    )
    if args.gsd is None:
        log.info("no --gsd: pairs without georeference are taken to be at the model's %g m", model.gsd_m)
    report = evaluate_engine(model, records, settings, field_vocab=_field_vocab(args))
    report["inputs"].update({"data": args.data, "split": args.split})
    return report


def _from_checkpoint(args: argparse.Namespace, records: list[PairRecord]) -> dict[str, Any]:
    from hisem.cli import CommandError
    from hisem.evaluation.baseline import baseline_scores
    from hisem.evaluation.model_eval import CHANGE_THRESHOLD, evaluate_model

    if args.gsd is not None or args.threshold is not None:
        raise CommandError("--gsd and --threshold apply to installed models (the engine's tiled path); "
                           "export the checkpoint with `hisem export` to evaluate it that way")
    device = args.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    report, _ = evaluate_model(
        args.model, records, batch_size=args.batch_size or 32, device=device, field_vocab=_field_vocab(args)
    )
    if report.get("mask"):
        report["baselines"] = baseline_scores(records)
    report["inputs"] = {
        "model": args.model, "engine": "pytorch", "data": args.data, "split": args.split,
        "change_threshold": CHANGE_THRESHOLD,
    }
    return report


def run(args: argparse.Namespace) -> int:
    from hisem.evaluation.report import markdown_table

    report = _from_predictions(args) if args.predictions else _from_model(args)
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2), encoding="utf-8")
        log.info("report written to %s", output)
    sys.stdout.write(markdown_table(report) + "\n")
    return 0
