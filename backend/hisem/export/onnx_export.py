"""Export a HiSem model to its two ONNX graphs, check them, compare them with PyTorch, write model.json.

``torch.onnx.export(dynamo=True)``: the old TorchScript exporter freezes the caption length. The MoE
layers are exported with their sparse dispatch (export.graphs.SparseMoE), not the every-expert
fallback model/moe.py takes under export; ``verify_export`` compares the result with the model.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from hisem.engine.modelfiles import (
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    DECODER_STEP,
    ENCODER,
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    MODEL_CARD,
    available_precisions,
    encode_metadata,
    export_files,
    graph_filename,
)
from hisem.export.graphs import DecoderStepGraph, EncoderGraph, with_sparse_moe
from hisem.export.metadata import build_metadata, exporter_info
from hisem.export.quiet import quiet_export_tools
from hisem.model import HiSem, load_checkpoint
from hisem.model.checkpoint import WEIGHTS_FILE, save_weights

log = logging.getLogger(__name__)

DEFAULT_OPSET = 20
VERIFY_ATOL = 1e-3  # ONNX Runtime vs PyTorch right after export; the tests hold a tighter 1e-4


class ExportVerificationError(RuntimeError):
    """The exported graph does not compute what the PyTorch model computes: an exporter bug."""


@dataclass(frozen=True)
class ExportResult:
    model_dir: Path
    metadata: dict[str, Any]
    precisions: tuple[str, ...]


def _save_with_metadata(program: Any, path: Path, metadata: dict[str, Any]) -> None:
    """ONNX program -> one self-contained file with the metadata, checked by onnx.checker."""
    proto = program.model_proto
    del proto.metadata_props[:]
    for key, value in encode_metadata(metadata).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    # save_as_external_data=False: weights inside the file (all HiSem presets are far below 2 GB).
    onnx.save_model(proto, str(path), save_as_external_data=False)


def _example_images(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Two *different* tensors: with one tensor passed twice, export treats the inputs as aliases
    # and the graph silently reads `before` for both dates.
    g = torch.Generator().manual_seed(0)
    before = torch.rand(2, 3, size, size, generator=g) * 255.0
    after = torch.rand(2, 3, size, size, generator=g) * 255.0
    return before, after


def export_graphs(model: HiSem, out_dir: Path, metadata: dict[str, Any], opset: int) -> None:
    """Write encoder.onnx and decoder_step.onnx (fp32), dynamic in batch and caption length."""
    cfg = model.cfg
    batch = torch.export.Dim("batch", min=1)
    images = _example_images(cfg.encoder.image_size)
    encoder = EncoderGraph(with_sparse_moe(model)).eval()
    program = torch.onnx.export(
        encoder, images, dynamo=True, opset_version=opset, verbose=False,
        input_names=list(ENCODER_INPUTS), output_names=list(ENCODER_OUTPUTS),
        dynamic_shapes=({0: batch}, {0: batch}),
    )
    _save_with_metadata(program, out_dir / graph_filename(ENCODER), {**metadata, "graph": ENCODER})

    with torch.no_grad():
        memory = encoder(*images)[0]  # (2, 2 * layers, L, D): the cross-attention keys/values
    tokens = torch.tensor([[2, 4, 5], [2, 6, 3]], dtype=torch.long)
    # T from 1 (<START> alone) to max_len - 1 (the longest prefix that still predicts a token).
    length = torch.export.Dim("tokens", min=1, max=cfg.decoder.max_len - 1)
    program = torch.onnx.export(
        DecoderStepGraph(model).eval(), (memory, tokens), dynamo=True, opset_version=opset, verbose=False,
        input_names=list(DECODER_INPUTS), output_names=list(DECODER_OUTPUTS),
        dynamic_shapes=({0: batch}, {0: batch, 1: length}),
    )
    _save_with_metadata(program, out_dir / graph_filename(DECODER_STEP), {**metadata, "graph": DECODER_STEP})


def verify_export(model: HiSem, model_dir: Path, atol: float = VERIFY_ATOL) -> float:
    """ONNX Runtime vs PyTorch on a random batch of 3 (not the traced 2); returns the largest gap."""
    import onnxruntime as ort

    cfg = model.cfg
    g = torch.Generator().manual_seed(1)
    s = cfg.encoder.image_size
    before, after = (torch.randint(0, 256, (3, 3, s, s), generator=g).float() for _ in range(2))
    tokens = torch.randint(4, cfg.vocab_size, (3, 5), generator=g)
    tokens[:, 0] = 2
    with torch.no_grad():
        expected = list(EncoderGraph(model).eval()(before, after))
        expected.append(DecoderStepGraph(model).eval()(expected[0], tokens))
    providers = ["CPUExecutionProvider"]
    enc = ort.InferenceSession(str(model_dir / graph_filename(ENCODER)), providers=providers)
    dec = ort.InferenceSession(str(model_dir / graph_filename(DECODER_STEP)), providers=providers)
    got = enc.run(None, {"before": before.numpy(), "after": after.numpy()})
    got += dec.run(None, {"cross_kv": expected[0].numpy(), "tokens": tokens.numpy()})
    names = [*ENCODER_OUTPUTS, *DECODER_OUTPUTS]
    gaps = {n: float(np.abs(e.numpy() - r).max()) for n, e, r in zip(names, expected, got, strict=True)}
    log.info("ONNX Runtime vs PyTorch, largest differences: %s", {n: f"{v:.2g}" for n, v in gaps.items()})
    worst = max(gaps, key=gaps.__getitem__)
    if not gaps[worst] <= atol:  # `not <=` also catches NaN
        raise ExportVerificationError(f"exported {worst} differs from PyTorch by {gaps[worst]:.3g} > {atol}")
    return gaps[worst]


def export_model(
    model: HiSem,
    vocab: dict[str, int],
    out_dir: str | Path,
    *,
    extra: dict[str, Any] | None = None,
    model_id: str | None = None,
    opset: int = DEFAULT_OPSET,
    quantize: str | None = None,
    gsd_m: float | None = None,
) -> ExportResult:
    """Export ``model`` into ``out_dir`` (fp32 graphs, optionally int8 ones, weights.pt), write model.json.

    ``model_id`` defaults to the folder's name, the way models are listed and looked up. A previous
    export in ``out_dir`` is replaced (its int8 graphs too, so no stale precision is left listed).
    ``weights.pt`` is what `hisem train --init` fine-tunes from (model.checkpoint.save_weights).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in (*export_files(), WEIGHTS_FILE):
        (out / name).unlink(missing_ok=True)
    model = model.eval()
    metadata = build_metadata(model, vocab, extra or {}, model_id or out.resolve().name, gsd_m)
    metadata["export"] = exporter_info(opset)
    log.info("exporting %s (%s preset) to %s", metadata["model_id"], metadata["preset"], out)
    with quiet_export_tools():
        export_graphs(model, out, {**metadata, "precision": "fp32"}, opset)
    verify_export(model, out)
    if quantize == "int8":
        from hisem.export.quantize import quantize_int8

        quantize_int8(out, {**metadata, "precision": "int8"})
    elif quantize is not None:
        raise ValueError(f"unknown quantisation {quantize!r}; only int8 is supported")
    save_weights(out / WEIGHTS_FILE, model, vocab, weights_extra(metadata))
    precisions = available_precisions(out)
    card = {**metadata, "precisions": list(precisions),
            "files": {p: {g: graph_filename(g, p) for g in (ENCODER, DECODER_STEP)} for p in precisions}}
    (out / MODEL_CARD).write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")
    return ExportResult(out, metadata, precisions)


def weights_extra(metadata: dict[str, Any]) -> dict[str, Any]:
    """What weights.pt keeps of the card: identity and provenance, for a fine-tuned child's card."""
    keys = ("model_id", "preset", "gsd_m", "training_data", "parent_model", "vocabulary", "selection", "metrics")
    return {key: metadata[key] for key in keys if metadata.get(key) is not None}


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, **kwargs: Any) -> ExportResult:
    """``export_model`` on a checkpoint file or a run folder (its best.pt, else last.pt)."""
    from hisem.evaluation.predict import resolve_checkpoint

    path = resolve_checkpoint(checkpoint)
    model, vocab, extra = load_checkpoint(path)
    return export_model(model, vocab, out_dir, extra=extra, **kwargs)
