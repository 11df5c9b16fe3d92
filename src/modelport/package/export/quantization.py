"""Dynamic int8 quantization of an exported graph (``onnxruntime.quantization``).

``quantize_dynamic`` stores the float32 weights of MatMul, Conv, Gather, Attention and
LSTM nodes as int8 and quantizes their activations at run time. Many converted models
have no such weights: tree ensembles are ``TreeEnsemble*`` operators, and scikit-learn's
linear models and SVMs are ``Linear*``/``SVM*`` operators of the ``ai.onnx.ml`` domain,
all of which keep their float parameters. For those the graph is exported as it is and
the result says so (``Quantization.applied`` is False, with the reason), rather than
pretending: the quantizer would rewrite nothing, or refuse a graph without standard
operators at all.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import UnsupportedOperationError
from modelport.flavors.dependencies import require
from modelport.flavors.onnx_conversion import first_line

_EXTRA = "accelerate"
# The operators quantize_dynamic rewrites when their weights are float32 initializers
# (onnxruntime.quantization.registry.IntegerOpsRegistry, less Transpose, which is only
# rewritten next to one of these).
_QUANTIZED_OPS = frozenset(
    {"MatMul", "Conv", "Gather", "Attention", "LSTM", "EmbedLayerNormalization"}
)
_FLOAT, _DOUBLE = 1, 11  # onnx.TensorProto.FLOAT and DOUBLE
_INT8_TYPES = frozenset({2, 3})  # UINT8, INT8


@dataclass(frozen=True)
class Quantization:
    """What quantization did: ``applied`` (some weights are now int8), how many weight
    tensors were quantized, the graph's size before and after, and, when nothing was
    quantized, why (``note``)."""

    mode: str
    applied: bool
    quantized_weights: int
    bytes_before: int
    bytes_after: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As ``--json`` shows it."""
        return {
            "mode": self.mode,
            "applied": self.applied,
            "quantized_weights": self.quantized_weights,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "note": self.note,
        }


def has_quantizable_weights(data: bytes) -> bool:
    """Whether the graph has a node quantize_dynamic rewrites fed a float32 weight."""
    return bool(_candidates(_load(data), {_FLOAT}))


def float32_would_quantize(data: bytes) -> bool:
    """Whether the graph has nothing to quantize only because its weights are float64:
    a float32 conversion of the model may then have weights to quantize."""
    model = _load(data)
    return not _candidates(model, {_FLOAT}) and bool(_candidates(model, {_DOUBLE}))


def quantize_int8(data: bytes) -> tuple[bytes, Quantization]:
    """The graph with its weights dynamically quantized to int8, and what was done; the
    graph unchanged (``applied`` False, with the reason) when it has no such weights."""
    model = _load(data)
    if not _candidates(model, {_FLOAT}):
        return data, Quantization("int8", False, 0, len(data), len(data), _nothing(model))
    quantization = require("onnxruntime.quantization", extra=_EXTRA, package="onnxruntime")
    with tempfile.TemporaryDirectory(prefix="modelport-quantize-") as scratch:
        source, target = Path(scratch) / "graph.onnx", Path(scratch) / "quantized.onnx"
        source.write_bytes(data)
        try:
            with _quiet_quantizer():
                # 7-bit weights: x86 CPUs without VNNI multiply uint8 by int8 with
                # saturating 16-bit sums, which full-range weights overflow (probabilities
                # then stray by 0.4 and more); onnxruntime's own advice for them.
                quantization.quantize_dynamic(
                    source, target, weight_type=quantization.QuantType.QInt8, reduce_range=True
                )
        except Exception as exc:  # the quantizer raises untyped errors
            raise UnsupportedOperationError(
                f"onnxruntime cannot quantize this graph: {first_line(exc)}", field="quantize"
            ) from None
        quantized = target.read_bytes()
    count = _int8_weights(_load(quantized))
    if not count:  # keep the graph that was verified, not a rewrite that changed nothing
        note = "onnxruntime's quantizer rewrote none of the graph's weights; exported unquantized"
        return data, Quantization("int8", False, 0, len(data), len(data), note)
    return quantized, Quantization("int8", True, count, len(data), len(quantized))


def _int8_weights(model: Any) -> int:
    """The int8 weight tensors (not their scalar zero points) of a quantized graph."""
    return sum(
        1
        for tensor in model.graph.initializer
        if tensor.data_type in _INT8_TYPES and math.prod(tensor.dims) > 1
    )


def _load(data: bytes) -> Any:
    onnx = require("onnx", extra=_EXTRA)
    return onnx.load_from_string(data)


def _candidates(model: Any, weight_types: set[int]) -> list[str]:
    weights = {t.name for t in model.graph.initializer if t.data_type in weight_types}
    return [
        node.name or node.op_type
        for node in model.graph.node
        if node.op_type in _QUANTIZED_OPS and any(name in weights for name in node.input)
    ]


def _nothing(model: Any) -> str:
    operators = sorted({node.op_type for node in model.graph.node})
    shown = ", ".join(operators[:8]) + (", ..." if len(operators) > 8 else "")
    text = (
        "nothing to quantize: int8 dynamic quantization rewrites the float32 weights of "
        "MatMul, Conv, Gather, Attention and LSTM operators, and this graph has none "
        f"(its operators: {shown})"
    )
    if any(op.startswith("TreeEnsemble") for op in operators):
        text += "; a tree ensemble keeps its thresholds and leaf values as they are"
    elif _candidates(model, {_DOUBLE}):
        text += "; its weights are float64, which the quantizer does not take"
    return text + ". The graph is exported unquantized."


class _DropQuantizerLogs(logging.Filter):
    """onnxruntime's quantizer logs advice (pre-processing, shape inference) on the root
    logger for every call; it says nothing about the result, which is checked."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    root = logging.getLogger()
    dropper = _DropQuantizerLogs()
    root.addFilter(dropper)
    try:
        yield
    finally:
        root.removeFilter(dropper)
