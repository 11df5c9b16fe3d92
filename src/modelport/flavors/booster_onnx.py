"""Gradient-boosted trees as ONNX graphs, converted by onnxmltools: what the XGBoost and
LightGBM hooks share (each flavor module holds its own converter call and precisions).

Their graphs take one numeric matrix (``onnx_conversion.default_inputs``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from modelport.flavors.onnx_conversion import (
    GraphUnavailableError,
    OnnxGraph,
    OnnxRequest,
    TypePlan,
    convert_in_order,
    first_line,
    import_or_unavailable,
    type_plans,
)
from modelport.flavors.onnx_runtime import output_names

ONNXMLTOOLS_OPSET = 15  # the highest onnxmltools 1.16 converts to

Converter = Callable[[Any, Any, TypePlan], Any]
"""Converts (onnxmltools module, model, initial types) to an ONNX ModelProto."""


def booster_graph(
    request: OnnxRequest, *, extra: str, precisions: Sequence[str], convert: Converter
) -> OnnxGraph:
    """The graph ``convert`` makes at the first of ``precisions`` that converts and loads;
    ``extra`` installs onnxmltools with the framework."""
    tools = import_or_unavailable("onnxmltools", extra)
    types = import_or_unavailable("onnxmltools.convert.common.data_types", extra)
    plans = type_plans(types, request.inputs, precisions)
    name = type(request.model).__name__
    graph = convert_in_order(
        lambda initial_types: convert(tools, request.model, initial_types),
        plans,
        lambda failure: f"onnxmltools cannot convert this {name}: {first_line(failure)}",
    )
    # A bare Booster does not know it classifies: its predictions are the probabilities,
    # while the graph, knowing the objective, predicts labels.
    if request.predicts_values and "probabilities" in output_names(graph.session):
        raise GraphUnavailableError(
            "the model is a bare Booster whose predictions are probabilities, while its "
            "graph predicts labels; save the XGBClassifier or LGBMClassifier to accelerate it"
        )
    return graph
