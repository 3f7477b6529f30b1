"""Checkpoints that rebuild their model alone: config + weights + vocabulary in one file.

The backbone weights (CLIP or EfficientNet) are inside the state dict, so loading never needs the
original CLIP file or the EfficientNet package's weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from hisem.model.config import HiSemConfig
from hisem.model.hisem import HiSem, build_model

FORMAT = "hisem-checkpoint-v1"
log = logging.getLogger(__name__)


def save_checkpoint(
    path: str | Path, model: HiSem, vocab: dict[str, int], extra: dict[str, Any] | None = None
) -> None:
    """Write {format, config, state_dict, vocab, extra}; ``extra``: epoch, metrics, optimiser state."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": model.cfg.to_dict(),
        "state_dict": model.state_dict(),
        "vocab": dict(vocab),
        "extra": extra or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: an interrupted save never leaves a truncated checkpoint behind


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[HiSem, dict[str, int], dict[str, Any]]:
    """(model in eval mode, vocabulary, extra) from a file written by ``save_checkpoint``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    # weights_only: a checkpoint is data (tensors, dicts, numbers, strings); never run its pickles.
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a HiSem checkpoint (expected format {FORMAT!r})")
    cfg = HiSemConfig.from_dict(payload["config"])
    model = build_model(cfg, load_weights=False)
    model.load_state_dict(payload["state_dict"])
    model.to(map_location).eval()
    log.debug("loaded %s (%s encoder)", path, cfg.encoder.name)
    return model, dict(payload["vocab"]), dict(payload["extra"])
