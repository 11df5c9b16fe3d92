"""Shadow copies as bytes, for the process that answers them (``server.process.shadow_link``).

A copy is one frame: a 4-byte big-endian length, then a pickle of plain values (names,
numbers, bytes): a numeric array travels as its dtype, shape and bytes, which costs a
fifth of pickling the array object on the caller's event loop. Both ends are the same
server's processes over a private socket pair, so unpickling trusts what it reads.
The deadline travels as what was left of it, each process having its own clock.
"""

from __future__ import annotations

import pickle
import struct
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from modelport.serving.binding import ArrayInputs, NamedInputs, RequestInputs, TableInputs, Tensor
from modelport.serving.target import InferenceRequest

HEADER = struct.Struct(">I")
_NUMBERS = "biufc"


def encode_copy(deployment: str, arm: str, request: InferenceRequest) -> bytes:
    """One frame: the copy of ``request`` for shadow ``arm`` of ``deployment``."""
    body = pickle.dumps(
        (
            deployment,
            arm,
            request.request_id,
            request.protocol,
            request.outputs,
            request.deadline - request.received,
            dict(request.params) if request.params is not None else None,
            *_inputs(request.inputs),
        ),
        pickle.HIGHEST_PROTOCOL,
    )
    return HEADER.pack(len(body)) + body


def decode_copy(body: bytes) -> tuple[str, str, InferenceRequest]:
    """The deployment, arm and request of one frame's body (without its header)."""
    deployment, arm, request_id, protocol, outputs, budget, params, kind, *parts = pickle.loads(  # noqa: S301 (see the module's docstring)
        body
    )
    now = time.monotonic()
    request = InferenceRequest(
        _decode_inputs(kind, parts), outputs, now + budget, request_id, protocol, now, params
    )
    return deployment, arm, request


def _inputs(inputs: RequestInputs) -> tuple[Any, ...]:
    if isinstance(inputs, TableInputs):
        columns = tuple(inputs.columns) if inputs.columns is not None else None
        return ("table", columns, _array(inputs.values))
    if isinstance(inputs, ArrayInputs):
        return ("array", _array(inputs.array))
    return (
        "named",
        [(name, _array(t.array), t.datatype) for name, t in inputs.tensors.items()],
    )


def _decode_inputs(kind: str, parts: list[Any]) -> RequestInputs:
    if kind == "table":
        columns, values = parts
        return TableInputs(columns, _restore(values))
    if kind == "array":
        return ArrayInputs(_restore(parts[0]))
    tensors: Mapping[str, Tensor] = {
        name: Tensor(_restore(array), datatype) for name, array, datatype in parts[0]
    }
    return NamedInputs(tensors)


def _array(array: np.ndarray) -> Any:
    """Numbers as (dtype, shape, bytes); anything else (text, objects) as the array."""
    if array.dtype.kind in _NUMBERS:
        return (array.dtype.str, array.shape, np.ascontiguousarray(array).tobytes())
    return array


def _restore(value: Any) -> np.ndarray:
    if isinstance(value, tuple):
        dtype, shape, data = value
        # a writable copy: binding may convert in place
        return np.frombuffer(data, dtype).reshape(shape).copy()
    restored: np.ndarray = value
    return restored
