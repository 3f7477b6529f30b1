"""`hisem evaluate`: score a predictions file, or a model over a dataset, as the field scores them.

Two sources, one report (``hisem.evaluation.report``):

- ``--predictions FILE --references CAPTIONS_JSON``: one caption per line, in the order of the
  split's entries in the JSON (the order every LEVIR-CC release and paper uses);
- ``--model RUN_OR_CHECKPOINT --data DIR``: the model predicts captions, change probabilities and
  masks; a folder of ``A/B/label`` pairs without captions gives the flag and mask figures alone.

The Markdown table goes to stdout, the full report to the JSON file named by ``-o``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="text file: one caption per line, in the split's entry order")
    source.add_argument("--model", help="checkpoint file, or run folder (its best.pt)")
    p.add_argument("--references", help="with --predictions: captions JSON or dataset folder")
    p.add_argument("--data", help="with --model: dataset folder (LEVIR-CC layout or A/B/label)")
    p.add_argument("--split", default="test", help="split to score (default test)")
    p.add_argument("-o", "--output", required=True, help="write the report to this JSON file")
    p.add_argument("--batch-size", type=int, default=32, help="with --model (default 32)")
    p.add_argument("--device", default=None, help="with --model: cpu | cuda | cuda:N (default: cuda if any)")
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


def _from_model(args: argparse.Namespace) -> dict[str, Any]:
    from hisem.cli import CommandError
    from hisem.data.readers import read_dataset
    from hisem.evaluation.model_eval import CHANGE_THRESHOLD, evaluate_model

    if not args.data:
        raise CommandError("--model needs --data (the dataset folder to predict)")
    records = read_dataset(Path(args.data), split=args.split)
    if not records:
        raise CommandError(f"{args.data}: no pairs to evaluate")
    device = args.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        report, _ = evaluate_model(
            args.model, records, batch_size=args.batch_size, device=device, field_vocab=_field_vocab(args)
        )
    except ValueError as exc:
        raise CommandError(f"{args.data}: {exc}") from exc
    report["inputs"] = {
        "model": args.model, "data": args.data, "split": args.split, "change_threshold": CHANGE_THRESHOLD,
    }
    return report


def run(args: argparse.Namespace) -> int:
    from hisem.evaluation.report import markdown_table

    report = _from_predictions(args) if args.predictions else _from_model(args)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    sys.stdout.write(markdown_table(report) + "\n")
    log.info("report written to %s", output)
    return 0
