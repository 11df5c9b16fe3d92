"""The MLflow scoring-protocol codec: MLflow's own conformance assertions
(tests/pyfunc/test_scoring_server.py), ported to the codec, plus our dtype, CSV, limit and
encoding rules, and a fuzz that only the three request errors ever escape."""

import json
import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelport.errors import (
    InvalidParameterError,
    InvalidRequestError,
    ModelExecutionError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from modelport.server.http.mlflow_codec import (
    MlflowArray,
    MlflowRequest,
    MlflowTable,
    MlflowTensors,
    content_kind,
    decode_invocation,
)
from modelport.server.http.mlflow_predictions import encode_predictions

JSON = "application/json"
CSV = "text/csv"
LIMIT = 1_000_000
REQUIRED = "The input must be a JSON dictionary with exactly one of the input fields"
# MLflow 3's REQUIRED_INPUT_FORMAT prints a Python set; ours lists its items in a fixed order.
FULL = f"{REQUIRED} {{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}}"
IRIS = [[5.1, 3.5], [4.9, 3.0], [4.7, 3.2], [4.6, 3.1]]


def decode(body: Any, content_type: str | None = JSON, limit: int = LIMIT) -> MlflowRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decode_invocation(raw, content_type, max_elements=limit)


def table(body: Any, content_type: str = JSON) -> MlflowTable:
    data = decode(body, content_type).data
    assert isinstance(data, MlflowTable)
    return data


def kinds(value: Any) -> Any:
    """The Python type names of a nested list's leaves, in the same nesting."""
    if isinstance(value, list):
        return [kinds(item) for item in value]
    return type(value).__name__


# ------------------------------------------------------- MLflow's conformance assertions


def test_malformed_json_is_a_bad_request_in_mlflow_3s_words() -> None:
    for body in (b"this is,,,, not valid json", b'{"inputs": [1, \xff]}'):
        with pytest.raises(InvalidRequestError) as caught:
            decode(body)
        assert caught.value.message.startswith(
            "Invalid input. Ensure that input is a valid JSON formatted string. Error: '"
        )
        assert "this is" not in caught.value.message  # the body is not echoed back


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1], f"Invalid input. {FULL}. Received a list."),
        (1, f"Invalid input. {FULL}. Received unexpected input type 'int'."),
        ("1", f"Invalid input. {FULL}. Received unexpected input type 'str'."),
        ({"not": "a df"}, f"{FULL}. Received dictionary with input fields: ['not']."),
        (
            {"dataframe_split": [[1]]},
            "Invalid input. Dataframe split format must be a dictionary. Got list.",
        ),
        (
            {"dataframe_split": {"columns": []}},
            "Invalid input. Dataframe split format must have 'data' field and optionally "
            "'columns' and 'index' fields. Got ['columns'].",
        ),
        (
            {"dataframe_records": {"a": 1}},
            "Invalid input. Dataframe records format must be a list of records. Got dictionary.",
        ),
        (
            {"dataframe_records": "x"},
            "Invalid input. Dataframe records format must be a list of records. Got type 'str'.",
        ),
        (
            {"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}},
            "Invalid input. Provided dataframe_split field is not a valid dataframe "
            "representation in 'split' format. Error: '1 columns passed, passed data had 2 "
            "columns'",
        ),
    ],
)
def test_body_errors_read_as_mlflow_3s(body: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode(body)
    assert caught.value.message == message


@pytest.mark.parametrize(
    "body",
    [
        1,
        "1",
        [1],
        {"not": "a serialized dataframe"},
        {"dataframe_records": [], "dataframe_split": {"data": []}},
    ],
)
def test_a_body_without_exactly_one_format_key_is_a_bad_request(body: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode(body)
    assert REQUIRED in caught.value.message
    assert "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}" in caught.value.message


def test_split_and_records_orients_swapped_are_bad_requests() -> None:
    records = [{"0": row[0], "1": row[1]} for row in IRIS]
    split = {"columns": [0, 1], "index": [0, 1, 2, 3], "data": IRIS}
    with pytest.raises(
        InvalidRequestError, match="Dataframe split format must be a dictionary. Got list"
    ):
        decode({"dataframe_split": records})
    with pytest.raises(
        InvalidRequestError,
        match="Dataframe records format must be a list of records. Got dictionary.",
    ):
        decode({"dataframe_records": split})


def test_an_invalid_dataframe_is_a_bad_request() -> None:
    with pytest.raises(
        InvalidRequestError,
        match="Provided dataframe_split field is not a valid dataframe representation",
    ):
        decode({"dataframe_split": {"index": [1, 2], "data": [[1], [2], [3]]}})


def test_an_empty_csv_is_a_bad_request() -> None:
    with pytest.raises(InvalidRequestError, match="Failed to parse input"):
        decode(b"", CSV)


@pytest.mark.parametrize(
    "content_type", ["not_a_supported_content_type", "application/json; something=something"]
)
def test_unsupported_content_types_are_415(content_type: str) -> None:
    body = orjson.dumps({"dataframe_split": {"columns": ["a", "b"], "data": IRIS}})
    with pytest.raises(UnsupportedMediaTypeError):
        decode(body, content_type)


@pytest.mark.parametrize("content_type", [JSON, "application/json; charset=UTF-8"])
def test_split_and_records_decode_with_and_without_a_charset(content_type: str) -> None:
    split = {"dataframe_split": {"columns": [0, 1], "index": [0, 1, 2, 3], "data": IRIS}}
    records = {"dataframe_records": [{"0": a, "1": b} for a, b in IRIS]}
    for body in (split, records):
        data = table(body, content_type)
        assert data.columns == ("0", "1")
        assert data.values.dtype == np.float64
        assert data.values.tolist() == IRIS


def test_tf_serving_instances_and_inputs_both_decode() -> None:
    instances = decode({"instances": IRIS}).data
    assert isinstance(instances, MlflowArray)
    assert instances.array.tolist() == IRIS
    keras_rows = {"instances": [{"a": row, "b": row[::-1]} for row in IRIS]}
    tensors = decode(keras_rows).data
    assert isinstance(tensors, MlflowTensors)
    assert tensors.tensors["a"].shape == (4, 2)
    assert tensors.tensors["b"].tolist() == [row[::-1] for row in IRIS]
    named = decode({"inputs": {"a": IRIS, "b": IRIS[:2]}}).data
    assert isinstance(named, MlflowTensors)
    assert named.tensors["a"].shape == (4, 2)
    assert named.tensors["b"].shape == (2, 2)  # columnar inputs may differ in batch size


def test_records_keep_zip_codes_as_text() -> None:
    data = table(
        {
            "dataframe_records": [
                {"zip": "95120", "cost": 10.45, "score": 8},
                {"zip": "95128", "cost": 23.0, "score": 0},
                {"zip": "95128", "cost": 12.1, "score": 10},
            ]
        }
    )
    assert data.columns == ("zip", "cost", "score")
    assert data.values.dtype == object
    assert kinds(data.values.tolist()) == [["str", "float", "int"]] * 3
    assert data.values[:, 0].tolist() == ["95120", "95128", "95128"]


def test_split_keeps_zip_codes_as_text_and_ignores_the_index() -> None:
    data = table(
        {
            "dataframe_split": {
                "columns": ["zip", "cost", "count"],
                "index": [0, 1, 2],
                "data": [["95120", 10.45, -8], ["95128", 23.0, -1], ["95128", 12.1, 1000]],
            }
        }
    )
    assert data.values[:, 2].tolist() == [-8, -1, 1000]
    assert kinds(data.values.tolist())[0] == ["str", "float", "int"]


def test_params_are_passed_through() -> None:
    body = {"dataframe_split": {"columns": ["a", "b"], "data": IRIS}, "params": {"k": [1, "x"]}}
    assert decode(body).params == {"k": [1, "x"]}
    assert decode({"inputs": [1], "params": None}).params is None
    assert decode({"inputs": [1]}).params is None
    with pytest.raises(InvalidParameterError) as caught:
        decode({"inputs": [1], "params": [1]})
    assert caught.value.message == "Parameters must be a dictionary. Got type 'list'."
    assert caught.value.field == "params"


# ------------------------------------------------------------------ formats and dtypes

ROWS = [[1.5, 2, True, "x"], [2.5, 3, False, "y"], [3.5, 4, True, None]]
NAMES = ["f", "i", "b", "s"]


def test_every_format_decodes_the_same_table() -> None:
    split = table({"dataframe_split": {"columns": NAMES, "data": ROWS}})
    records = table({"dataframe_records": [dict(zip(NAMES, row, strict=True)) for row in ROWS]})
    instances = table({"instances": [dict(zip(NAMES, row, strict=True)) for row in ROWS]})
    inputs = table({"inputs": [dict(zip(NAMES, row, strict=True)) for row in ROWS]})
    csv = table(b"f,i,b,s\n1.5,2,True,x\n2.5,3,False,y\n3.5,4,True,\n", CSV)
    for data in (split, records, instances, inputs, csv):
        assert data.columns == tuple(NAMES)
        assert data.values.shape == (3, 4)
        assert data.values.tolist() == ROWS
        assert kinds(data.values.tolist()) == kinds(split.values.tolist())
    array = decode({"inputs": ROWS}).data
    assert isinstance(array, MlflowArray)
    assert array.array.tolist() == ROWS


def test_positional_split_without_columns_and_flat_data() -> None:
    data = table({"dataframe_split": {"data": [[1, 2], [3, 4]]}})
    assert data.columns is None
    assert data.values.dtype == np.int64
    flat = table({"dataframe_split": {"columns": ["a"], "data": [1, 2, 3]}})
    assert flat.values.shape == (3, 1)
    empty = table({"dataframe_split": {"columns": ["a", "b"], "data": []}})
    assert empty.values.shape == (0, 2)


@pytest.mark.parametrize(
    "split",
    [
        {"columns": ["a", "b"], "data": [[1, 2, 3]]},
        {"columns": ["a", "b"], "data": [[1, 2], [3]]},
        {"columns": ["a"], "data": [[[1, 2]]]},
        {"columns": "ab", "data": [[1, 2]]},
        {"columns": [True], "data": [[1]]},
        {"columns": ["a"]},
        {"data": [[1]], "extra": 1},
        {"data": [[1]], "index": 3},
    ],
)
def test_malformed_splits_are_bad_requests(split: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError, match="[Dd]ataframe split|dataframe_split"):
        decode({"dataframe_split": split})


def test_records_with_missing_keys_fill_none_in_first_seen_order() -> None:
    data = table({"dataframe_records": [{"a": 1, "b": 2}, {"c": 3.5, "a": 4}, {}]})
    assert data.columns == ("a", "b", "c")
    assert data.values.tolist() == [[1, 2, None], [4, None, 3.5], [None, None, None]]
    assert data.values.dtype == object


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"dataframe_records": [{"a": 1}, [1]]}, "element 1 is a list"),
        ({"dataframe_records": "x"}, "Got type 'str'"),
        ({"dataframe_records": [{"a": [1, 2]}]}, "single values"),
        ({"dataframe_records": [{"a": {"b": 1}}]}, "JSON objects"),
        ({"instances": [{"a": [1, 2]}, {"b": [1, 2]}]}, "are not the same"),
        ({"instances": [{"a": [1, 2]}, {"a": [1]}]}, "rectangular"),
        ({"instances": [{"a": 1}, 2]}, "element 1 is a number"),
    ],
)
def test_malformed_records_are_bad_requests(body: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        decode(body)


def test_instances_of_scalars_are_a_table_and_of_lists_are_stacked_tensors() -> None:
    rows = table({"instances": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]})
    assert rows.columns == ("a", "b")
    assert rows.values.tolist() == [[1, "x"], [2, "y"]]
    stacked = decode({"instances": [{"img": [[1, 2]], "id": 7}, {"img": [[3, 4]], "id": 8}]}).data
    assert isinstance(stacked, MlflowTensors)
    assert stacked.tensors["img"].shape == (2, 1, 2)
    assert stacked.tensors["img"].dtype == np.int64
    assert stacked.tensors["id"].tolist() == [7, 8]


def test_named_inputs_keep_each_tensor_its_own_kind() -> None:
    data = decode({"inputs": {"x": [[0.5, 1]], "word": ["a", "b"], "n": 3, "ok": [True]}}).data
    assert isinstance(data, MlflowTensors)
    assert data.tensors["x"].dtype == np.float64
    assert data.tensors["word"].dtype == object
    assert data.tensors["word"].tolist() == ["a", "b"]
    assert data.tensors["n"].shape == ()
    assert data.tensors["ok"].dtype == np.bool_
    columnar_instances = decode({"instances": {"x": [1, 2]}}).data  # read like inputs, as MLflow
    assert isinstance(columnar_instances, MlflowTensors)


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        ([[0.1, 2], [3, 4]], np.float64, [[0.1, 2.0], [3.0, 4.0]]),
        ([1, 2], np.int64, [1, 2]),
        ([True, False], np.bool_, [True, False]),
        ([True, 1], object, [True, 1]),
        ([True, 1.5], object, [True, 1.5]),
        (["a", 1], object, ["a", 1]),
        ([1, None], object, [1, None]),
        ([2**63], object, [2**63]),
        ([2**63, -1], object, [2**63, -1]),
        ([], np.float64, []),
        ([[], []], np.float64, [[], []]),
        ([[[1, 2]], [[3, 4]]], np.int64, [[[1, 2]], [[3, 4]]]),
        ([[["a"]], [["b"]]], object, [[["a"]], [["b"]]]),
        ("text", object, "text"),
        (2.5, np.float64, 2.5),
        (None, object, None),
    ],
)
def test_arrays_are_numeric_only_when_every_value_is(value: Any, dtype: Any, expected: Any) -> None:
    data = decode({"inputs": value}).data
    assert isinstance(data, MlflowArray)
    assert data.array.dtype == dtype
    assert data.array.tolist() == expected
    assert kinds(data.array.tolist()) == kinds(expected)


@pytest.mark.parametrize(
    "value",
    [[[1, 2], [3]], [1, [2]], [[1, 2], 3], [{"a": 1}], [[1, {"a": 1}]], [["a"], ["b", "c"]]],
)
def test_ragged_or_nested_arrays_are_bad_requests(value: Any) -> None:
    with pytest.raises(InvalidRequestError, match="rectangular"):
        decode({"inputs": {"x": value}})


def test_text_never_becomes_a_fixed_width_unicode_array() -> None:
    long = "x" * 100_000
    data = decode({"inputs": [long] + ["y"] * 10_000}).data
    assert isinstance(data, MlflowArray)
    assert data.array.dtype == object
    assert data.array.nbytes < 1_000_000  # 8-byte references, not 10_001 x 400 kB


def test_nan_and_infinity_tokens_from_python_json_are_read() -> None:
    body = json.dumps({"dataframe_split": {"columns": ["a"], "data": [[math.nan], [math.inf]]}})
    data = table(body.encode())
    assert data.values.dtype == np.float64
    assert math.isnan(data.values[0, 0])
    assert data.values[1, 0] == math.inf


@pytest.mark.parametrize(
    "body", [b'{"inputs": ["\\ud800"], "x": NaN}', b"\xff\xfe", b'{"inputs": "\xe9"}']
)
def test_lone_surrogates_and_bad_utf8_are_bad_requests(body: bytes) -> None:
    with pytest.raises(InvalidRequestError):
        decode(body)


def test_unknown_top_level_keys_are_ignored_like_mlflow() -> None:
    assert isinstance(decode({"inputs": [1], "signature_name": "x"}).data, MlflowArray)


# ----------------------------------------------------------------------------------- CSV


def test_csv_columns_are_int_float_bool_or_text() -> None:
    body = b'a,b,c,d,e\n1,1.5,x,True,"1,5"\n-2,2e3,"multi\nline",false,7\n'
    data = table(body, CSV)
    assert data.columns == ("a", "b", "c", "d", "e")
    assert data.values.tolist() == [
        [1, 1.5, "x", True, "1,5"],
        [-2, 2000.0, "multi\nline", False, "7"],
    ]
    assert kinds(data.values.tolist())[0] == ["int", "float", "str", "bool", "str"]


def test_csv_all_numeric_is_numeric_and_empty_cells_are_missing() -> None:
    ints = table(b"a,b\n1,2\n3,4\n", CSV)
    assert ints.values.dtype == np.int64
    with_gap = table(b"a,b\n1,2\n3,\n", CSV)
    assert with_gap.values.dtype == np.float64
    assert math.isnan(with_gap.values[1, 1])
    mixed = table(b"a,s\n1,\n,y\n", CSV)
    assert mixed.values.tolist() == [[1, None], [None, "y"]]
    bools = table(b"t\nTrue\nfalse\n", CSV)
    assert bools.values.dtype == np.bool_


def test_csv_edge_cells() -> None:
    data = table(b"\xef\xbb\xbfbig,under,uni\n99999999999999999999,1_000,\xd9\xa1\n\n", CSV)
    assert data.columns == ("big", "under", "uni")  # byte-order mark and blank line dropped
    assert kinds(data.values.tolist()) == [["float", "str", "str"]]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "No columns"),
        (b"a,b\n", "no data rows"),
        (b"a,b\n1,2\n3\n", "row 3 has 1 fields"),
        (b"a\n\xff\n", "Invalid input. Ensure that input is a valid UTF-8 encoded string"),
        (b'a\n"' + b"x" * 200_000 + b'"\n', "field larger"),
    ],
)
def test_malformed_csv_is_a_bad_request(body: bytes, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        decode(body, CSV)


# -------------------------------------------------------------------------- content type


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/json", "json"),
        ("application/json; charset=UTF-8", "json"),
        ("Application/JSON", "json"),
        ('application/json; Charset="utf-8"', "json"),
        ("application/json;", "json"),
        ("text/csv", "csv"),
        ("text/csv; charset=utf-8", "csv"),
    ],
)
def test_accepted_content_types(content_type: str, kind: str) -> None:
    assert content_kind(content_type) == kind


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("application/json; charset=latin-1", "The scoring server only supports UTF-8"),
        ("text/plain; charset=latin-1", "The scoring server only supports UTF-8"),
        ("application/json; foo=bar", "Unrecognized content type parameters: foo."),
        (
            "text/plain",
            "This predictor only supports the following content types: "
            "Types: ['text/csv', 'application/json']. Got 'text/plain'.",
        ),
        (None, "Got 'None'."),
        ("", "Got ''."),
        ("application/jsonx", "Got 'application/jsonx'."),
    ],
)
def test_refused_content_types(content_type: str | None, message: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        content_kind(content_type)
    assert message in caught.value.message
    with pytest.raises(UnsupportedMediaTypeError):
        decode({"inputs": [1]}, content_type)


# -------------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("body", "content_type", "count"),
    [
        ({"inputs": [[1, 2, 3], [4, 5, 6]]}, JSON, 6),
        ({"inputs": {"a": [1, 2, 3], "b": [[1, 2], [3, 4]]}}, JSON, 7),
        ({"dataframe_split": {"data": [["a", 1], ["b", 2], ["c", 3]]}}, JSON, 6),
        ({"dataframe_records": [{"a": 1, "b": 2}, {"a": 3}, {"c": 1}]}, JSON, 9),
        ({"instances": [{"a": [1, 2]}, {"a": [3, 4]}]}, JSON, 4),
        (b"a,b,c\n1,2,3\n4,5,6\n", CSV, 6),
    ],
)
def test_element_limit(body: Any, content_type: str, count: int) -> None:
    decode(body, content_type, limit=count)
    with pytest.raises(PayloadTooLargeError, match=f"holds {count} values"):
        decode(body, content_type, limit=count - 1)


# ------------------------------------------------------------------------------ encoding


@pytest.mark.parametrize(
    ("predictions", "expected"),
    [
        (np.array([0, 1, 1]), [0, 1, 1]),
        (np.array(["setosa", "virginica"]), ["setosa", "virginica"]),
        (np.array(["a", None], dtype=object), ["a", None]),
        (np.array([[0.25, 0.75], [1.0, 0.0]]), [[0.25, 0.75], [1.0, 0.0]]),
        (np.arange(6).reshape(2, 3).T, [[0, 3], [1, 4], [2, 5]]),
        (np.array([1.5, np.nan], dtype=np.float32), [1.5, None]),
        (np.array([True, False]), [True, False]),
        (np.array([b"\x00\x01"], dtype=object), ["AAE="]),
    ],
)
def test_encode_arrays(predictions: np.ndarray, expected: Any) -> None:
    assert orjson.loads(encode_predictions(predictions)) == {"predictions": expected}


def test_encode_named_outputs_as_records() -> None:
    body = encode_predictions(
        {
            "label": np.array(["a", "b"]),
            "probabilities": np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32),
            "when": np.array(["2024-01-02", "2024-03-04"], dtype="datetime64[ns]"),
        }
    )
    assert orjson.loads(body) == {
        "predictions": [
            {"label": "a", "probabilities": [0.25, 0.75], "when": "2024-01-02T00:00:00"},
            {"label": "b", "probabilities": [0.5, 0.5], "when": "2024-03-04T00:00:00"},
        ]
    }
    assert orjson.loads(encode_predictions({})) == {"predictions": []}


def test_encode_refuses_outputs_it_cannot_write() -> None:
    with pytest.raises(ModelExecutionError, match="different numbers of rows"):
        encode_predictions({"a": np.array([1, 2]), "b": np.array([1])})
    with pytest.raises(ModelExecutionError, match="cannot be written as JSON"):
        encode_predictions(np.array([object()], dtype=object))


# ---------------------------------------------------------------------------------- fuzz

REQUEST_ERRORS = (InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError)
CONTENT_TYPES = st.sampled_from(
    [JSON, CSV, "application/json; charset=utf-8", "text/plain", None, "application/json; a=b"]
) | st.text(max_size=30)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)
FORMAT_KEYS = st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs"])
ALLOWED_DTYPES = {np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.bool_), np.dtype(object)}


def arrays_of(data: Any) -> list[np.ndarray]:
    if isinstance(data, MlflowTable):
        assert data.values.ndim == 2
        return [data.values]
    if isinstance(data, MlflowArray):
        return [data.array]
    return list(data.tensors.values())


def check_decodes_or_refuses(body: bytes, content_type: str | None, limit: int = 50) -> None:
    try:
        request = decode_invocation(body, content_type, max_elements=limit)
    except REQUEST_ERRORS:
        return
    for array in arrays_of(request.data):
        assert array.dtype in ALLOWED_DTYPES
        if array.dtype == object:
            assert {type(v) for v in array.ravel().tolist()} <= {str, int, float, bool, type(None)}


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=200), content_type=CONTENT_TYPES)
def test_fuzz_arbitrary_bytes(body: bytes, content_type: str | None) -> None:
    check_decodes_or_refuses(body, content_type)


@settings(max_examples=200, deadline=None)
@given(
    value=JSON_VALUES,
    key=FORMAT_KEYS,
    extra=st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=2),
)
def test_fuzz_json_documents(value: Any, key: str, extra: dict[str, Any]) -> None:
    body = json.dumps({**extra, key: value}).encode()
    check_decodes_or_refuses(body, JSON)
    check_decodes_or_refuses(json.dumps(value).encode(), JSON)


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.lists(st.text(max_size=5), min_size=1, max_size=4), max_size=5))
def test_fuzz_csv(cells: list[list[str]]) -> None:
    text = "\n".join(",".join(row) for row in cells)
    check_decodes_or_refuses(text.encode("utf-8", "surrogatepass"), CSV)
