"""`hisem card`: measure a trained model and write its model card."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_REAL_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "card",
        help="write a model card: held-out synthetic scores and scores on real imagery",
        description="Measures the model on a held-out synthetic test split and the real LEVIR-CC pairs, says "
        "what it was trained on (the training set's sources, the calibrated operating point), then writes "
        "MODEL_CARD.md, metrics.json and RUN/release.pt (the checkpoint with those metrics, for `hisem "
        "export`). The real-imagery table is filled in by `make eval-real` on the installed model.",
    )
    p.add_argument("--model", required=True, help="run folder or checkpoint")
    p.add_argument("--id", required=True, dest="model_id", help="model id, e.g. hisem-lite-hybrid-v2")
    p.add_argument("--heldout", required=True, type=Path, help="synthetic folder whose test split is held out")
    p.add_argument("--real-data", type=Path, default=DEFAULT_REAL_DATA,
                   help="folder with levir-cc/ (default: the project's shared/data)")
    p.add_argument("-o", "--out", required=True, type=Path, help="folder for MODEL_CARD.md and metrics.json")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hisem.cli import CommandError
    from hisem.modelcard import CardInputs, write_card

    for folder in (args.real_data / "levir-cc",):
        if not folder.is_dir():
            raise CommandError(f"{folder}: real data folder not found (use --real-data)")
    figures = write_card(CardInputs(
        model=args.model, model_id=args.model_id, heldout=args.heldout, real_data=args.real_data,
        out_dir=args.out, device=args.device, batch_size=args.batch_size,
    ))
    heldout = figures["heldout_synthetic"]
    print(f"held-out synthetic: flag accuracy {heldout['change_flag']['accuracy']:.3f}, "
          f"S*m {heldout['all']['S*m']:.3f}; card in {args.out / 'MODEL_CARD.md'}")
    return 0
