"""The on-disk layout of an exported model folder and the encoding of its metadata.

A model folder holds two ONNX graphs per precision and ``model.json``::

    MODEL_DIR/encoder.onnx          before, after (B, 3, S, S) raw 0-255 -> cross_kv, change_prob, mask_logits
    MODEL_DIR/decoder_step.onnx     cross_kv (B, 2 * layers, H, L, D/H), tokens (B, T) -> log_probs (B, V)
    MODEL_DIR/encoder.int8.onnx     the same graphs with int8 weights (optional)
    MODEL_DIR/decoder_step.int8.onnx
    MODEL_DIR/model.json            the metadata of the graphs, for listing models without opening them

Both graphs carry the whole metadata in ONNX ``metadata_props``, one JSON value per key, so an
ONNX file alone tells the engine its vocabulary, tile size, normalisation and GSD. This module is
shared by the exporter (writing) and the engine (reading) and imports neither torch nor onnx.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FORMAT = "hisem-onnx-v2"  # v2: the encoder gives the decoder's cross-attention keys/values
MODEL_CARD = "model.json"
ENCODER, DECODER_STEP = "encoder", "decoder_step"
GRAPHS = (ENCODER, DECODER_STEP)
PRECISIONS = ("fp32", "int8")

# Graph input and output names: the contract between the exporter and the runners.
ENCODER_INPUTS = ("before", "after")
ENCODER_OUTPUTS = ("cross_kv", "change_prob", "mask_logits")
DECODER_INPUTS = ("cross_kv", "tokens")
DECODER_OUTPUTS = ("log_probs",)


def graph_filename(graph: str, precision: str = "fp32") -> str:
    """``encoder.onnx``, ``decoder_step.int8.onnx``, ..."""
    if graph not in GRAPHS:
        raise ValueError(f"unknown graph {graph!r}; choose one of {GRAPHS}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    return f"{graph}.onnx" if precision == "fp32" else f"{graph}.{precision}.onnx"


def export_files() -> list[str]:
    """Every file name an export may write into a model folder."""
    return [MODEL_CARD, *(graph_filename(g, p) for p in PRECISIONS for g in GRAPHS)]


def available_precisions(model_dir: Path) -> tuple[str, ...]:
    """The precisions whose two graph files are both present in ``model_dir``."""
    return tuple(
        p for p in PRECISIONS if all((model_dir / graph_filename(g, p)).is_file() for g in GRAPHS)
    )


def encode_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Metadata -> ONNX ``metadata_props`` strings (every value JSON, strings included)."""
    return {key: json.dumps(value, sort_keys=True) for key, value in metadata.items()}


def decode_metadata(props: Mapping[str, str], source: str = "ONNX file") -> dict[str, Any]:
    """Inverse of ``encode_metadata``; refuses files that are not HiSem exports."""
    try:
        metadata = {key: json.loads(value) for key, value in props.items()}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: metadata is not JSON ({exc})") from exc
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{source}: not a HiSem model export (expected metadata format {FORMAT!r})")
    return metadata


def read_model_card(model_dir: Path) -> dict[str, Any]:
    """``model.json`` of a model folder, checked to be a HiSem export's."""
    path = model_dir / MODEL_CARD
    try:
        props = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(props, dict) or props.get("format") != FORMAT:
        raise ValueError(f"{path}: not a HiSem model card (expected format {FORMAT!r})")
    return props
