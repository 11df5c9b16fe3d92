"""The convert step: a flavor's ``to_onnx`` hook called on the graph inputs the server's
batches fit, and the graph outputs read as predictions and probabilities.

What is framework-specific (converters, number types, the inputs a graph can take)
lives with each flavor (``flavors.onnx_conversion`` and the flavors' hooks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelport.domain.signature import Signature
from modelport.errors import InvalidInputError
from modelport.flavors.base import Flavor, OnnxConvertible, Sample
from modelport.flavors.onnx_conversion import (
    ACCELERATION_EXTRA,
    GraphInputs,
    GraphUnavailableError,
    OnnxGraph,
    OnnxRequest,
    default_inputs,
    import_or_unavailable,
)
from modelport.flavors.onnx_runtime import output_names
from modelport.package.batch_validation import validate_batch


def converter_of(flavor: Flavor) -> OnnxConvertible:
    """``flavor`` when it converts its models to ONNX (it has a ``to_onnx`` hook)."""
    if not isinstance(flavor, OnnxConvertible):
        raise GraphUnavailableError(
            f"the {flavor.name} flavor does not convert its models to ONNX (no to_onnx hook)"
        )
    return flavor


def graph_inputs(flavor: OnnxConvertible, model: Any, signature: Signature) -> GraphInputs:
    """The inputs of ``model``'s graph: the flavor's ``onnx_inputs`` when it has one,
    else one numeric matrix or one 2-D tensor."""
    choose = getattr(flavor, "onnx_inputs", None)
    if choose is None:
        return default_inputs(signature, flavor.name)
    inputs: GraphInputs = choose(model, signature)
    return inputs


def server_batch(inputs: GraphInputs, signature: Signature, sample: Sample) -> Any:
    """The sample as the server passes it: a matrix, a dict of columns, or tensors."""
    try:
        validated = validate_batch(signature.inputs, sample)
        if not isinstance(validated, pd.DataFrame):
            return validated
        if inputs.layout == "matrix":  # one dtype all columns fit in, as the server's
            return validated.to_numpy(dtype=np.result_type(*validated.dtypes))
        return {str(name): validated[name].to_numpy() for name in validated.columns}
    except (InvalidInputError, ValueError, TypeError) as exc:
        raise GraphUnavailableError(f"the sample does not fit the signature: {exc}") from None


def convert(flavor: OnnxConvertible, request: OnnxRequest) -> OnnxGraph:
    """The flavor's graph of ``request.model``; onnxruntime, which checks it, first."""
    import_or_unavailable("onnxruntime", ACCELERATION_EXTRA)
    return flavor.to_onnx(request)


def graph_outputs(graph: OnnxGraph, probabilities: np.ndarray | None) -> tuple[str, str | None]:
    """The graph's prediction output and its probabilities output (when the native
    model gives probabilities)."""
    names = output_names(graph.session)
    label = "label" if "label" in names else names[0]
    if probabilities is None:
        return label, None
    if "probabilities" not in names:
        raise GraphUnavailableError("the graph has no probabilities output")
    return label, "probabilities"


def head(sample: Sample, rows: int) -> Sample:
    """The first ``rows`` rows of ``sample``."""
    if isinstance(sample, dict):
        return {name: array[:rows] for name, array in sample.items()}
    return sample.iloc[:rows] if isinstance(sample, pd.DataFrame) else sample[:rows]
