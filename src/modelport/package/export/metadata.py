"""What an exported graph says about itself, in the ONNX model's ``metadata_props``, so
that any ONNX runtime (onnxruntime's ``get_modelmeta().custom_metadata_map``, Netron,
ONNX.js) knows how to feed it without modelport.

Keys (values are strings, JSON where structured):

* ``modelport.signature``: the package's signature (``Signature.to_dict``), as JSON;
* ``modelport.model``, ``modelport.version``: the registered name and version, when the
  model came from the registry; ``modelport.source``: the reference or directory;
* ``modelport.flavor``: the native framework's flavor;
* ``modelport.inputs``/``modelport.outputs``: the graph's inputs and outputs, as JSON
  lists of ``{"name", "type", "shape"}`` (None for a dimension of any size);
* ``modelport.input_layout``: ``matrix`` (one input of every column, in the order of
  ``modelport.columns``), ``columns`` (one [N, 1] input per column) or ``tensors``;
* ``modelport.columns``: the signature's column names, in order, as JSON;
* ``modelport.label_output``/``modelport.probabilities_output``: which outputs hold
  the predictions and the class probabilities;
* ``modelport.quantization``: ``none`` or ``int8-dynamic``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from modelport.flavors.dependencies import require

PREFIX = "modelport."
_EXTRA = "accelerate"


def graph_ports(data: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The graph's inputs and outputs: name, element type and shape."""
    onnx = require("onnx", extra=_EXTRA)
    model = onnx.load_from_string(data)
    initializers = {t.name for t in model.graph.initializer}
    inputs = [_port(onnx, v) for v in model.graph.input if v.name not in initializers]
    return inputs, [_port(onnx, v) for v in model.graph.output]


def with_metadata(data: bytes, properties: Mapping[str, str | None]) -> bytes:
    """``data`` with ``properties`` (keys without the prefix) set in its metadata_props,
    replacing earlier modelport keys; None values are left out."""
    onnx = require("onnx", extra=_EXTRA)
    model = onnx.load_from_string(data)
    kept = [p for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in properties.items():
        if value is not None:
            entry = model.metadata_props.add()
            entry.key, entry.value = PREFIX + key, value
    data_out: bytes = model.SerializeToString()
    return data_out


def as_json(value: Any) -> str:
    """A compact JSON string of ``value``."""
    return json.dumps(value, separators=(",", ":"), default=str)


def _port(onnx: Any, value: Any) -> dict[str, Any]:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return {"name": value.name, "type": kind, "shape": None}
    tensor = value.type.tensor_type
    element = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type) if tensor.elem_type else None
    shape = (
        [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor.shape.dim]
        if tensor.HasField("shape")
        else None
    )
    return {"name": value.name, "type": _type_name(element), "shape": shape}


def _type_name(element: Any) -> str | None:
    if element is None:
        return None
    name = str(element)
    return "string" if name == "object" else name
