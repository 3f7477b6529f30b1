"""The training loop: the HiSem release's recipe on any LEVIR-CC-layout folder.

Recipe (MODEL.md): loss = caption CE + router weight x router CE (+ MoE balance, + mask loss); the
router weight is 0 for the warm-up epochs then ramps on a half-cosine; the HASD path is teacher-forced
by the change flag for the first ~80 % of epochs; one random reference per pair per step; unchanged
training pairs use the canonical no-change sentence; Adam at a constant learning rate; the best
checkpoint is chosen on validation S*m with greedy decoding.

A run folder holds: options.json, vocab.json, last.pt (every epoch, with optimiser state, for
--resume), best.pt, history.jsonl (one line of losses and validation scores per epoch) and, under
torchrun, ddp-sync.json (every rank's parameter checksum at the end).
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from hisem.data.dataset import ChangeCaptionDataset
from hisem.data.readers import PairRecord, read_dataset
from hisem.data.vocab import Vocab
from hisem.model import build_model, load_checkpoint, save_checkpoint
from hisem.model.config import HiSemConfig, preset
from hisem.model.losses import total_loss
from hisem.training import distributed
from hisem.training.batches import CachedPairsDataset, TrainStep, to_device
from hisem.training.feature_cache import build_feature_cache
from hisem.training.schedule import router_weight, teacher_forced
from hisem.training.validation import validate

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    data: str
    out: str
    preset: str = "tiny"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    cache_features: str = "auto"  # "auto" (frozen encoder on CPU) | "yes" | "no"
    workers: int = 0
    val_limit: int | None = None  # score at most this many validation pairs per epoch
    max_steps: int | None = None  # stop each epoch after this many steps (smoke tests)
    min_word_count: int = 5
    encoder_weights: str | None = None  # paper preset: local OpenAI CLIP checkpoint
    dim: int | None = None  # override the preset's model width


@dataclass
class TrainResult:
    run_dir: Path
    best_score: float
    best_epoch: int
    epochs_run: int


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def model_config(opts: TrainOptions, vocab_size: int, use_cache: bool | None = None) -> HiSemConfig:
    """The preset's config for this run: vocabulary size, width and encoder options applied."""
    cfg = preset(opts.preset, vocab_size=vocab_size, **({"dim": opts.dim} if opts.dim else {}))
    encoder = cfg.encoder
    if opts.encoder_weights:
        encoder = type(encoder)(**{**encoder.__dict__, "weights": opts.encoder_weights})
    if use_cache:
        # Cached features are only valid for a backbone that never changes.
        encoder = type(encoder)(**{**encoder.__dict__, "freeze": True})
    return type(cfg)(**{**cfg.__dict__, "encoder": encoder})


def wants_cache(opts: TrainOptions) -> bool:
    if opts.cache_features == "yes":
        return True
    if opts.cache_features == "no":
        return False
    return opts.device == "cpu" and preset(opts.preset).encoder.freeze


def _records(data: str, split: str) -> list[PairRecord]:
    records = read_dataset(Path(data), split=split)
    if not records:
        raise ValueError(f"{data}: no pairs in the {split!r} split")
    missing = [r.name for r in records if r.before is None or r.after is None]
    if missing:
        raise ValueError(f"{data}: {len(missing)} {split} pairs have no images (first: {missing[0]})")
    return records


class Trainer:
    """Owns the model, data and optimiser of one run; ``fit()`` trains it."""

    def __init__(self, opts: TrainOptions) -> None:
        self.opts = opts
        self.run_dir = Path(opts.out)
        self.ctx = distributed.init_distributed(opts.device)
        self.device = torch.device(
            f"cuda:{self.ctx.local_rank}" if opts.device.startswith("cuda") and self.ctx.enabled else opts.device
        )
        seed_everything(opts.seed)
        self.train_records = _records(opts.data, "train")
        self.val_records = _records(opts.data, "val")
        if opts.val_limit:
            self.val_records = self.val_records[: opts.val_limit]
        self.start_epoch = 0
        self.best_score = float("-inf")
        self.best_epoch = -1
        self.use_cache = wants_cache(opts)
        last = self.run_dir / "last.pt"
        if opts.resume and last.exists():
            self.model, vocab_dict, extra = load_checkpoint(last, map_location="cpu")
            self.vocab = Vocab.from_dict(vocab_dict)
            self.start_epoch = int(extra["epoch"]) + 1
            self.best_score = float(extra.get("best_score", float("-inf")))
            self.best_epoch = int(extra.get("best_epoch", -1))
            self._optimizer_state = extra.get("optimizer")
            log.info("resuming %s at epoch %d", self.run_dir, self.start_epoch + 1)
        else:
            if opts.resume:
                log.warning("--resume: no %s yet, starting a new run", last)
            self.vocab = Vocab.build(self.train_records, min_count=opts.min_word_count)
            self.model = build_model(model_config(opts, len(self.vocab), self.use_cache))
            self._optimizer_state = None
        self.model.to(self.device)
        self.cfg = self.model.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=opts.lr)
        if self._optimizer_state is not None:
            self.optimizer.load_state_dict(self._optimizer_state)
        self.amp = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.train_set = self._dataset(self.train_records, train=True, name="train")
        self.val_set = self._dataset(self.val_records, train=False, name="val")
        self.step = TrainStep(self.model)
        # Experts that no token picked in a step get no gradient: DDP must tolerate unused parameters.
        self.wrapped: torch.nn.Module = (
            DistributedDataParallel(self.step, find_unused_parameters=True) if self.ctx.enabled else self.step
        )

    def _dataset(self, records: list[PairRecord], train: bool, name: str) -> Dataset:
        enc = self.cfg.encoder
        base = ChangeCaptionDataset(
            records,
            self.vocab,
            image_size=enc.image_size,
            mean=enc.mean,
            std=enc.std,
            max_len=self.cfg.decoder.max_len,
            train=train,
            seed=self.opts.seed + self.ctx.rank,
        )
        if not self.use_cache:
            return base
        directory = self.run_dir / "feature-cache" / name
        names = [r.name for r in records]
        # Rank 0 builds the cache; the others wait and then open the same files.
        if self.ctx.is_main:
            build_feature_cache(self.model, base, names, directory, device=str(self.device))
        distributed.barrier(self.ctx)
        cache = build_feature_cache(self.model, base, names, directory, device=str(self.device))
        return CachedPairsDataset(base, cache)

    def _loader(self, dataset: Dataset, shuffle: bool) -> tuple[DataLoader, DistributedSampler | None]:
        sampler = (
            DistributedSampler(dataset, shuffle=shuffle, seed=self.opts.seed) if self.ctx.enabled else None
        )
        generator = torch.Generator().manual_seed(self.opts.seed)
        loader = DataLoader(
            dataset,
            batch_size=self.opts.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=self.opts.workers,
            generator=generator,
            drop_last=False,
        )
        return loader, sampler

    def _save(self, name: str, epoch: int, metrics: dict[str, float]) -> None:
        extra = {
            "epoch": epoch,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "metrics": metrics,
            "options": asdict(self.opts),
        }
        if name == "last.pt":
            extra["optimizer"] = self.optimizer.state_dict()
        save_checkpoint(self.run_dir / name, self.model, self.vocab.to_dict(), extra)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        loader, sampler = self._loader(self.train_set, shuffle=True)
        if sampler is not None:
            sampler.set_epoch(epoch)
        self.wrapped.train()
        rw = router_weight(epoch, self.opts.epochs)
        forced = teacher_forced(epoch, self.opts.epochs)
        sums: dict[str, float] = {}
        steps = 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.opts.epochs}", disable=not self.ctx.is_main)
        for batch in bar:
            batch = to_device(batch, self.device)
            route = batch["changeflag"] if forced else None
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                out = self.wrapped(batch, route)
                loss, parts = total_loss(out, batch, router_weight=rw)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            steps += 1
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if self.opts.max_steps and steps >= self.opts.max_steps:
                break
        means = {f"train_{k}": v / max(steps, 1) for k, v in sums.items()}
        means.update({"router_weight": rw, "teacher_forced": float(forced), "steps": float(steps)})
        return means

    def fit(self) -> TrainResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.ctx.is_main:
            (self.run_dir / "options.json").write_text(json.dumps(asdict(self.opts), indent=2), "utf-8")
            self.vocab.save(self.run_dir / "vocab.json")
        for epoch in range(self.start_epoch, self.opts.epochs):
            started = time.perf_counter()
            metrics = self.train_epoch(epoch)
            metrics["train_seconds"] = time.perf_counter() - started
            score = None
            if self.ctx.is_main:
                val = validate(self.model, self.val_set, self.vocab, self.opts.batch_size, self.device)
                metrics.update(val)
                score = val["val_S*m"]
            score = float(distributed.broadcast_object(self.ctx, score))
            if self.ctx.is_main:
                if score > self.best_score:
                    self.best_score, self.best_epoch = score, epoch
                    self._save("best.pt", epoch, metrics)
                self._save("last.pt", epoch, metrics)
                with (self.run_dir / "history.jsonl").open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"epoch": epoch + 1, **metrics}) + "\n")
                log.info(
                    "epoch %d: loss %.4f, val S*m %.4f (best %.4f at epoch %d)",
                    epoch + 1, metrics.get("train_loss", float("nan")), score,
                    self.best_score, self.best_epoch + 1,
                )
            distributed.barrier(self.ctx)
        checksums = distributed.gather_checksums(self.ctx, self.model)
        if self.ctx.enabled and self.ctx.is_main:
            sync = {"world_size": self.ctx.world_size, "checksums": checksums,
                    "in_sync": len(set(checksums)) == 1}
            (self.run_dir / "ddp-sync.json").write_text(json.dumps(sync, indent=2), "utf-8")
        distributed.shutdown(self.ctx)
        return TrainResult(self.run_dir, self.best_score, self.best_epoch + 1, self.opts.epochs - self.start_epoch)


def train(opts: TrainOptions) -> TrainResult:
    return Trainer(opts).fit()

