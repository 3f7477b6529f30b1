"""`hisem train`: train HiSem on a LEVIR-CC-layout folder (ours, LEVIR-CC, LEVIR-MCI, WHU-CDC)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a HiSem model",
        description="Train HiSem with the release's recipe. Several GPUs or processes: "
        "torchrun --nproc_per_node N $(which hisem) train ...",
    )
    p.add_argument("--data", required=True, help="dataset folder (LEVIR-CC layout)")
    p.add_argument("--preset", default="tiny", help="model preset: tiny | lite | paper (default tiny)")
    p.add_argument("--out", required=True, help="run folder for checkpoints and history")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate, constant (release: 1e-4)")
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
    p.add_argument(
        "--cache-features", choices=("auto", "yes", "no"), default="auto",
        help="compute the frozen backbone's features once (auto: for frozen presets on CPU)",
    )
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    p.add_argument("--val-limit", type=int, default=None, help="validate on at most N pairs per epoch")
    p.add_argument("--max-steps", type=int, default=None, help="at most N steps per epoch (smoke runs)")
    p.add_argument("--encoder-weights", default=None, help="paper preset: local OpenAI CLIP ViT-B/16 file")
    p.add_argument("--dim", type=int, default=None, help="override the preset's model width")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from hisem.training.trainer import TrainOptions, train

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    opts = TrainOptions(
        data=args.data, out=args.out, preset=args.preset, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, device=device, seed=args.seed, resume=args.resume,
        cache_features=args.cache_features, workers=args.workers, val_limit=args.val_limit,
        max_steps=args.max_steps, encoder_weights=args.encoder_weights, dim=args.dim,
    )
    result = train(opts)
    print(f"best validation S*m {result.best_score:.4f} at epoch {result.best_epoch}; "
          f"run in {result.run_dir}")
    return 0
