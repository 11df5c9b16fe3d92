"""MLflow scoring protocol (``POST /invocations``): request decoding.

``decode_invocation`` turns a JSON or CSV body into numpy arrays and rejects anything
malformed with ``UnsupportedMediaTypeError`` (415, content type), ``InvalidRequestError``
(400, body), ``InvalidParameterError`` (400, ``params`` not an object) or
``PayloadTooLargeError`` (413, element count); no other exception escapes it. Messages
follow MLflow 3's scoring server (``mlflow/pyfunc/scoring_server`` and
``mlflow/utils/proto_json_utils.py``), so that its clients see familiar text: the same
sentences, starting with "Invalid input." where MLflow's do, with our own detail after
"Error:" where MLflow would print a Python exception. Two differences, on purpose: the
body is never echoed back (MLflow appends it to its invalid-JSON message), and MLflow's
paragraph on its 2.0 protocol change, which advises editing an MLflow model's
requirements, is left out.
CSV bodies are read in ``mlflow_csv``; ``mlflow_predictions.encode_predictions`` writes
``{"predictions": ...}``.

Values stay as the client sent them: an array is float64, int64 or bool when every value
is of that kind (int and float together give float64), and otherwise dtype=object holding
the Python values (str, int, float, bool, None). The caller converts them with the model's
signature. Nothing here imports pandas: this is the serving hot path. A JSON table of
plain numbers (the usual batch request) is read by ``numeric_json`` without building a
Python object per value; everything else, and every error, comes from the code here.

Leniencies, each on purpose:

* Keys other than the format key and ``params`` are ignored, as MLflow ignores them;
  ``"params": null`` counts as absent.
* A body orjson refuses is parsed again with Python's ``json`` module, which MLflow uses:
  it accepts the ``NaN`` and ``Infinity`` tokens that ``json.dumps`` (and so MLflow's own
  client) writes for missing and infinite values.
* ``dataframe_split.columns`` may hold integers (what ``DataFrame.to_dict("split")`` gives
  for a frame without column names); they become strings, as JSON object keys do in
  ``dataframe_records``. One-dimensional ``data`` is one column, as in pandas.
* ``inputs`` given as a list of objects is read like ``instances`` (rows of named values);
  ``instances`` given as an object or a scalar is read like ``inputs``.
* CSV: a leading byte-order mark and blank lines are skipped, and a column of
  ``True``/``False`` cells becomes bool, as ``pandas.read_csv`` does.
* Content type: the type is matched case-insensitively, parameter names too, and an
  empty parameter (``application/json;``) is ignored.

Stricter than pandas: table cells must be single values, CSV rows must all have the
header's width, and a CSV with a header but no rows is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from typing import Any, Literal

import numpy as np
import orjson

from modelport.errors import (
    InvalidParameterError,
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from modelport.server.http.mlflow_csv import decode_csv
from modelport.server.http.numeric_json import float_table

CONTENT_TYPE_CSV = "text/csv"
CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPES = (CONTENT_TYPE_CSV, CONTENT_TYPE_JSON)
FORMAT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
REQUIRED_INPUT_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"
)
INVALID_INPUT = "Invalid input."  # MLflow's MlflowInvalidInputException prefix
_JSON_ERROR = f"{INVALID_INPUT} Ensure that input is a valid JSON formatted string"
# What MLflow says when a format key's value cannot become its DataFrame or tensor.
_FORMAT_ERRORS = {
    "dataframe_split": "Provided dataframe_split field is not a valid dataframe "
    "representation in 'split' format",
    "dataframe_records": "Provided dataframe_records field is not a valid dataframe "
    "representation in 'records' format",
    "instances": "",  # MLflow prints numpy's own error after "Invalid input."
    "inputs": "",
}
_SPLIT_KEYS = frozenset({"columns", "data", "index"})
_SCALARS = frozenset({str, int, float, bool, type(None)})
_NUMBERS = frozenset({int, float})
_BOOLS = frozenset({bool})
_NESTED = frozenset({list, dict})


@dataclass(slots=True)  # not frozen: see serving.target
class MlflowTable:
    """Rows of values (``dataframe_split``, ``dataframe_records``, CSV, rows of scalars).

    ``columns`` None means the values are in the model's column order; ``values`` is 2-D,
    rows x columns.
    """

    columns: tuple[str, ...] | None
    values: np.ndarray


@dataclass(slots=True)  # not frozen: see serving.target
class MlflowTensors:
    """Named columns or tensors: ``{"inputs": {name: values}}``, or ``instances`` as rows of
    ``{name: value}`` objects whose values are not all scalars (stacked per name)."""

    tensors: dict[str, np.ndarray]


@dataclass(slots=True)  # not frozen: see serving.target
class MlflowArray:
    """One unnamed tensor: ``{"inputs": [[...]]}`` or ``{"instances": [[...]]}``."""

    array: np.ndarray


MlflowData = MlflowTable | MlflowTensors | MlflowArray


@dataclass(slots=True)  # not frozen: see serving.target
class MlflowRequest:
    """A decoded ``/invocations`` body: the data and the optional ``params`` object."""

    data: MlflowData
    params: dict[str, Any] | None


# ---------------------------------------------------------------------- content type


def content_kind(content_type: str | None) -> Literal["json", "csv"]:
    """Which parser reads a body of this Content-Type; 415 for anything MLflow refuses."""
    if content_type == CONTENT_TYPE_JSON:  # the usual case, without the parsing below
        return "json"
    mime, *rest = (part.strip() for part in (content_type or "").split(";"))
    parameters = {}
    for part in filter(None, rest):
        name, _, value = part.partition("=")
        parameters[name.strip().lower()] = value.strip().strip('"')
    if parameters.pop("charset", "utf-8").lower() != "utf-8":
        raise UnsupportedMediaTypeError("The scoring server only supports UTF-8")
    if parameters:
        raise UnsupportedMediaTypeError(
            f"Unrecognized content type parameters: {', '.join(sorted(parameters))}."
        )
    mime = mime.lower()
    if mime == CONTENT_TYPE_JSON:
        return "json"
    if mime == CONTENT_TYPE_CSV:
        return "csv"
    raise UnsupportedMediaTypeError(
        "This predictor only supports the following content types: "
        f"Types: {list(CONTENT_TYPES)}. Got '{content_type}'."
    )


# --------------------------------------------------------------------------- decoding


def decode_invocation(body: bytes, content_type: str | None, *, max_elements: int) -> MlflowRequest:
    """Decode an ``/invocations`` body sent with ``content_type``.

    Raises ``UnsupportedMediaTypeError``, ``InvalidRequestError`` or, when the data holds
    more than ``max_elements`` values, ``PayloadTooLargeError``.
    """
    if content_kind(content_type) == "csv":
        header, values = decode_csv(body, max_elements)
        return MlflowRequest(MlflowTable(header, values), None)
    table = float_table(body)
    if table is not None:  # the common case, decoded without Python objects per value
        data: MlflowData = (
            MlflowTable(table.columns, table.values)
            if table.key == "dataframe_split"
            else MlflowArray(table.values)
        )
        _check_size(data, max_elements)
        return MlflowRequest(data, None)
    document = _load_json(body)
    if not isinstance(document, dict):
        received = (
            "a list"
            if isinstance(document, list)
            else f"unexpected input type '{type(document).__name__}'"
        )
        raise InvalidRequestError(f"{INVALID_INPUT} {REQUIRED_INPUT_FORMAT}. Received {received}.")
    keys = [key for key in FORMAT_KEYS if key in document]
    if len(keys) != 1:
        shown = list(document)[:20]
        raise InvalidRequestError(
            f"{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: {shown}."
        )
    data = _decode_format(keys[0], document[keys[0]])
    _check_size(data, max_elements)
    return MlflowRequest(data, _params(document.get("params")))


def _load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        first = error
    # MLflow parses with Python's json module, which also reads NaN/Infinity tokens; only a
    # body orjson refuses pays for this second parse.
    try:
        document = json.loads(body.decode("utf-8"))
        orjson.dumps(document)  # refuses lone surrogates, which no JSON reply could carry
    except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise InvalidRequestError(f"{_JSON_ERROR}. Error: '{first}'") from None
    return document


def _params(params: Any) -> dict[str, Any] | None:
    if params is None or isinstance(params, dict):
        return params
    # MLflow's _enforce_params_schema (INVALID_PARAMETER_VALUE). MLflow only warns when the
    # model declares no params; a malformed body is refused here whatever the model.
    raise InvalidParameterError(
        f"Parameters must be a dictionary. Got type '{type(params).__name__}'.", field="params"
    )


def _decode_format(key: str, value: Any) -> MlflowData:
    if key == "dataframe_split":
        return _split_table(value)
    if key == "dataframe_records":
        if not isinstance(value, list):
            got = "dictionary" if isinstance(value, dict) else f"type '{type(value).__name__}'"
            raise InvalidRequestError(
                f"{INVALID_INPUT} Dataframe records format must be a list of records. Got {got}."
            )
        return _records(value, key, tensors=False)
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return _records(value, key, tensors=True)
    if isinstance(value, dict):
        return MlflowTensors(
            {name: _typed_array(v, f"{key}[{name!r}]") for name, v in value.items()}
        )
    return MlflowArray(_typed_array(value, key))


def _split_table(split: Any) -> MlflowTable:
    if not isinstance(split, dict):
        got = "list" if isinstance(split, list) else f"type '{type(split).__name__}'"
        raise InvalidRequestError(
            f"{INVALID_INPUT} Dataframe split format must be a dictionary. Got {got}."
        )
    if "data" not in split or not split.keys() <= _SPLIT_KEYS:
        raise InvalidRequestError(
            f"{INVALID_INPUT} Dataframe split format must have 'data' field and optionally "
            f"'columns' and 'index' fields. Got {sorted(split)[:20]}."
        )
    columns = _column_names(split.get("columns"))
    values = _typed_array(split["data"], "dataframe_split.data")
    if values.ndim == 1:  # pandas reads flat data as one column
        values = values.reshape(-1, 1) if values.size else values.reshape(0, len(columns or ()))
    if values.ndim != 2:
        raise _invalid(
            "dataframe_split",
            "'data' must be a list of rows of single values; "
            f"got an array of shape {list(values.shape)}",
        )
    if columns is not None and len(columns) != values.shape[1]:
        raise _invalid(
            "dataframe_split",
            f"{len(columns)} columns passed, passed data had {values.shape[1]} columns",
        )
    index = split.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != values.shape[0]):
        size = len(index) if isinstance(index, list) else _json_type(index)
        raise _invalid(
            "dataframe_split",
            f"the index ({size}) does not match the {values.shape[0]} rows of data",
        )
    return MlflowTable(columns, values)


def _column_names(columns: Any) -> tuple[str, ...] | None:
    if columns is None:
        return None
    kinds = set(map(type, columns)) if isinstance(columns, list) else {dict}
    if not kinds <= {str, int}:
        raise _invalid("dataframe_split", "'columns' must be a list of column names (strings)")
    return tuple(columns) if kinds == {str} else tuple(map(str, columns))


def _records(records: list[Any], where: str, *, tensors: bool) -> MlflowTable | MlflowTensors:
    """Rows of ``{name: value}`` objects: a table (a missing key is None), or, when
    ``tensors`` and some value is a list or an object, one stacked tensor per name."""
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise _invalid(
                where,
                f"{where} must be a list of JSON objects (records); element {i} is "
                f"{_json_type(record)}",
            )
    names = list(dict.fromkeys(chain.from_iterable(records)))
    rows = [[record.get(name) for name in names] for record in records]
    if tensors and not _NESTED.isdisjoint(map(type, chain.from_iterable(rows))):
        return MlflowTensors({name: _stacked(records, name, where) for name in names})
    values = _typed_array(rows, where) if rows else np.empty((0, 0))
    if values.ndim != 2:
        raise _invalid(
            where,
            f"{where} must hold single values (or null), not lists: got an array of shape "
            f"{list(values.shape)}",
        )
    return MlflowTable(tuple(names), values)


def _stacked(records: list[dict[str, Any]], name: str, where: str) -> np.ndarray:
    missing = next((i for i, record in enumerate(records) if name not in record), None)
    if missing is not None:
        raise _invalid(
            where,
            "The length of values for each input/column name are not the same: "
            f"{where}[{missing}] has no {name!r}",
        )
    return _typed_array([record[name] for record in records], f"{where}[*][{name!r}]")


def _check_size(data: MlflowData, max_elements: int) -> None:
    if isinstance(data, MlflowTable):
        count = data.values.size
    elif isinstance(data, MlflowArray):
        count = data.array.size
    else:
        count = sum(array.size for array in data.tensors.values())
    if count > max_elements:
        raise PayloadTooLargeError(f"the request holds {count} values; the limit is {max_elements}")


# ---------------------------------------------------------------------------- arrays


def _typed_array(value: Any, where: str) -> np.ndarray:
    """``value`` as an array of the narrowest kind that holds every value exactly.

    Flat and 2-D lists of plain numbers or bools (the common case) go straight to numpy;
    anything else is built as an object array first, so that text can never become a
    fixed-width unicode array sized by its longest string.
    """
    kinds = _shallow_types(value)
    if kinds and (kinds <= _NUMBERS or kinds == _BOOLS):
        array = _numpy_array(value, where, None)
        expected = np.bool_ if kinds == _BOOLS else np.float64 if float in kinds else np.int64
        if array.dtype == expected:
            return array
        # integers beyond int64 came out as uint64, float or object: take the exact path
    array = _numpy_array(value, where, object)
    kinds = set(map(type, array.ravel().tolist()))
    if not kinds <= _SCALARS:  # lists numpy could not fit into the shape, or objects
        raise _ragged(where)
    return _narrowed(array, kinds)


def _shallow_types(value: Any) -> set[type] | None:
    """The types of a list's items, looking one level into a list of lists."""
    if not isinstance(value, list):
        return None
    outer = set(map(type, value))
    return set(map(type, chain.from_iterable(value))) if outer == {list} else outer


def _numpy_array(value: Any, where: str, dtype: type | None) -> np.ndarray:
    try:
        return np.array(value, dtype=dtype)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise _ragged(where) from None


def _ragged(where: str) -> InvalidRequestError:
    return _invalid(
        where,
        f"{where} is not a rectangular array of single values: its lists have different "
        "lengths, nest more than 64 deep, or mix lists with values or JSON objects",
    )


def _invalid(where: str, detail: str) -> InvalidRequestError:
    """MLflow's message for a format key's value it cannot read, with our ``detail``;
    ``where`` starts with the key (``dataframe_split.data``, ``inputs['x']``)."""
    what = _FORMAT_ERRORS[next(k for k in FORMAT_KEYS if where.startswith(k))]
    if not what:
        return InvalidRequestError(f"{INVALID_INPUT} {detail}")
    return InvalidRequestError(f"{INVALID_INPUT} {what}. Error: '{detail}'")


def _narrowed(array: np.ndarray, kinds: set[type]) -> np.ndarray:
    if kinds == _BOOLS:
        return array.astype(np.bool_)
    if kinds == {int}:
        try:
            return array.astype(np.int64)
        except OverflowError:
            return array  # beyond int64: the Python ints stay exact
    if kinds <= _NUMBERS:  # also an empty array, which numpy makes float64 too
        return array.astype(np.float64)
    return array


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), "null" if value is None else "a number")
