"""Open Inference Protocol (KServe V2) REST: decoding inference requests.

``decode_request`` turns a body (JSON, or JSON + binary chunks per Triton's binary tensor
extension) into numpy arrays, and rejects anything malformed with ``InvalidRequestError``
(400) or, for size limits, ``PayloadTooLargeError`` (413); no other exception escapes it.
``v2_response.encode_response`` writes the answers.

Leniencies, each on purpose:

* JSON ``null`` for an optional member (``id``, ``parameters``, ``outputs``, ``data``, a
  parameter) counts as absent, as pydantic-based clients send it.
* ``data`` may be nested or flat; like Triton, only its total element count is checked
  against the shape (nesting may not go deeper than the shape's rank).
* ``"outputs": []`` means all outputs, as in Triton.
* ``parameters.timeout`` of 0 means no timeout, as in Triton.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy.typing as npt
import orjson

from modelport.errors import InvalidArgumentError, InvalidRequestError, PayloadTooLargeError
from modelport.server.http.v2_binary import (
    DATATYPES,
    JsonTensor,
    Where,
    brief,
    check_chunk_size,
    decode_bytes,
    decode_fixed,
    decode_json,
    json_length,
)

# NumPy cannot hold arrays of more dimensions than this.
_NUMPY_MAX_RANK = 64
_REQUEST = Where("", "request")


@dataclass(frozen=True)
class V2Limits:
    """What one inference request may hold; over a limit is a 413 or 400 naming it."""

    max_elements: int = 16 * 1024 * 1024  # total tensor elements in one request
    max_inputs: int = 256
    max_outputs: int = 256
    max_rank: int = 32
    max_bytes_element: int = 64 * 1024 * 1024  # one BYTES element

    def __post_init__(self) -> None:
        for name in ("max_elements", "max_inputs", "max_outputs", "max_rank"):
            if getattr(self, name) < 1:
                raise InvalidArgumentError(f"V2Limits.{name} must be at least 1", field=name)
        if self.max_rank > _NUMPY_MAX_RANK:
            raise InvalidArgumentError(
                f"V2Limits.max_rank cannot exceed numpy's {_NUMPY_MAX_RANK}", field="max_rank"
            )
        if self.max_bytes_element < 0:
            raise InvalidArgumentError(
                "V2Limits.max_bytes_element cannot be negative", field="max_bytes_element"
            )


@dataclass(slots=True)  # not frozen: see serving.target
class DecodedInput:
    """One input tensor of a request.

    ``array`` has ``shape`` and the datatype's native numpy dtype; BYTES arrive as an
    object array of ``bytes`` (binary) or ``str`` (JSON). Arrays are writable copies that
    do not alias the request body.
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    array: npt.NDArray[Any]


@dataclass(slots=True)  # not frozen: see serving.target
class RequestedOutput:
    """An output the request asks for; ``binary`` is its ``parameters.binary_data``."""

    name: str
    binary: bool | None


@dataclass(slots=True)  # not frozen: see serving.target
class V2Request:
    """A decoded inference request.

    ``outputs`` is None when the request wants all outputs. ``timeout_s`` comes from
    ``parameters.timeout``, which tritonclient sends in microseconds. ``parameters`` is the
    request's ``parameters`` object as sent, unknown keys included.
    """

    id: str | None
    inputs: tuple[DecodedInput, ...]
    outputs: tuple[RequestedOutput, ...] | None
    binary_data_output: bool
    timeout_s: float | None
    parameters: Mapping[str, Any]


@dataclass(slots=True)  # not frozen: see serving.target
class _InputHeader:
    """An input's JSON entry, validated but not yet turned into an array."""

    where: Where
    name: str
    datatype: str
    shape: tuple[int, ...]
    count: int
    data: Any  # the JSON ``data``, None when the tensor is binary
    binary_size: int | None


def decode_request(body: bytes, header_length: str | None, limits: V2Limits) -> V2Request:
    """Decode an inference request body.

    ``header_length`` is the ``Inference-Header-Content-Length`` header, None when absent
    (the whole body is JSON). Raises InvalidRequestError or PayloadTooLargeError only.
    """
    view = memoryview(body)
    json_end = json_length(len(body), header_length)
    document = _parse_json(view[:json_end])
    # Everything cheap is checked before any tensor data is touched.
    request_id = _request_id(document.get("id"))
    parameters = _optional_object(document.get("parameters"), _REQUEST, "parameters")
    binary_output = _optional_bool(parameters.get("binary_data_output"), "binary_data_output")
    timeout_s = _timeout_s(parameters.get("timeout"))
    outputs = _requested_outputs(document.get("outputs"), limits)
    headers = _input_headers(document.get("inputs"), limits)
    try:
        inputs = _decode_inputs(headers, view[json_end:], limits)
    except MemoryError as exc:  # within the limits, yet more than this process can hold
        raise PayloadTooLargeError("the request's tensors do not fit in memory") from exc
    return V2Request(
        id=request_id,
        inputs=inputs,
        outputs=outputs,
        binary_data_output=bool(binary_output),
        timeout_s=timeout_s,
        parameters=MappingProxyType(parameters),
    )


def _parse_json(header: memoryview) -> dict[str, Any]:
    try:
        document = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        # orjson stops at nesting depth 1024, so a 250,000-deep array fails fast here.
        document = _parse_with_non_finite_tokens(header, exc)
    if not isinstance(document, dict):
        raise InvalidRequestError("the request's JSON must be an object")
    return document


_NON_FINITE_TOKENS = (b"NaN", b"Infinity")


def _parse_with_non_finite_tokens(header: memoryview, error: orjson.JSONDecodeError) -> Any:
    """tritonclient writes NaN and ±Infinity as bare tokens in JSON (as Python's json
    does); only a body orjson refuses that holds one pays for this second parse."""
    invalid = InvalidRequestError(f"the request's JSON is not valid: {error}")
    raw = bytes(header)
    if not any(token in raw for token in _NON_FINITE_TOKENS):
        raise invalid from error
    try:
        document = json.loads(raw.decode("utf-8"))
        # Anything orjson would refuse besides the tokens (lone surrogates) stays refused.
        orjson.dumps(document)
    except (ValueError, TypeError, RecursionError):
        raise invalid from None
    return document


def _optional_object(value: Any, where: Where, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.error(key, f"{key} must be an object, got {brief(value)}")
    return value


def _optional_bool(value: Any, key: str, where: Where = _REQUEST) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise where.error(f"parameters.{key}", f"{key} must be true or false, got {brief(value)}")
    return value


def _request_id(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidRequestError(f"id must be a string, got {brief(value)}", field="id")
    return value


def _timeout_s(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise _REQUEST.error(
            "parameters.timeout",
            f"timeout must be a non-negative integer (microseconds), got {brief(value)}",
        )
    return value / 1_000_000 if value else None


def _requested_outputs(value: Any, limits: V2Limits) -> tuple[RequestedOutput, ...] | None:
    if value is None or value == []:
        return None
    if not isinstance(value, list):
        raise InvalidRequestError(f"outputs must be a list, got {brief(value)}", field="outputs")
    if len(value) > limits.max_outputs:
        raise InvalidRequestError(
            f"the request asks for {len(value)} outputs, over the limit of "
            f"{limits.max_outputs} (max_outputs)",
            field="outputs",
        )
    outputs = tuple(_requested_output(item, index) for index, item in enumerate(value))
    _reject_duplicates([output.name for output in outputs], "output", "outputs")
    return outputs


def _requested_output(item: Any, index: int) -> RequestedOutput:
    where = Where(f"outputs[{index}]", f"outputs[{index}]")
    if not isinstance(item, dict):
        raise where.error("", "each output must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise where.error("name", f"name must be a non-empty string, got {brief(name)}")
    where = Where(where.path, "output", name)
    parameters = _optional_object(item.get("parameters"), where, "parameters")
    if parameters.get("classification") is not None:
        raise where.error("parameters.classification", "classification outputs are not supported")
    if parameters.get("shared_memory_region") is not None:
        raise where.error("parameters.shared_memory_region", "shared memory is not supported")
    return RequestedOutput(
        name, _optional_bool(parameters.get("binary_data"), "binary_data", where)
    )


def _reject_duplicates(names: Sequence[str], kind: str, field: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidRequestError(f"duplicate {kind} name {brief(name)}", field=field)
        seen.add(name)


def _input_headers(value: Any, limits: V2Limits) -> list[_InputHeader]:
    if not isinstance(value, list) or not value:
        raise InvalidRequestError(
            f"inputs must be a non-empty list, got {brief(value)}", field="inputs"
        )
    if len(value) > limits.max_inputs:
        raise InvalidRequestError(
            f"the request has {len(value)} inputs, over the limit of "
            f"{limits.max_inputs} (max_inputs)",
            field="inputs",
        )
    headers = [_input_header(item, index, limits) for index, item in enumerate(value)]
    _reject_duplicates([header.name for header in headers], "input", "inputs")
    total = sum(header.count for header in headers)
    if total > limits.max_elements:
        raise PayloadTooLargeError(
            f"the request's inputs hold {total} elements, over the limit of "
            f"{limits.max_elements} (max_elements)",
            field="inputs",
        )
    return headers


def _input_header(item: Any, index: int, limits: V2Limits) -> _InputHeader:
    where = Where(f"inputs[{index}]", f"inputs[{index}]")
    if not isinstance(item, dict):
        raise where.error("", "each input must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise where.error("name", f"name must be a non-empty string, got {brief(name)}")
    where = Where(where.path, "input", name)
    datatype = _datatype(item.get("datatype"), where)
    shape = _shape(item.get("shape"), where, limits)
    size = _binary_size(_optional_object(item.get("parameters"), where, "parameters"), where)
    data = item.get("data")
    if (data is None) == (size is None):
        raise where.error(
            "data", "an input needs exactly one of data or parameters.binary_data_size"
        )
    return _InputHeader(where, name, datatype, shape, math.prod(shape), data, size)


def _datatype(value: Any, where: Where) -> str:
    if value == "BF16":
        raise where.error("datatype", "BF16 is not supported")
    if not isinstance(value, str) or value not in DATATYPES:
        known = ", ".join(sorted(DATATYPES))
        raise where.error("datatype", f"datatype {brief(value)} is not one of {known}")
    return value


def _shape(value: Any, where: Where, limits: V2Limits) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise where.error("shape", f"shape must be a list of integers, got {brief(value)}")
    if len(value) > limits.max_rank:
        raise where.error(
            "shape", f"shape has {len(value)} dimensions, over the limit of {limits.max_rank}"
        )
    for dim in value:
        # type() rather than isinstance(): JSON true/false are not dimensions.
        if type(dim) is not int or dim < 0:
            raise where.error(
                "shape", f"shape dimensions must be non-negative integers, got {brief(dim)}"
            )
    # Zero dimensions are left out so that [0, 2**62] cannot reach numpy's size overflow.
    if math.prod(max(dim, 1) for dim in value) > limits.max_elements:
        raise where.too_large(
            "shape",
            f"shape {brief(value, 80)} is over the limit of {limits.max_elements} "
            "elements (max_elements)",
        )
    return tuple(value)


def _binary_size(parameters: dict[str, Any], where: Where) -> int | None:
    if parameters.get("shared_memory_region") is not None:
        raise where.error("parameters.shared_memory_region", "shared memory is not supported")
    size = parameters.get("binary_data_size")
    if size is not None and (type(size) is not int or size < 0):
        raise where.error(
            "parameters.binary_data_size",
            f"binary_data_size must be a non-negative integer, got {brief(size)}",
        )
    return size


def _decode_inputs(
    headers: Sequence[_InputHeader], binary: memoryview, limits: V2Limits
) -> tuple[DecodedInput, ...]:
    _check_framing(headers, len(binary))
    decoded: list[DecodedInput] = []
    offset = 0
    for header in headers:
        if header.binary_size is None:
            array = _array_from_json(header, limits)
        else:
            chunk = binary[offset : offset + header.binary_size]
            offset += header.binary_size
            array = _array_from_chunk(header, chunk, limits)
        decoded.append(DecodedInput(header.name, header.datatype, header.shape, array))
    return tuple(decoded)


def _check_framing(headers: Sequence[_InputHeader], available: int) -> None:
    total = 0
    for header in headers:
        if header.binary_size is not None:
            check_chunk_size(header.binary_size, header.datatype, header.count, header.where)
            total += header.binary_size
    if total != available:
        raise InvalidRequestError(
            f"the inputs' binary_data_size add up to {total} bytes but the body has "
            f"{available} bytes after the JSON header",
            field="parameters.binary_data_size",
        )


def _array_from_chunk(
    header: _InputHeader, chunk: memoryview, limits: V2Limits
) -> npt.NDArray[Any]:
    if header.datatype == "BYTES":
        return decode_bytes(
            chunk, header.shape, header.count, limits.max_bytes_element, header.where
        )
    return decode_fixed(chunk, header.datatype, header.shape, header.where)


def _array_from_json(header: _InputHeader, limits: V2Limits) -> npt.NDArray[Any]:
    if not isinstance(header.data, list):
        raise header.where.error("data", f"data must be a list, got {brief(header.data)}")
    tensor = JsonTensor(header.data, header.datatype, header.shape, header.count)
    return decode_json(tensor, limits.max_bytes_element, header.where)
