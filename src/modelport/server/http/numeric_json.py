"""The fast path for the most common scoring body: a table of plain JSON numbers.

The general decoder (``mlflow_codec``) parses with orjson into Python lists, checks the
type of every value and lets numpy copy them into an array. For the 64 x 20 table of a
typical batch request that takes ~100 us and makes ~1,400 short-lived Python objects,
and the churn also pushes the model's own data out of the CPU caches, so the model call
that follows runs slower. simdjson (pysimdjson) parses into its own tape and copies the
numbers straight into a float64 buffer: ~40 us and no object per value. Measured with
the benchmark's forest and 64-row requests: in a bare server loop, 700 -> 580 us of CPU
per request (~40 us of it the model call itself, running faster); in modelport's server
with two workers, 5-10% more requests per second.

``float_table`` answers only when its answer is certain to be the general path's, and
returns None otherwise; the caller then takes the general path, which also writes every
error message. It answers when:

* the document is exactly ``{"dataframe_split": {...}}`` (keys ``data`` and optionally
  ``columns`` as a list of strings and ``index`` as a list), or ``{"instances": [[...]]}``
  or ``{"inputs": [[...]]}``;
* the body has no backslash, so no string needs unescaping;
* ``data`` is a non-empty list of rows of the same non-zero length, and every value is
  a JSON number (simdjson refuses true, false, null and strings);
* the body holds exactly as many ``[`` as those lists need: simdjson flattens nested
  lists, and a row nesting a list must not pass for a row of numbers;
* at least one value is not a whole number. The general path keeps an all-integer table
  as int64 (or exact Python ints beyond int64), so such tables go there.

A body of a few rows (up to ``SMALL_BODY_BYTES``) is read with orjson instead: simdjson's
proxies cost more than the Python objects of a few dozen numbers (1 row of 20 values:
~4 us against ~10 us). The same shapes are accepted, with the general path's own types:
one value at least must be a JSON float (ints alone stay int64 on the general path),
and no value may be a string, ``true``, ``false`` or ``null``, which numpy would turn
into numbers: bodies holding those words anywhere go to the general path, and strings
are counted by their quote characters.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import orjson
import simdjson

SPLIT = "dataframe_split"
ROW_KEYS = ("instances", "inputs")
_SPLIT_KEYS = frozenset({"columns", "data", "index"})
SMALL_BODY_BYTES = 3072  # where simdjson starts to beat orjson on the benchmark's rows
_local = threading.local()


class _NotSimpleError(Exception):
    """The body is not the simple case: the general path decodes it."""


# Everything simdjson raises when a document is not the simple case it reads here.
_REFUSALS = (_NotSimpleError, ValueError, TypeError, RuntimeError, KeyError, IndexError)


@dataclass(slots=True)  # not frozen: see serving.target
class FloatTable:
    """A body's table: ``key`` is its format key; ``columns`` is None when not named."""

    key: str
    columns: tuple[str, ...] | None
    values: np.ndarray  # float64, rows x columns


def float_table(body: bytes) -> FloatTable | None:
    """The body's table of numbers when it is the simple case described above, else None."""
    if b"\\" in body:
        return None
    if len(body) <= SMALL_BODY_BYTES:
        return _small_table(body)
    try:
        document = _parser().parse(body)
    except _REFUSALS:
        return None
    try:
        return _table(document, body)
    except _REFUSALS:
        return None
    finally:
        # simdjson reuses the parser only once every proxy into its last document is gone.
        del document


def _small_table(body: bytes) -> FloatTable | None:
    if b"true" in body or b"false" in body or b"null" in body:
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict or len(document) != 1:
        return None
    ((key, value),) = document.items()
    if key in ROW_KEYS:
        values = _small_rows(value, body, strings=1)
        return None if values is None else FloatTable(key, None, values)
    if key != SPLIT or type(value) is not dict or not _SPLIT_KEYS.issuperset(value):
        return None
    return _small_split(value, body)


def _small_split(split: dict[str, Any], body: bytes) -> FloatTable | None:
    columns = split.get("columns")
    index = split.get("index", ())
    if type(index) is not list and index != ():
        return None
    if columns is not None and (
        type(columns) is not list or not all(type(name) is str for name in columns)
    ):
        return None
    strings = 1 + len(split) + len(columns or ()) + sum(type(i) is str for i in index)
    values = _small_rows(split.get("data"), body, strings=strings)
    if values is None or (index != () and len(index) != values.shape[0]):
        return None
    if columns is not None and len(columns) != values.shape[1]:
        return None
    return FloatTable(SPLIT, None if columns is None else tuple(columns), values)


def _small_rows(data: Any, body: bytes, *, strings: int) -> np.ndarray | None:
    """``data`` as a float64 matrix, when ``body`` holds no string but the ``strings``
    counted elsewhere (keys, column names, index labels; with no backslash, every string
    is two quote characters), so no value of ``data`` is a string, and one value at
    least is a JSON float (all integers stay int64 on the general path)."""
    if type(data) is not list or not data or not all(type(row) is list for row in data):
        return None
    if body.count(b'"') != 2 * strings:
        return None
    if not any(type(value) is float for row in data for value in row):
        return None
    try:
        values = np.array(data, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):  # ragged, nested, or out of range
        return None
    if values.ndim != 2 or values.shape[1] == 0:
        return None
    return values


def _parser() -> Any:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


def _table(document: Any, body: bytes) -> FloatTable:
    keys = _keys(document)
    if len(keys) != 1:
        raise _NotSimpleError
    key = keys[0]
    if key == SPLIT:
        return _split(document[key], body)
    if key in ROW_KEYS:
        return FloatTable(key, None, _rows(document[key], body, other_lists=0))
    raise _NotSimpleError


def _keys(value: Any) -> list[str]:
    """The keys of a JSON object that has no key twice."""
    if not isinstance(value, simdjson.Object):
        raise _NotSimpleError
    keys = list(value.keys())
    if len(set(keys)) != len(keys):
        raise _NotSimpleError
    return keys


def _split(split: Any, body: bytes) -> FloatTable:
    keys = _keys(split)
    if "data" not in keys or not _SPLIT_KEYS.issuperset(keys):
        raise _NotSimpleError
    columns = _names(split["columns"]) if "columns" in keys else None
    index = split["index"] if "index" in keys else None
    if index is not None and not isinstance(index, simdjson.Array):
        raise _NotSimpleError
    other_lists = (columns is not None) + (index is not None)
    values = _rows(split["data"], body, other_lists=other_lists)
    if columns is not None and len(columns) != values.shape[1]:
        raise _NotSimpleError
    if index is not None and len(index) != values.shape[0]:
        raise _NotSimpleError
    return FloatTable(SPLIT, columns, values)


def _names(columns: Any) -> tuple[str, ...] | None:
    if columns is None:
        return None
    if not isinstance(columns, simdjson.Array):
        raise _NotSimpleError
    names = tuple(columns.as_list())
    if not all(type(name) is str for name in names):
        raise _NotSimpleError
    return cast(tuple[str, ...], names)


def _rows(data: Any, body: bytes, *, other_lists: int) -> np.ndarray:
    """``data`` as a float64 matrix when it is a list of equally long rows of numbers."""
    if not isinstance(data, simdjson.Array) or len(data) == 0:
        raise _NotSimpleError
    rows = len(data)
    width = len(data[0]) if isinstance(data[0], simdjson.Array) else 0
    if width == 0 or not all(type(row) is simdjson.Array and len(row) == width for row in data):
        raise _NotSimpleError
    # data, its rows and the other lists account for every '[': no row nests a list.
    if body.count(b"[") != 1 + rows + other_lists:
        raise _NotSimpleError
    values = np.frombuffer(data.as_buffer(of_type="d"), dtype=np.float64)
    if values.size != rows * width or bool(np.all(values == np.trunc(values))):
        raise _NotSimpleError
    return values.reshape(rows, width)
