"""ONNX export of a HiSem model: the encoder graph and the decoder-step graph, with their metadata."""

from hisem.export.onnx_export import (
    DEFAULT_OPSET,
    ExportResult,
    ExportVerificationError,
    export_checkpoint,
    export_model,
)

__all__ = ["DEFAULT_OPSET", "ExportResult", "ExportVerificationError", "export_checkpoint", "export_model"]
