"""Inference: runners (ONNX Runtime for use, PyTorch for parity), caption search, installed models.

Import ``TorchRunner`` from ``hisem.engine.torch_runner``: it needs torch, which an inference-only
install (the ONNX Runtime runner) does not load.
"""

from hisem.engine.decoding import NO_REPEAT_NGRAM, Hypothesis, beam_search, greedy_search, repetition_mask
from hisem.engine.ort_runner import OrtRunner
from hisem.engine.registry import ModelInfo, default_model_id, list_models, resolve_model
from hisem.engine.runner import Runner, TileResult

__all__ = [
    "NO_REPEAT_NGRAM",
    "Hypothesis",
    "ModelInfo",
    "OrtRunner",
    "Runner",
    "TileResult",
    "beam_search",
    "default_model_id",
    "greedy_search",
    "list_models",
    "repetition_mask",
    "resolve_model",
]
