"""The training loop: the HiSem release's recipe on any LEVIR-CC-layout folder, or a fine-tune.

Recipe (MODEL.md): loss = caption CE + router weight x router CE (+ MoE balance, + mask loss); the
router weight is 0 for the warm-up epochs then ramps on a half-cosine; the HASD path is teacher-forced
by the change flag for the first ~80 % of epochs; one random reference per pair per step; unchanged
training pairs use the canonical no-change sentence; Adam at a constant learning rate; the best
checkpoint is chosen on a validation score with greedy decoding (``--select``: BLEU-4 as the release
for the `paper` preset, S*m for the others).

Fine-tuning (``init``, training.finetune) starts from a trained model: its weights and vocabulary,
the backbone frozen, a cosine learning rate and a few epochs by default.

A run folder holds: options.json, vocab.json, last.pt (after every epoch: model, optimiser, gradient
scaler, every RNG state, epoch and step, for an exact --resume), best.pt, history.jsonl (one line
of losses and validation scores per epoch) and, under torchrun, ddp-sync.json (every rank's
parameter checksum at the end).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler
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
from hisem.training.finetune import FINE_TUNE_EPOCHS, FINE_TUNE_SCHEDULE, Parent, child_model, load_parent, new_words
from hisem.training.schedule import learning_rate, router_weight, teacher_forced
from hisem.training.validation import validate

log = logging.getLogger(__name__)

AMP_MODES = ("auto", "off", "fp16", "bf16")
# --select: the validation score that picks best.pt, and the history key holding it.
SELECT_KEYS = {"bleu4": "val_BLEU-4", "sm": "val_S*m"}
SELECT_NAMES = {"bleu4": "validation BLEU-4", "sm": "validation S*m"}
# Options that shape the run's schedules and data order: a resumed run must keep them.
SCHEDULE_OPTIONS = (
    "preset", "epochs", "batch_size", "lr", "lr_schedule", "seed", "dim", "select", "no_bdam", "no_hasd",
    "init", "extend_vocab", "train_backbone", "min_word_count",
)


@dataclass
class TrainOptions:
    """What `hisem train` was asked. None = not given: a default, or on --resume the run's own value."""

    data: str
    out: str
    preset: str | None = None  # tiny; with init the parent's
    epochs: int | None = None  # 10; 3 when fine-tuning. Shapes every schedule, even under max_steps
    batch_size: int | None = None  # 32
    lr: float | None = None  # 1e-4 (the release's)
    lr_schedule: str | None = None  # constant (the release's); cosine when fine-tuning
    device: str = "cpu"
    seed: int | None = None  # 0
    resume: bool = False
    cache_features: str = "auto"  # "auto" (frozen encoder on CPU) | "yes" | "no"
    workers: int = 0
    val_limit: int | None = None  # score at most this many validation pairs per epoch
    max_steps: int | None = None  # stop the run after this many optimiser steps in all
    min_word_count: int | None = None  # 5
    encoder_weights: str | None = None  # paper preset: local OpenAI CLIP checkpoint
    dim: int | None = None  # override the preset's model width
    amp: str = "auto"  # auto: fp16 + gradient scaler on CUDA, off on CPU
    select: str | None = None  # bleu4 for the paper preset, sm otherwise
    no_bdam: bool | None = None  # ablation: no BDAM layers
    no_hasd: bool | None = None  # ablation: one plain fusion path instead of router + MoE
    init: str | None = None  # fine-tune from this model id, model folder, run folder or checkpoint
    extend_vocab: bool | None = None  # fine-tuning: give the new data's words rows of their own
    train_backbone: int | None = None  # also train the backbone's last N blocks (default: preset / frozen)


@dataclass
class TrainResult:
    run_dir: Path
    best_score: float
    best_epoch: int
    epochs_run: int
    steps: int = 0
    select: str = "sm"  # the --select key that chose best_score


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_states() -> dict[str, Any]:
    """Every global RNG this process draws from, as plain data (torch.load weights_only reads it)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--amp`` on ``device``; None = full precision."""
    if amp not in AMP_MODES:
        raise ValueError(f"unknown --amp {amp!r}; choose one of {AMP_MODES}")
    if amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    return {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}[amp]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def model_config(opts: TrainOptions, vocab_size: int, use_cache: bool | None = None) -> HiSemConfig:
    """The preset's config for this run: vocabulary size, width, ablations and encoder options applied."""
    cfg = preset(opts.preset or "tiny", vocab_size=vocab_size, **({"dim": opts.dim} if opts.dim else {}))
    encoder = cfg.encoder
    if opts.encoder_weights:
        encoder = replace(encoder, weights=opts.encoder_weights)
    if opts.train_backbone is not None:
        encoder = replace(encoder, freeze=False, trainable_blocks=opts.train_backbone)
    if use_cache:
        # Cached features are only valid for a backbone that never changes.
        encoder = replace(encoder, freeze=True)
    return replace(
        cfg, encoder=encoder,
        bdam=replace(cfg.bdam, enabled=not opts.no_bdam), hasd=replace(cfg.hasd, enabled=not opts.no_hasd),
    )


def wants_cache(opts: TrainOptions, frozen: bool) -> bool:
    """Whether to train on cached backbone features; ``frozen``: the run's backbone is frozen."""
    if opts.cache_features == "yes":
        return True
    if opts.cache_features == "no":
        return False
    return opts.device == "cpu" and frozen


def _records(data: str, split: str) -> list[PairRecord]:
    records = read_dataset(Path(data), split=split)
    if not records:
        raise ValueError(f"{data}: no pairs in the {split!r} split")
    missing = [r.name for r in records if r.before is None or r.after is None]
    if missing:
        raise ValueError(f"{data}: {len(missing)} {split} pairs have no images (first: {missing[0]})")
    return records


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def resume_options(opts: TrainOptions, saved: dict[str, Any], source: Path) -> TrainOptions:
    """``opts`` with the saved run's schedule options where none was given; refused where one differs."""
    given = {k: getattr(opts, k) for k in SCHEDULE_OPTIONS if getattr(opts, k) is not None}
    clashes = {k: v for k, v in given.items() if k in saved and saved[k] != v}
    if clashes:
        was = ", ".join(f"{_flag(k)} {saved[k]}" for k in clashes)
        now = ", ".join(f"{_flag(k)} {v}" for k, v in clashes.items())
        raise ValueError(
            f"--resume: {source} was trained with {was}, this command asks for {now}. These options shape "
            "the learning-rate, router and teacher-forcing schedules and the data order, so the run would "
            "not continue the same training. Resume without them (the run's own values are used), or "
            "start a new run in another --out (--init RUN fine-tunes from this one)."
        )
    return replace(opts, **{k: saved[k] for k in SCHEDULE_OPTIONS if k in saved and k not in given})


def _defaults(opts: TrainOptions, parent: Parent | None, fine_tune: bool | None = None) -> TrainOptions:
    """The options with every unset one decided (fine-tuning has defaults of its own).

    ``parent``: a new fine-tune's parent, whose architecture the options must keep. ``fine_tune``
    (default: whether there is a parent) is for a resumed run, whose parent is not loaded again.
    """
    fine_tune = parent is not None if fine_tune is None else fine_tune
    if not fine_tune and opts.extend_vocab:
        raise ValueError("--extend-vocab only applies when fine-tuning (--init MODEL)")
    if parent is not None:
        cfg = parent.model.cfg
        wanted = {"preset": (opts.preset, parent.info["preset"]), "dim": (opts.dim, cfg.dim),
                  "no_bdam": (opts.no_bdam, not cfg.bdam.enabled), "no_hasd": (opts.no_hasd, not cfg.hasd.enabled)}
        for key, (asked, has) in wanted.items():
            if asked is not None and asked != has:
                raise ValueError(f"--init: {_flag(key)} {asked} differs from the parent model's ({has}); "
                                 "a fine-tuned model keeps its parent's architecture")
        opts = replace(opts, **{k: has for k, (_, has) in wanted.items()})
    chosen = {
        "preset": opts.preset or "tiny",
        "epochs": opts.epochs or (FINE_TUNE_EPOCHS if fine_tune else 10),
        "batch_size": opts.batch_size or 32,
        "lr": opts.lr or 1e-4,
        "lr_schedule": opts.lr_schedule or (FINE_TUNE_SCHEDULE if fine_tune else "constant"),
        "seed": 0 if opts.seed is None else opts.seed,
        "min_word_count": opts.min_word_count or 5,
        "no_bdam": bool(opts.no_bdam),
        "no_hasd": bool(opts.no_hasd),
        "extend_vocab": bool(opts.extend_vocab),
    }
    chosen["select"] = opts.select or ("bleu4" if chosen["preset"] == "paper" else "sm")
    if chosen["select"] not in SELECT_KEYS:
        raise ValueError(f"unknown --select {chosen['select']!r}; choose one of {sorted(SELECT_KEYS)}")
    return replace(opts, **chosen)


class SkipSampler(Sampler[int]):
    """The indices of ``base`` after its first ``skip``: a resumed epoch continues its own order."""

    def __init__(self, base: Sampler[int], skip: int) -> None:
        self.base, self.skip = base, skip

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.base), self.skip, None)

    def __len__(self) -> int:
        return max(len(self.base) - self.skip, 0)  # type: ignore[arg-type]


def _base_dataset(dataset: Dataset) -> ChangeCaptionDataset:
    return dataset.base if isinstance(dataset, CachedPairsDataset) else dataset  # type: ignore[return-value]


class Trainer:
    """Owns the model, data and optimiser of one run; ``fit()`` trains it."""

    def __init__(self, opts: TrainOptions) -> None:
        self.run_dir = Path(opts.out)
        self.ctx = distributed.init_distributed(opts.device)
        self.device = torch.device(
            f"cuda:{self.ctx.local_rank}" if opts.device.startswith("cuda") and self.ctx.enabled else opts.device
        )
        last = self.run_dir / "last.pt"
        resuming = opts.resume and last.exists()
        if opts.resume and not resuming:
            log.warning("--resume: no %s yet, starting a new run", last)
        state: dict[str, Any] = {}
        parent = None
        if resuming:
            self.model, vocab_dict, state = load_checkpoint(last, map_location="cpu")
            resumed = resume_options(opts, state.get("options", {}), last)
            # a run saved before an option existed takes its default
            self.opts = _defaults(resumed, None, fine_tune=bool(resumed.init))
            saved_world = int(state.get("world_size", 1))
            if saved_world != self.ctx.world_size:
                raise ValueError(f"--resume: {last} was trained by {saved_world} processes, this run has "
                                 f"{self.ctx.world_size}: the data order and batches would differ")
            self.vocab = Vocab.from_dict(vocab_dict)
            self.parent_info = state.get("parent")
            self.vocab_info = state.get("vocabulary")
        else:
            parent = load_parent(opts.init) if opts.init else None
            self.opts = _defaults(opts, parent)
            self.parent_info = parent.info if parent else None
        opts = self.opts
        self.select_key = SELECT_KEYS[opts.select]
        seed_everything(opts.seed)
        self.train_records = _records(opts.data, "train")
        self.val_records = _records(opts.data, "val")
        if opts.val_limit:
            self.val_records = self.val_records[: opts.val_limit]
        if not resuming:
            self.model, self.vocab = self._new_model(parent)
        self.model.to(self.device)
        self.cfg = self.model.cfg
        self.use_cache = wants_cache(opts, self.cfg.encoder.freeze)
        if self.use_cache and not self.cfg.encoder.freeze:
            raise ValueError("--cache-features yes needs a frozen backbone (drop --train-backbone)")
        self.start_epoch = int(state.get("epoch", -1)) + (1 if state.get("epoch_complete", True) else 0)
        self.resume_skip = 0 if state.get("epoch_complete", True) else int(state.get("epoch_step", 0))
        self.global_step = int(state.get("step", 0))
        self.best_score = float(state.get("best_score", float("-inf")))
        self.best_epoch = int(state.get("best_epoch", -1))
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=opts.lr)
        self.amp_dtype = amp_dtype(opts.amp, self.device)
        # fp16 needs loss scaling (its exponent range underflows small gradients); bf16 does not.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.train_set = self._dataset(self.train_records, train=True, name="train")
        self.val_set = self._dataset(self.val_records, train=False, name="val")
        per_rank = math.ceil(len(self.train_set) / self.ctx.world_size)
        self.steps_per_epoch = math.ceil(per_rank / opts.batch_size)
        self.total_steps = self.steps_per_epoch * opts.epochs  # what the schedules are shaped on
        self.step = TrainStep(self.model)
        # Experts that no token picked in a step get no gradient: DDP must tolerate unused parameters.
        self.wrapped: torch.nn.Module = (
            DistributedDataParallel(self.step, find_unused_parameters=True) if self.ctx.enabled else self.step
        )
        if resuming:
            self._restore_rng(state.get("rng"))
            log.info("resuming %s at epoch %d, step %d", self.run_dir, self.start_epoch + 1, self.global_step)

    def _new_model(self, parent: Parent | None) -> tuple[torch.nn.Module, Vocab]:
        """A fresh model and vocabulary, or the parent's for a fine-tune (grown with --extend-vocab)."""
        opts = self.opts
        if parent is None:
            vocab = Vocab.build(self.train_records, min_count=opts.min_word_count)
            self.vocab_info = {"source": "training split", "size": len(vocab), "min_count": opts.min_word_count}
            cache = wants_cache(opts, model_config(opts, len(vocab)).encoder.freeze)
            return build_model(model_config(opts, len(vocab), cache)), vocab
        unknown = new_words(parent.vocab, self.train_records, opts.min_word_count)
        vocab = Vocab([*parent.vocab.itos[4:], *unknown]) if opts.extend_vocab else parent.vocab
        self.vocab_info = {
            "source": f"parent model {parent.info['model_id']}", "size": len(vocab), "min_count": opts.min_word_count,
            "extended": opts.extend_vocab, "added_words": len(unknown) if opts.extend_vocab else 0,
            "unknown_words": 0 if opts.extend_vocab else len(unknown),
        }
        if unknown and not opts.extend_vocab:
            log.warning("%d words of the new data are not in %s's vocabulary and read as <UNK> "
                        "(--extend-vocab gives them their own; first: %s)", len(unknown),
                        parent.info["model_id"], ", ".join(unknown[:5]))
        return child_model(parent, vocab, opts.train_backbone), vocab

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

    def loader(self, epoch: int, skip_batches: int = 0) -> DataLoader:
        """The training batches of ``epoch``: its own order and worker seeds (seed + epoch).

        One generator for a whole run would be rebuilt identically each epoch (the same order and,
        with workers, the same reference per pair every epoch); seeding by epoch also lets a resumed
        run rebuild exactly the order it stopped in, ``skip_batches`` batches into it.
        """
        dataset, opts = self.train_set, self.opts
        if self.ctx.enabled:
            base: Sampler[int] = DistributedSampler(dataset, shuffle=True, seed=opts.seed)
            base.set_epoch(epoch)
        else:
            base = RandomSampler(dataset, generator=torch.Generator().manual_seed(opts.seed + epoch))
        return DataLoader(
            dataset,
            batch_size=opts.batch_size,
            sampler=SkipSampler(base, skip_batches * opts.batch_size),
            num_workers=opts.workers,
            generator=torch.Generator().manual_seed(opts.seed + epoch),  # the workers' base seed
            drop_last=False,
        )

    def _rng_snapshot(self) -> list[object]:
        """Every rank's RNG states: global ones and its training dataset's reference sampler."""
        mine = {**rng_states(), "dataset": _base_dataset(self.train_set)._main_rng.getstate()}
        return distributed.gather_object(self.ctx, mine)

    def _restore_rng(self, saved: list[dict[str, Any]] | None) -> None:
        if not saved or len(saved) != self.ctx.world_size:
            log.warning("--resume: %s holds no RNG states; the run continues, not bit for bit", self.run_dir)
            return
        mine = saved[self.ctx.rank]
        set_rng_states(mine)
        version, internal, gauss = mine["dataset"]
        _base_dataset(self.train_set)._main_rng.setstate((version, tuple(internal), gauss))

    def _save(self, name: str, epoch: int, metrics: dict[str, float], extra: dict[str, Any]) -> None:
        payload = {
            "epoch": epoch,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "metrics": metrics,
            "options": asdict(self.opts),
            "world_size": self.ctx.world_size,
            "step": self.global_step,
            "selection": {"metric": self.opts.select, "key": self.select_key, "name": SELECT_NAMES[self.opts.select]},
            "vocabulary": self.vocab_info,
            "data": {"train_pairs": len(self.train_records), "val_pairs": len(self.val_records)},
            **({"parent": self.parent_info} if self.parent_info else {}),
            **extra,
        }
        save_checkpoint(self.run_dir / name, self.model, self.vocab.to_dict(), payload)

    def capped(self) -> bool:
        return bool(self.opts.max_steps) and self.global_step >= int(self.opts.max_steps or 0)

    def train_epoch(self, epoch: int, skip_batches: int = 0) -> dict[str, float]:
        """One epoch (from batch ``skip_batches`` on), or fewer steps where --max-steps ends the run."""
        loader = self.loader(epoch, skip_batches)
        self.wrapped.train()
        hasd = self.cfg.hasd.enabled
        rw = router_weight(epoch, self.opts.epochs) if hasd else 0.0
        forced = teacher_forced(epoch, self.opts.epochs) and hasd
        sums: dict[str, float] = {}
        steps = 0
        lr = self.opts.lr
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.opts.epochs}", disable=not self.ctx.is_main)
        for batch in bar if not self.capped() else ():
            batch = to_device(batch, self.device)
            route = batch["changeflag"] if forced else None
            lr = learning_rate(self.global_step, self.total_steps, self.opts.lr, self.opts.lr_schedule)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with autocast(self.device, self.amp_dtype):
                out = self.wrapped(batch, route)
                loss, parts = total_loss(out, batch, router_weight=rw)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            steps += 1
            self.global_step += 1
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if self.capped():  # checked after the step: fetching one more batch would draw references
                break
        means = {f"train_{k}": v / max(steps, 1) for k, v in sums.items()}
        done = skip_batches + steps
        means.update({"router_weight": rw, "teacher_forced": float(forced), "steps": float(steps), "lr": lr,
                      "epoch_step": float(done), "epoch_complete": float(done >= self.steps_per_epoch)})
        return means

    def fit(self) -> TrainResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.ctx.is_main:
            (self.run_dir / "options.json").write_text(json.dumps(asdict(self.opts), indent=2), "utf-8")
            self.vocab.save(self.run_dir / "vocab.json")
        epochs_run = 0
        for epoch in range(self.start_epoch, self.opts.epochs):
            if self.capped():
                log.info("--max-steps %s reached", self.opts.max_steps)
                break
            started = time.perf_counter()
            skip, self.resume_skip = self.resume_skip, 0
            metrics = self.train_epoch(epoch, skip)
            metrics["train_seconds"] = time.perf_counter() - started
            epochs_run += 1
            self._end_epoch(epoch, metrics)
        checksums = distributed.gather_checksums(self.ctx, self.model)
        if self.ctx.enabled and self.ctx.is_main:
            sync = {"world_size": self.ctx.world_size, "checksums": checksums,
                    "in_sync": len(set(checksums)) == 1}
            (self.run_dir / "ddp-sync.json").write_text(json.dumps(sync, indent=2), "utf-8")
        distributed.shutdown(self.ctx)
        return TrainResult(self.run_dir, self.best_score, self.best_epoch + 1, epochs_run, self.global_step,
                           self.opts.select)

    def _end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Validate, keep the best checkpoint, write last.pt and the history line."""
        score = None
        if self.ctx.is_main:
            # Validation must not move the RNGs training draws from (its data loader takes a seed from
            # torch's): a run stopped and resumed after it then matches one that never stopped.
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                val = validate(self.model, self.val_set, self.vocab, self.opts.batch_size, self.device)
            metrics.update(val)
            score = val[self.select_key]
        score = float(distributed.broadcast_object(self.ctx, score))
        complete = bool(metrics["epoch_complete"])
        resume_state = {
            "epoch_complete": complete,
            "epoch_step": int(metrics["epoch_step"]),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }
        rng = self._rng_snapshot()  # every rank takes part; rank 0 saves
        if self.ctx.is_main:
            if score > self.best_score:
                self.best_score, self.best_epoch = score, epoch
                self._save("best.pt", epoch, metrics, {})
            self._save("last.pt", epoch, metrics, {**resume_state, "rng": rng})
            with (self.run_dir / "history.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"epoch": epoch + 1, **metrics}) + "\n")
            log.info(
                "epoch %d%s: loss %.4f, %s %.4f (best %.4f at epoch %d)",
                epoch + 1, "" if complete else f" (stopped at step {self.global_step})",
                metrics.get("train_loss", float("nan")), SELECT_NAMES[self.opts.select], score,
                self.best_score, self.best_epoch + 1,
            )
        distributed.barrier(self.ctx)


def train(opts: TrainOptions) -> TrainResult:
    return Trainer(opts).fit()
