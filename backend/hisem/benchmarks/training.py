"""Training throughput and forward latency per preset, on random inputs of the preset's shape.

Throughput counts whole optimisation steps (forward, backward, Adam) in pairs per second. For a frozen
backbone it is measured twice, side by side in one run: from images (the backbone runs every step)
and from cached features (training.feature_cache), whose ratio is the reason that cache exists.
The ``paper`` preset (CLIP ViT-B/16, 174 M parameters) gets forward latency only on a CPU, with random
weights of the real shape: training it on a CPU is not a use case, and speed does not depend on the
weights' values. With a GPU, every preset also gets a CUDA column: training pairs/s under fp16
autocast with a gradient scaler, the way `hisem train --amp auto` trains there.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from hisem.benchmarks.common import markdown_table, peak_rss_mb, time_calls
from hisem.model import build_model
from hisem.model.config import HiSemConfig, preset
from hisem.model.losses import total_loss

log = logging.getLogger(__name__)

VOCAB = 500  # LEVIR-CC's vocabulary is ~500 words
SEQ = 24  # a typical caption length with <START>/<END>


def _batch(cfg: HiSemConfig, batch_size: int) -> dict[str, torch.Tensor]:
    s = cfg.encoder.image_size
    g = torch.Generator().manual_seed(0)
    return {
        "before": torch.randn(batch_size, 3, s, s, generator=g),
        "after": torch.randn(batch_size, 3, s, s, generator=g),
        "tokens": torch.randint(4, VOCAB, (batch_size, SEQ), generator=g),
        "changeflag": torch.randint(0, 2, (batch_size,), generator=g),
        "mask": (torch.rand(batch_size, 1, s, s, generator=g) > 0.9).float(),
        "has_mask": torch.ones(batch_size, dtype=torch.bool),
    }


def _train_step(model, batch: dict[str, torch.Tensor], optimizer, cached: bool,
                amp_dtype: torch.dtype | None = None):
    """One optimisation step as a function; ``amp_dtype``: autocast (fp16 with a gradient scaler)."""
    from hisem.training.trainer import autocast

    device = batch["before"].device
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    feats = None
    if cached:
        with torch.no_grad():
            feats = (model.extract(batch["before"]), model.extract(batch["after"]))

    def step() -> None:
        with autocast(device, amp_dtype):
            if feats is None:
                out = model(batch["before"], batch["after"], batch["tokens"][:, :-1], route=batch["changeflag"])
            else:
                out = model.encode(feats[0], feats[1], route=batch["changeflag"])
                out = out._replace(logits=model.decode(out.memory, batch["tokens"][:, :-1]))
            loss, _ = total_loss(out, batch, router_weight=0.8)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize()  # CUDA runs asynchronously: time the work, not its launch

    return step


def _cuda_amp_pairs_per_s(name: str, cfg: HiSemConfig, batch_size: int, min_seconds: float) -> float:
    """Training pairs/s on the GPU under fp16 autocast with a gradient scaler (hisem train --amp auto)."""
    device = torch.device("cuda")
    model = build_model(cfg, load_weights=name != "paper").to(device).train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = {k: v.to(device) for k, v in _batch(cfg, batch_size).items()}
    t = time_calls(_train_step(model, batch, optimizer, cached=False, amp_dtype=torch.float16),
                   min_seconds=min_seconds)
    del model, optimizer, batch
    torch.cuda.empty_cache()
    return batch_size / t.seconds_per_call


def bench_training(presets: list[str], batch_size: int = 8, min_seconds: float = 3.0) -> dict[str, Any]:
    """Pairs/s of training steps for each preset (with and without cached features when frozen)."""
    torch.manual_seed(0)
    results: dict[str, Any] = {"batch_size": batch_size, "threads": torch.get_num_threads(), "presets": {}}
    cuda = torch.cuda.is_available()
    if cuda:
        results["cuda_device"] = torch.cuda.get_device_name(0)
    for name in presets:
        cfg = preset(name, vocab_size=VOCAB)
        # paper: random ViT-B/16 weights of the real shape (the CLIP file is the user's, never shipped)
        model = build_model(cfg, load_weights=name != "paper")
        model.train()
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        batch = _batch(cfg, batch_size)
        entry: dict[str, Any] = {}
        if name != "paper":
            t = time_calls(_train_step(model, batch, optimizer, cached=False), min_seconds=min_seconds)
            entry["train_pairs_per_s"] = batch_size / t.seconds_per_call
        if cfg.encoder.freeze and name != "paper":
            t = time_calls(_train_step(model, batch, optimizer, cached=True), min_seconds=min_seconds)
            entry["train_pairs_per_s_cached"] = batch_size / t.seconds_per_call
            entry["cached_speedup"] = entry["train_pairs_per_s_cached"] / entry["train_pairs_per_s"]
        model.eval()
        for bs in (1, batch_size):
            b = _batch(cfg, bs)

            def forward(b: dict[str, torch.Tensor] = b, m: torch.nn.Module = model) -> None:
                with torch.no_grad():
                    m(b["before"], b["after"], b["tokens"][:, :-1])

            t = time_calls(forward, min_seconds=min_seconds / 2)
            entry[f"forward_ms_batch{bs}"] = 1000.0 * t.seconds_per_call
        if cuda:  # the GPU column: the whole model (the backbone included) trains every step there
            entry["cuda_amp_train_pairs_per_s"] = _cuda_amp_pairs_per_s(name, cfg, batch_size, min_seconds)
        entry["parameters_m"] = sum(p.numel() for p in model.parameters()) / 1e6
        entry["trainable_parameters_m"] = sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
        results["presets"][name] = entry
        log.info("%s: %s", name, entry)
    results["peak_rss_mb"] = peak_rss_mb()
    return results


def training_table(results: dict[str, Any]) -> str:
    """The figures as Markdown; a CUDA column (AMP training pairs/s) when a GPU was measured."""
    cuda = "cuda_device" in results
    header = ["preset", "train pairs/s", "train pairs/s (cached)", "cached ×", "fwd ms b1",
              f"fwd ms b{results['batch_size']}", "params M"]
    if cuda:
        header.insert(4, f"CUDA AMP train pairs/s ({results['cuda_device']})")
    rows = []
    for name, e in results["presets"].items():
        row = [
            name, e.get("train_pairs_per_s", "–"), e.get("train_pairs_per_s_cached", "–"), e.get("cached_speedup", "–"),
            e["forward_ms_batch1"], e[f"forward_ms_batch{results['batch_size']}"], e["parameters_m"],
        ]
        if cuda:
            row.insert(4, e.get("cuda_amp_train_pairs_per_s", "–"))
        rows.append(row)
    return markdown_table(header, rows)
