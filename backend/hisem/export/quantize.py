"""Dynamic int8 quantisation of the exported graphs (weights int8, activations quantised per call).

Only MatMul and Gemm are quantised: they hold the transformer, MoE and vocabulary-head weights, and
ONNX Runtime's CPU kernels for them (DynamicQuantizeMatMul) are fast. Convolutions stay float32:
dynamic ConvInteger is slower than the float convolution on CPU and costs the mask head accuracy.
Matrix products of two activations (attention scores) stay float32 too (MatMulConstBOnly).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import onnx

from hisem.engine.modelfiles import GRAPHS, encode_metadata, graph_filename
from hisem.export.quiet import quiet_export_tools

log = logging.getLogger(__name__)

QUANTIZED_OPS = ("MatMul", "Gemm")


def quantize_graph(source: Path, target: Path, metadata: dict[str, Any]) -> None:
    """``source`` fp32 ONNX -> ``target`` with int8 MatMul/Gemm weights and ``metadata`` inside."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp, quiet_export_tools():
        # Shape inference and constant folding first, as ONNX Runtime recommends: the quantiser
        # then sees the real weight tensors behind the exporter's Transpose/Reshape nodes.
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(
            prepared, target, op_types_to_quantize=list(QUANTIZED_OPS), weight_type=QuantType.QInt8,
            per_channel=False, extra_options={"MatMulConstBOnly": True},
        )
    proto = onnx.load(str(target))
    del proto.metadata_props[:]
    for key, value in encode_metadata(metadata).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, str(target), save_as_external_data=False)


def quantize_int8(model_dir: Path, metadata: dict[str, Any]) -> None:
    """Write ``<graph>.int8.onnx`` beside each fp32 graph of ``model_dir``."""
    for graph in GRAPHS:
        source, target = model_dir / graph_filename(graph), model_dir / graph_filename(graph, "int8")
        quantize_graph(source, target, {**metadata, "graph": graph})
        log.info("int8: %s (%.1f MB, fp32 %.1f MB)", target.name,
                 target.stat().st_size / 1e6, source.stat().st_size / 1e6)
