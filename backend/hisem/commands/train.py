"""`hisem train`: train HiSem on a LEVIR-CC-layout folder (ours, LEVIR-CC, LEVIR-MCI, WHU-CDC), or fine-tune."""

from __future__ import annotations

import argparse
from dataclasses import fields


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a HiSem model, or fine-tune one (--init)",
        description="Train HiSem with the release's recipe, or fine-tune a trained model on your own pairs "
        "(--init). Several GPUs or processes: torchrun --nproc_per_node N $(which hisem) train ... "
        "Options left out take their defaults, or with --resume the run's own values.",
    )
    p.add_argument("--data", required=True, help="dataset folder (LEVIR-CC layout)")
    p.add_argument("--preset", default=None,
                   help="model preset: tiny | lite | paper (default tiny; with --init the parent's)")
    p.add_argument("--out", required=True, help="run folder for checkpoints and history")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="fine-tune: start from an installed model id, a model folder (with weights.pt), "
                   "a run folder or a checkpoint; its weights and vocabulary")
    p.add_argument("--extend-vocab", action="store_true", default=None,
                   help="--init: give the new data's words (seen --min-word-count times) rows of their own "
                   "instead of reading them as <UNK>")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs (default 10; --init 3); they shape the schedules even when --max-steps ends the run")
    p.add_argument("--batch-size", type=int, default=None, help="pairs per step and process (default 32)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-4, the release's)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default=None,
                   help="constant (default, the release's) or cosine decay to 0 (default with --init)")
    p.add_argument("--train-backbone", type=int, default=None, metavar="N",
                   help="also train the backbone's last N blocks (tiny: all of it); default: the preset's "
                   "choice, frozen with --init")
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda when available)")
    p.add_argument("--amp", choices=("auto", "off", "fp16", "bf16"), default="auto",
                   help="mixed precision: auto = fp16 with a gradient scaler on CUDA, off on CPU; "
                   "bf16 also works on a CPU")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.pt exactly where it stopped")
    p.add_argument("--select", choices=("bleu4", "sm"), default=None,
                   help="validation score that picks best.pt: bleu4 (default for the paper preset, the "
                   "release's) or sm (S*m, default for the others)")
    p.add_argument("--no-bdam", action="store_true", default=None, help="ablation: no BDAM layers")
    p.add_argument("--no-hasd", action="store_true", default=None,
                   help="ablation: one plain fusion path instead of HASD's router and experts")
    p.add_argument(
        "--cache-features", choices=("auto", "yes", "no"), default="auto",
        help="compute the frozen backbone's features once (auto: for frozen backbones on CPU)",
    )
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    p.add_argument("--val-limit", type=int, default=None, help="validate on at most N pairs per epoch")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop the run after N optimiser steps in all (smoke runs, quick fine-tunes)")
    p.add_argument("--min-word-count", type=int, default=None,
                   help="words seen fewer times in the training captions are <UNK> (default 5)")
    p.add_argument("--encoder-weights", default=None, help="paper preset: local OpenAI CLIP ViT-B/16 file")
    p.add_argument("--dim", type=int, default=None, help="override the preset's model width")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from hisem.training.trainer import SELECT_NAMES, TrainOptions, train

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    opts = TrainOptions(**{f.name: getattr(args, f.name) for f in fields(TrainOptions) if hasattr(args, f.name)})
    result = train(opts)
    select = SELECT_NAMES.get(result.select, result.select)
    print(f"best {select} {result.best_score:.4f} at epoch {result.best_epoch} "
          f"({result.steps} steps in all); run in {result.run_dir}")
    return 0
