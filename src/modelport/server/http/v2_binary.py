"""V2 tensor payloads: the datatype table, JSON ``data`` and binary chunks, both ways.

``v2_codec`` handles the request and response documents; this module turns each tensor
into a numpy array and back. Most of it serves Triton's binary tensor extension, hence
the name. A binary body is the JSON header followed by one chunk per binary tensor, in
the order the tensors appear in the JSON; ``Inference-Header-Content-Length`` gives the
JSON's length. Chunks are little-endian, row-major, without padding; a BOOL is one byte,
0 or 1; a BYTES element is a 4-byte little-endian unsigned length and then its bytes
(protocols.md §2.9).
"""

from __future__ import annotations

import math
import reprlib
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import chain
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from modelport.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedOperationError,
)

HEADER = "Inference-Header-Content-Length"

# Wire dtypes of the fixed-size V2 datatypes: explicitly little-endian, as the extension says.
WIRE_DTYPES: MappingProxyType[str, np.dtype[Any]] = MappingProxyType(
    {
        "BOOL": np.dtype("?"),
        "UINT8": np.dtype("u1"),
        "UINT16": np.dtype("<u2"),
        "UINT32": np.dtype("<u4"),
        "UINT64": np.dtype("<u8"),
        "INT8": np.dtype("i1"),
        "INT16": np.dtype("<i2"),
        "INT32": np.dtype("<i4"),
        "INT64": np.dtype("<i8"),
        "FP16": np.dtype("<f2"),
        "FP32": np.dtype("<f4"),
        "FP64": np.dtype("<f8"),
    }
)
# Native-order twins of WIRE_DTYPES: what decoded arrays use and what outputs are cast to.
NATIVE_DTYPES: MappingProxyType[str, np.dtype[Any]] = MappingProxyType(
    {name: dtype.newbyteorder("=") for name, dtype in WIRE_DTYPES.items()}
)
DATATYPES = frozenset({*WIRE_DTYPES, "BYTES"})

# Triton's out-of-range test sends 99999999999; anything this big is not a real header.
_MAX_HEADER_LENGTH = 2**31 - 1
_PREFIX = struct.Struct("<I")


_UNNAMED = object()


@dataclass(slots=True)  # not frozen: see serving.target
class Where:
    """Where in a request a problem is: the JSON path and how messages name the spot.

    The client's name for the spot (an input's ``name``) is kept as sent and shortened
    into the message's label only when there is a message: ``brief`` costs about a
    microsecond, and every input of every request has a ``Where``."""

    path: str  # e.g. "inputs[0]" ("" for the request); errors carry path.key as ``field``
    noun: str  # e.g. "input", or the whole label ("inputs[0]", "request")
    name: object = _UNNAMED  # e.g. "x": the label is then "input 'x'"

    @property
    def label(self) -> str:
        """How messages name the spot; they start with it."""
        if self.name is _UNNAMED:
            return self.noun
        return f"{self.noun} {brief(self.name)}"

    def error(self, key: str, problem: str) -> InvalidRequestError:
        """An InvalidRequestError for ``key`` under this spot."""
        return InvalidRequestError(f"{self.label}: {problem}", field=self._field(key))

    def too_large(self, key: str, problem: str) -> PayloadTooLargeError:
        """A PayloadTooLargeError for ``key`` under this spot."""
        return PayloadTooLargeError(f"{self.label}: {problem}", field=self._field(key))

    def _field(self, key: str) -> str:
        return ".".join(part for part in (self.path, key) if part)


def brief(value: object, limit: int = 40) -> str:
    """A short repr of client data for messages, cut to ``limit`` characters.

    reprlib looks at only a few levels and items: a plain ``repr`` of a 1000-deep list
    raises RecursionError, and of a huge one costs its whole size.
    """
    shortener = reprlib.Repr()
    shortener.maxlevel = 3
    shortener.maxstring = shortener.maxother = limit
    text = shortener.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_length(body_length: int, header_length: str | None) -> int:
    """How many leading bytes of the body are the JSON header.

    ``header_length`` is the ``Inference-Header-Content-Length`` value, None when the
    header is absent (the whole body is JSON).
    """
    if header_length is None:
        return body_length
    text = header_length.strip(" \t")
    if not (text.isascii() and text.isdigit()):
        raise InvalidRequestError(
            f"{HEADER} must be a decimal integer, got {brief(header_length)}", field=HEADER
        )
    # Count digits before int() so that a megabyte of digits costs nothing.
    if len(text.lstrip("0")) > 10 or int(text) > _MAX_HEADER_LENGTH:
        raise InvalidRequestError(f"{HEADER} {brief(text)} is out of range", field=HEADER)
    length = int(text)
    if length == 0:
        raise InvalidRequestError(
            f"raw binary requests ({HEADER}: 0) are not supported; send a JSON header",
            field=HEADER,
        )
    if length > body_length:
        raise InvalidRequestError(
            f"{HEADER} is {length} but the body has only {body_length} bytes", field=HEADER
        )
    return length


def check_chunk_size(size: int, datatype: str, count: int, where: Where) -> None:
    """Reject a ``binary_data_size`` that cannot hold ``count`` elements of ``datatype``."""
    key = "parameters.binary_data_size"
    if datatype == "BYTES":
        # Every element has a 4-byte length prefix, so this bounds the work of decoding.
        if size < 4 * count:
            raise where.error(
                key, f"binary_data_size {size} is too small for {count} BYTES elements"
            )
        return
    needed = count * WIRE_DTYPES[datatype].itemsize
    if size != needed:
        raise where.error(
            key,
            f"binary_data_size is {size} bytes but {count} {datatype} elements take {needed}",
        )


def decode_fixed(
    chunk: memoryview, datatype: str, shape: tuple[int, ...], where: Where
) -> npt.NDArray[Any]:
    """The array in a fixed-size chunk (its size already checked by ``check_chunk_size``).

    The result is a native-order copy: it is writable (torch warns on read-only arrays)
    and does not keep the request body alive.
    """
    flat = np.frombuffer(chunk, dtype=WIRE_DTYPES[datatype])
    if datatype == "BOOL" and flat.size and int(flat.view(np.uint8).max()) > 1:
        raise where.error("data", "BOOL bytes must be 0 or 1")
    return flat.astype(NATIVE_DTYPES[datatype]).reshape(shape)


def decode_bytes(
    chunk: memoryview, shape: tuple[int, ...], count: int, max_element: int, where: Where
) -> npt.NDArray[Any]:
    """The object array of ``bytes`` in a BYTES chunk, which must hold exactly ``count``."""
    array = np.empty(count, dtype=object)
    end = len(chunk)
    offset = 0
    for index in range(count):
        if offset + 4 > end:
            raise where.error("data", f"BYTES chunk ends inside the length of element {index}")
        (length,) = _PREFIX.unpack_from(chunk, offset)
        offset += 4
        if offset + length > end:
            raise where.error("data", f"BYTES element {index} runs past the end of its chunk")
        if length > max_element:
            raise where.too_large(
                "data",
                f"BYTES element {index} has {length} bytes, over the limit of "
                f"{max_element} (max_bytes_element)",
            )
        array[index] = bytes(chunk[offset : offset + length])
        offset += length
    if offset != end:
        raise where.error(
            "data", f"BYTES chunk has {end - offset} bytes left after its {count} elements"
        )
    return array.reshape(shape)


# The JSON types each datatype accepts in ``data``, and how messages describe them.
_NUMBERS = frozenset({int, float})
_JSON_KINDS: Mapping[str, tuple[frozenset[type], str]] = MappingProxyType(
    {
        "BOOL": (frozenset({bool}), "true or false"),
        "BYTES": (frozenset({str}), "strings"),
        "FP32": (_NUMBERS, "numbers"),
        "FP64": (_NUMBERS, "numbers"),
    }
)
_INTEGERS = (frozenset({int}), "integers")


@dataclass(slots=True)  # not frozen: see serving.target
class JsonTensor:
    """An input's JSON ``data`` with its declared datatype and shape."""

    data: list[Any]
    datatype: str
    shape: tuple[int, ...]
    count: int  # product of shape


def decode_json(tensor: JsonTensor, max_element: int, where: Where) -> npt.NDArray[Any]:
    """The array in JSON ``data``, nested or flat (only the element count must match)."""
    datatype = tensor.datatype
    if datatype == "FP16":
        raise where.error("data", "FP16 cannot be sent as JSON; send FP16 as binary")
    leaves, kinds = _flatten(tensor.data, max(len(tensor.shape), 1), where)
    if len(leaves) != tensor.count:
        raise where.error(
            "data",
            f"data has {len(leaves)} elements but shape {list(tensor.shape)} needs {tensor.count}",
        )
    _check_kinds(leaves, kinds, datatype, where)
    if datatype == "BYTES":
        return _strings(leaves, max_element, where).reshape(tensor.shape)
    try:
        # Python ints out of range raise OverflowError; floats too big for FP32 would
        # otherwise become inf with only a warning.
        with np.errstate(over="raise"):
            array = np.array(leaves, dtype=NATIVE_DTYPES[datatype])
    except (OverflowError, FloatingPointError) as exc:
        raise where.error("data", f"data holds a value out of range for {datatype}") from exc
    return array.reshape(tensor.shape)


def _flatten(data: list[Any], depth: int, where: Where) -> tuple[list[Any], set[type]]:
    """The leaves of nested lists in row-major order, and the set of their types.

    Iterative and bounded by ``depth`` (the shape's rank), so adversarial nesting costs
    no recursion and at most ``depth`` passes over the data.
    """
    items = data
    for _ in range(depth):
        kinds = set(map(type, items))
        if list not in kinds:
            return items, kinds
        if kinds == {list}:
            items = list(chain.from_iterable(items))
        else:  # lists mixed with scalars: rare, so the slower loop is fine
            items = [leaf for item in items for leaf in (item if type(item) is list else (item,))]
    raise where.error("data", f"data is nested deeper than the shape's {depth} dimensions")


def _check_kinds(leaves: list[Any], kinds: set[type], datatype: str, where: Where) -> None:
    # type() rather than isinstance(): JSON true/false are bools, which Python calls ints.
    allowed, described = _JSON_KINDS.get(datatype, _INTEGERS)
    if kinds <= allowed:
        return
    wrong = next(leaf for leaf in leaves if type(leaf) not in allowed)
    raise where.error("data", f"{datatype} data must be {described}, got {brief(wrong)}")


def _strings(leaves: list[str], max_element: int, where: Where) -> npt.NDArray[Any]:
    for index, text in enumerate(leaves):
        # A character takes at most 4 UTF-8 bytes: only long strings need encoding to measure.
        if 4 * len(text) > max_element:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > max_element:
                raise where.too_large(
                    "data",
                    f"BYTES element {index} has {size} bytes, over the limit of "
                    f"{max_element} (max_bytes_element)",
                )
    array = np.empty(len(leaves), dtype=object)
    array[:] = leaves
    return array


_DATATYPE_OF_KIND: Mapping[tuple[str, int], str] = MappingProxyType(
    {(dtype.kind, dtype.itemsize): name for name, dtype in WIRE_DTYPES.items()}
)


def datatype_of_dtype(dtype: np.dtype[Any]) -> str:
    """The V2 datatype of a numpy dtype (any byte order); object, str and bytes are BYTES."""
    if dtype.kind in "OUS":
        return "BYTES"
    datatype = _DATATYPE_OF_KIND.get((dtype.kind, dtype.itemsize))
    if datatype is None:
        raise UnsupportedOperationError(f"numpy dtype {dtype} has no V2 datatype")
    return datatype


def encode_output(
    name: str, datatype: str, array: npt.NDArray[Any], binary: bool
) -> tuple[dict[str, Any], bytes | None]:
    """An output's JSON entry, and its binary chunk when it is sent binary.

    JSON ``data`` is the flattened array, left as numpy for orjson to write
    (OPT_SERIALIZE_NUMPY). NaN and ±Infinity, which JSON lacks, are written as the bare
    tokens ``NaN``, ``Infinity`` and ``-Infinity``, as Triton and Python's json do, so
    that tritonclient reads them back; strict JSON parsers refuse those, so ask for
    binary outputs when a model can answer them. BYTES elements that are not valid UTF-8
    cannot be JSON strings, so such an output goes binary even when JSON was asked for.
    """
    array = np.asarray(array)
    entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if datatype == "BYTES":
        elements = [_as_bytes(item) for item in array.reshape(-1).tolist()]
        texts = None if binary else _utf8_texts(elements)
        if texts is not None:
            entry["data"] = texts
            return entry, None
        chunk = length_prefixed(elements)
    else:
        native = _cast_output(name, array, datatype)
        if not binary:
            flat = np.ascontiguousarray(native).reshape(-1)
            is_float = flat.dtype.kind == "f"
            entry["data"] = _with_tokens(flat) if is_float and not np.isfinite(flat).all() else flat
            return entry, None
        chunk = np.ascontiguousarray(native, dtype=WIRE_DTYPES[datatype]).tobytes()
    entry["parameters"] = {"binary_data_size": len(chunk)}
    return entry, chunk


def _with_tokens(flat: npt.NDArray[Any]) -> orjson.Fragment:
    """The JSON array of ``flat`` with NaN/Infinity/-Infinity tokens (the rare path)."""
    # orjson writes each number as it would (shortest form for the dtype), non-finite ones
    # as null; those are then replaced one by one.
    written = orjson.dumps(flat, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    texts = [
        text if math.isfinite(value) else _token(value)
        for text, value in zip(written, flat.tolist(), strict=True)
    ]
    return orjson.Fragment(b"[" + b",".join(texts) + b"]")


def _token(value: float) -> bytes:
    if math.isnan(value):
        return b"NaN"
    return b"Infinity" if value > 0 else b"-Infinity"


def _cast_output(name: str, array: npt.NDArray[Any], datatype: str) -> npt.NDArray[Any]:
    target = NATIVE_DTYPES.get(datatype)
    if target is None:
        raise UnsupportedOperationError(f"output {name!r}: datatype {datatype!r} cannot be sent")
    if array.dtype == target:
        return array
    if not np.can_cast(array.dtype, target, casting="same_kind"):
        raise UnsupportedOperationError(
            f"output {name!r}: a {array.dtype} array cannot be sent as {datatype}"
        )
    with np.errstate(over="ignore"):  # FP64 beyond FP32's range becomes inf, as numpy does
        return array.astype(target)


def _as_bytes(item: object) -> bytes:
    if isinstance(item, bytes | bytearray):
        return bytes(item)
    text = item if isinstance(item, str) else str(item)
    # surrogatepass: lone surrogates become (invalid UTF-8) bytes instead of an error.
    return text.encode("utf-8", "surrogatepass")


def _utf8_texts(elements: list[bytes]) -> list[str] | None:
    try:
        return [element.decode("utf-8") for element in elements]
    except UnicodeDecodeError:
        return None


def length_prefixed(elements: Iterable[bytes]) -> bytes:
    """BYTES elements as a chunk: each one's 4-byte little-endian length, then its bytes."""
    parts: list[bytes] = []
    for element in elements:
        parts.append(_PREFIX.pack(len(element)))
        parts.append(element)
    return b"".join(parts)
