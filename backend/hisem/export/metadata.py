"""What an exported model says about itself: built once here from a checkpoint's contents.

The same dictionary goes into both ONNX files (``metadata_props``), into ``model.json`` and into
``TorchRunner.metadata``, so every runner and listing reads one description of a model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hisem import __version__
from hisem.engine.modelfiles import FORMAT
from hisem.model import HiSem

DEFAULT_GSD_M = 0.5  # the synthetic generator's default and LEVIR-CC's resolution
BANDS = "RGB"


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    """Only the finite numeric entries: a metrics table has no place for paths or NaNs."""
    out = {}
    for key, value in values.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)
    return out


def training_data_of(extra: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint's own account of its data, else what the trainer's options record."""
    if isinstance(extra.get("training_data"), dict):
        return dict(extra["training_data"])
    options = extra.get("options")
    if not isinstance(options, dict) or "data" not in options:
        return None
    # The folder name, not the full path: a model file should not carry a developer's directories.
    info: dict[str, Any] = {"dataset": Path(str(options["data"])).name}
    if isinstance(extra.get("data"), dict):  # pair counts, recorded by the trainer
        info.update({k: v for k, v in extra["data"].items() if k != "dataset"})
    for key in ("epochs", "batch_size", "lr", "lr_schedule", "seed", "max_steps"):
        if options.get(key) is not None:
            info[key] = options[key]
    if "epoch" in extra:
        info["checkpoint_epoch"] = int(extra["epoch"]) + 1
    if extra.get("parent"):
        info["fine_tuned_from"] = extra["parent"].get("model_id")
    return info


def _metrics(extra: dict[str, Any]) -> dict[str, float]:
    """Held-out scores when the checkpoint has them, else its validation scores (``val_`` keys)."""
    if isinstance(extra.get("held_out_metrics"), dict):
        return _numbers(extra["held_out_metrics"])
    metrics = extra.get("metrics")
    if not isinstance(metrics, dict):
        return {}
    return _numbers({k: v for k, v in metrics.items() if k.startswith("val_")})


def build_metadata(
    model: HiSem,
    vocab: dict[str, int],
    extra: dict[str, Any],
    model_id: str,
    gsd_m: float | None = None,
) -> dict[str, Any]:
    """The model's self-description (JSON-able): identity, config, vocabulary and input contract.

    ``gsd_m``: native ground sample distance in metres; default the checkpoint's ``extra["gsd_m"]``,
    else 0.5 m.
    """
    cfg = model.cfg
    options = extra.get("options") if isinstance(extra.get("options"), dict) else {}
    gsd = gsd_m if gsd_m is not None else float(extra.get("gsd_m", DEFAULT_GSD_M))
    if not gsd > 0:
        raise ValueError(f"native GSD must be positive metres per pixel, got {gsd}")
    metadata = {
        "format": FORMAT,
        "model_id": model_id,
        "preset": str(options.get("preset", cfg.encoder.name)),
        "config": cfg.to_dict(),
        "vocab": dict(vocab),
        "tile_size": cfg.encoder.image_size,
        "gsd_m": gsd,
        "bands": BANDS,
        "input_layout": "NCHW",
        "normalization": {
            "mean": list(cfg.encoder.mean),
            "std": list(cfg.encoder.std),
            "input_range": [0, 255],
            "in_graph": True,  # the encoder graph takes raw 0-255 values
        },
        "max_len": cfg.decoder.max_len,
        "training_data": training_data_of(extra),
        # Fine-tuned models name their parent (id, where it came from, what it was trained on).
        "parent_model": extra.get("parent"),
        "vocabulary": extra.get("vocabulary"),
        "selection": extra.get("selection"),
        "metrics": _metrics(extra),
        "hisem_version": __version__,
    }
    # Through JSON and back: tuples become lists, so this dict equals what a runner reads from a file.
    return json.loads(json.dumps(metadata))


def exporter_info(opset: int) -> dict[str, Any]:
    """Versions of the tools that wrote the ONNX files, for reproducing an export."""
    import onnx
    import onnxscript
    import torch

    return {
        "exporter": "torch.onnx.export(dynamo=True)",
        "opset": opset,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
    }
