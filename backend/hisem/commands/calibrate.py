"""`hisem calibrate`: choose a trained model's change thresholds on validation data (its operating point)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="choose the change thresholds on validation pairs and fold them into a checkpoint",
        description="Run a checkpoint over a split with change flags and masks (never a set you report), "
        "choose the P(changed) threshold of the tile flag (best accuracy) and of the mask (best F1 over "
        "summed pixels), and write a checkpoint whose graphs add them as logit offsets: 0.5, every "
        "client's default, is then the chosen operating point. See hisem.evaluation.calibrate.",
    )
    p.add_argument("--model", required=True, help="run folder (its best.pt, else last.pt) or .pt checkpoint")
    p.add_argument("--data", required=True, type=Path, help="dataset folder (LEVIR-CC layout) with masks")
    p.add_argument("--split", default="val", help="split to calibrate on (default val)")
    p.add_argument("--limit", type=int, default=None, help="at most N pairs of the split")
    p.add_argument("-o", "--out", required=True, type=Path, help="calibrated checkpoint to write")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hisem.cli import CommandError
    from hisem.evaluation.calibrate import calibrate
    from hisem.evaluation.predict import resolve_checkpoint

    try:
        point = calibrate(resolve_checkpoint(args.model), args.data, args.out, args.split, args.limit, args.device)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    print(json.dumps({**point.__dict__, "flag_bias": point.flag_bias, "mask_bias": point.mask_bias}, indent=2))
    print(f"calibrated checkpoint: {args.out}")
    return 0
