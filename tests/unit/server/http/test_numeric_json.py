"""The fast path for tables of JSON numbers: it answers only for the simple case, and
whenever it answers, the answer is the general decoder's, value for value."""

import json
import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelport.errors import InvalidRequestError, PayloadTooLargeError
from modelport.server.http import mlflow_codec, numeric_json
from modelport.server.http.mlflow_codec import MlflowArray, MlflowTable, decode_invocation
from modelport.server.http.numeric_json import float_table

JSON = "application/json"
LIMIT = 1_000_000


def body_of(document: Any) -> bytes:
    return json.dumps(document).encode()


def general(body: bytes, monkeypatch: pytest.MonkeyPatch, limit: int = LIMIT) -> Any:
    """What the decoder answers without the fast path: its data, or the error it raises."""
    with monkeypatch.context() as patch:
        patch.setattr(mlflow_codec, "float_table", lambda _body: None)
        return outcome(body, limit)


def outcome(body: bytes, limit: int = LIMIT) -> Any:
    try:
        return decode_invocation(body, JSON, max_elements=limit).data
    except (InvalidRequestError, PayloadTooLargeError) as error:
        return (type(error), str(error))


def assert_same(fast: Any, slow: Any) -> None:
    assert type(fast) is type(slow)
    if isinstance(fast, tuple):
        assert fast == slow
        return
    if isinstance(fast, MlflowTable):
        assert fast.columns == slow.columns
        fast_values, slow_values = fast.values, slow.values
    else:
        fast_values, slow_values = fast.array, slow.array
    assert fast_values.dtype == slow_values.dtype
    assert fast_values.shape == slow_values.shape
    assert fast_values.tolist() == slow_values.tolist()


@pytest.fixture(params=["orjson", "simdjson"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which of the two readers reads the (small) bodies of the test: orjson for bodies up
    to SMALL_BODY_BYTES, simdjson for bigger ones; the size limit is moved to choose."""
    limit = 1 << 30 if request.param == "orjson" else 0
    monkeypatch.setattr(numeric_json, "SMALL_BODY_BYTES", limit)
    return str(request.param)


def test_a_split_table_of_floats_is_read_by_the_fast_path(reader: str) -> None:
    body = body_of({"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, 2], [-3.25, 4e-3]]}})
    table = float_table(body)
    assert table is not None
    assert table.columns == ("a", "b")
    assert table.values.dtype == np.float64
    assert table.values.tolist() == [[1.5, 2.0], [-3.25, 0.004]]
    assert table.values.flags.writeable


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_rows_of_floats_under_instances_or_inputs_are_one_array(key: str) -> None:
    data = decode_invocation(body_of({key: [[0.5, 1], [2, 3]]}), JSON, max_elements=LIMIT).data
    assert isinstance(data, MlflowArray)
    assert data.array.tolist() == [[0.5, 1.0], [2.0, 3.0]]


def test_an_index_of_the_right_length_is_accepted_and_ignored(reader: str) -> None:
    body = body_of({"dataframe_split": {"index": [7, 8], "data": [[0.5], [1.5]]}})
    table = float_table(body)
    assert table is not None and table.columns is None


@pytest.mark.parametrize(
    "document",
    [
        # the general path keeps whole numbers as int64
        {"dataframe_split": {"data": [[1, 2], [3, 4]]}},
        # values that are not numbers
        {"dataframe_split": {"data": [[1.5, True]]}},
        {"dataframe_split": {"data": [[1.5, None]]}},
        {"dataframe_split": {"data": [[1.5, "2.5"]]}},
        # rows that nest lists, even where the flattened count would fit
        {"dataframe_split": {"data": [[[1.5, 2], [3, 4]], 5, 6]}},
        {"dataframe_split": {"data": [[1.5, [2]], [3, 4]]}},
        {"instances": [[[0.5, 1]], [[2, 3]]]},
        # ragged, flat or empty data
        {"dataframe_split": {"data": [[1.5, 2], [3]]}},
        {"dataframe_split": {"data": [1.5, 2]}},
        {"dataframe_split": {"data": []}},
        {"dataframe_split": {"data": [[]]}},
        # anything beside the table, or a table the general path must judge
        {"dataframe_split": {"data": [[1.5]]}, "params": {"a": 1}},
        {"dataframe_split": {"data": [[1.5]], "extra": 1}},
        {"dataframe_split": {"columns": [0], "data": [[1.5]]}},
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1.5]]}},
        {"dataframe_split": {"columns": "a", "data": [[1.5]]}},
        {"dataframe_split": {"index": [0, 1], "data": [[1.5]]}},
        {"dataframe_split": {"index": 0, "data": [[1.5]]}},
        {"dataframe_split": {"columns": ["\u00e9\n"], "data": [[1.5]]}},
        # strings among the values, or as an index label that hides one among the values
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, "2"]]}},
        {"instances": [[1.5, "2"]]},
        {"dataframe_records": [{"a": 1.5}]},
        {"instances": [{"a": 1.5}]},
        [[1.5]],
    ],
)
def test_anything_but_the_simple_case_is_left_to_the_general_path(
    document: Any, reader: str
) -> None:
    assert float_table(body_of(document)) is None


@pytest.mark.parametrize(
    "body",
    [
        # duplicate keys: simdjson keeps the first, the general path the last
        b'{"dataframe_split": {"data": [[1.5]]}, "dataframe_split": {"data": [[2.5]]}}',
        b'{"dataframe_split": {"data": [[1.5]], "data": [[2.5]]}}',
        b'{"dataframe_split": {"data": [[1.5, 1e400]]}}',
        b'{"dataframe_split": {"data": [[1.5, NaN]]}}',
        b'{"dataframe_split": {"data": [[1.5, 2]]',
        b"",
    ],
)
def test_duplicate_keys_and_invalid_json_are_left_to_the_general_path(
    body: bytes, reader: str
) -> None:
    assert float_table(body) is None


AMBIGUOUS_TO_SIMDJSON = [
    # whole floats: simdjson cannot tell 1.0 from 1, which the general path keeps as int64
    b'{"dataframe_split": {"data": [[1.0, 2.0]]}}',
    # a bracket in a name: simdjson's rows are checked by counting brackets
    b'{"dataframe_split": {"columns": ["a["], "data": [[1.5]]}}',
]


@pytest.mark.parametrize("body", AMBIGUOUS_TO_SIMDJSON)
def test_what_simdjson_cannot_tell_apart_goes_to_the_general_path(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(numeric_json, "SMALL_BODY_BYTES", 0)
    assert float_table(body) is None


@pytest.mark.parametrize("body", AMBIGUOUS_TO_SIMDJSON)
def test_orjson_reads_those_bodies_as_the_general_path_does(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = float_table(body)
    assert fast is not None
    assert_same(MlflowTable(fast.columns, fast.values), general(body, monkeypatch))


def test_a_refused_body_does_not_spoil_the_next_one(reader: str) -> None:
    assert float_table(b'{"dataframe_split": {"data": [[1.5, true]]}}') is None
    assert float_table(b"not json") is None
    table = float_table(b'{"dataframe_split": {"data": [[1.5, 2]]}}')
    assert table is not None and table.values.tolist() == [[1.5, 2.0]]


def test_the_element_limit_applies_to_the_fast_path() -> None:
    body = body_of({"dataframe_split": {"data": [[0.5] * 10] * 10}})
    with pytest.raises(PayloadTooLargeError, match="100 values"):
        decode_invocation(body, JSON, max_elements=99)


def test_threads_decoding_at_once_each_get_their_own_table() -> None:
    bodies = [body_of({"inputs": [[i + 0.5] * 50] * 40}) for i in range(4)]
    failures: list[str] = []

    def decode_many(i: int) -> None:
        for _ in range(200):
            table = float_table(bodies[i])
            if table is None or table.values[0, 0] != i + 0.5 or table.values.shape != (40, 50):
                failures.append(f"thread {i}: {table}")
                return

    threads = [threading.Thread(target=decode_many, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


CELLS = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0.5, -0.0, 1e-300, 1.7976931348623157e308, True, None, "1.5", [2.5]])
)
NAMES = st.text(alphabet='ab[]\\"é', max_size=3)


@st.composite
def tables(draw: st.DrawFn) -> list[list[Any]]:
    """Mostly rectangular tables of numbers, some with one odd cell, some ragged."""
    width = draw(st.integers(1, 4))
    rows = draw(
        st.lists(
            st.lists(
                st.floats(allow_nan=False, allow_infinity=False), min_size=width, max_size=width
            ),
            min_size=1,
            max_size=5,
        )
    )
    if draw(st.booleans()):
        row = draw(st.integers(0, len(rows) - 1))
        rows[row][draw(st.integers(0, width - 1))] = draw(CELLS)
    if draw(st.integers(0, 4)) == 0:
        rows = draw(st.lists(st.lists(CELLS, min_size=1, max_size=4), min_size=1, max_size=5))
    return rows


@pytest.mark.parametrize("small_body_bytes", [0, 1 << 30], ids=["simdjson", "orjson"])
@settings(max_examples=300, deadline=None)
@given(
    rows=tables(),
    columns=st.none() | st.lists(NAMES | st.integers(0, 3), max_size=4),
    index=st.none() | st.lists(st.integers(0, 9) | NAMES, max_size=6),
    key=st.sampled_from(["dataframe_split", "instances", "inputs"]),
    limit=st.sampled_from([LIMIT, 3]),
)
def test_the_fast_path_answers_exactly_as_the_general_path(
    rows: list[list[Any]],
    columns: list[Any] | None,
    index: list[Any] | None,
    key: str,
    limit: int,
    small_body_bytes: int,
) -> None:
    if key == "dataframe_split":
        split: dict[str, Any] = {"data": rows}
        if columns is not None:
            split["columns"] = columns
        if index is not None:
            split["index"] = index
        document: dict[str, Any] = {key: split}
    else:
        document = {key: rows}
    body = body_of(document)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(numeric_json, "SMALL_BODY_BYTES", small_body_bytes)
        assert_same(outcome(body, limit), general(body, monkeypatch, limit))
