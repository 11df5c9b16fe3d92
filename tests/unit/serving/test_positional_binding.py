"""A model with one tensor input (registered from a numpy array) takes columns by position,
as MLflow's scoring server does, and refuses any other column count naming the width."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.errors import InvalidInputError
from modelport.package.sample_schema import infer_signature
from modelport.serving.binding import (
    ArrayInputs,
    InputBinder,
    NamedInputs,
    TableInputs,
    Tensor,
)
from modelport.serving.interface import Layout, ModelIO

X = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def binder_for(sample: np.ndarray) -> InputBinder:
    io = ModelIO.from_signature(infer_signature(sample), supports_proba=False, n_classes=None)
    assert io.layout is Layout.TENSORS
    return InputBinder(io)


@pytest.mark.parametrize(
    "inputs",
    [
        TableInputs(None, X),  # dataframe_split without columns
        TableInputs(("0", "1", "2"), X),  # pd.DataFrame(X).to_dict("split")
        TableInputs(("c", "a", "b"), X),  # any names: by position, never by name
        TableInputs(("x", "y", "z"), X.astype(np.int64).astype(object)),  # JSON numbers
        ArrayInputs(X),  # instances / inputs as lists
        NamedInputs({"input": Tensor(X, "FP64")}),  # the tensor by name
    ],
)
def test_a_table_of_the_tensor_width_is_the_tensor(inputs: object) -> None:
    bound = binder_for(X).bind(inputs)  # type: ignore[arg-type]
    assert bound.rows == 2
    assert bound.batch["input"].dtype == np.float64
    assert bound.batch["input"].tolist() == X.tolist()


def test_one_column_inputs_are_stacked_in_the_order_sent() -> None:
    columns = {
        "z": Tensor(np.array([1.0, 4.0]), "FP64"),
        "a": Tensor(np.array([[2], [5]], dtype=np.int32), "INT32"),  # widened, [n, 1] is fine
        "m": Tensor(np.array([3, 6], dtype=np.int64), "INT64"),  # exact integers to FP64
    }
    bound = binder_for(X).bind(NamedInputs(columns))
    assert bound.batch["input"].tolist() == X.tolist()
    untyped = {name: Tensor(X[:, j]) for j, name in enumerate(("q", "r", "s"))}
    assert binder_for(X).bind(NamedInputs(untyped)).batch["input"].tolist() == X.tolist()


@pytest.mark.parametrize(
    ("inputs", "got"),
    [
        (TableInputs(("a", "b"), X[:, :2]), "got a table of 2 columns"),
        (TableInputs(None, np.hstack([X, X])), "got a table of 6 columns"),
        (TableInputs(("only",), X[:, :1]), "got a table of 1 columns"),
        (NamedInputs({"a": Tensor(X[:, 0]), "b": Tensor(X[:, 1])}), "got 2 inputs ('a', 'b')"),
    ],
)
def test_another_width_is_refused_naming_the_expected_width(inputs: object, got: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        binder_for(X).bind(inputs)  # type: ignore[arg-type]
    message = str(raised.value)
    assert "one tensor 'input' of shape [-1, 3], 3 values per row" in message
    assert message.endswith(got)
    assert raised.value.expected == "3 values per row"


def test_columns_keep_the_conversion_rules() -> None:
    binder = binder_for(X.astype(np.float32))
    with pytest.raises(InvalidInputError, match="has datatype FP32; got FP64"):
        binder.bind(NamedInputs({n: Tensor(X[:, j], "FP64") for j, n in enumerate("abc")}))
    with pytest.raises(InvalidInputError, match="non-finite value in input 'input'"):
        binder_for(X).bind(TableInputs(("a", "b", "c"), np.array([[1.0, np.nan, 2.0]])))
    with pytest.raises(InvalidInputError, match="expects a number, got 'x'"):
        binder_for(X).bind(TableInputs(None, np.array([[1, "x", 2]], dtype=object)))
    with pytest.raises(InvalidInputError, match="no rows"):
        binder_for(X).bind(TableInputs(("a", "b", "c"), np.empty((0, 3))))
    wide = {"a": Tensor(X[:, :2]), "b": Tensor(X[:, 2]), "c": Tensor(X[:, 0])}
    with pytest.raises(InvalidInputError, match="is one column"):
        binder_for(X).bind(NamedInputs(wide))


def test_the_tensor_by_name_with_other_inputs_is_refused() -> None:
    inputs = NamedInputs({"input": Tensor(X), "extra": Tensor(X[:, 0])})
    with pytest.raises(InvalidInputError, match="unknown input 'extra'"):
        binder_for(X).bind(inputs)


def test_a_one_dimensional_tensor_takes_a_one_column_table() -> None:
    binder = binder_for(np.array([1.0, 2.0]))
    bound = binder.bind(TableInputs(("anything",), np.array([[7.0], [8.0]])))
    assert bound.batch["input"].tolist() == [7.0, 8.0]
    with pytest.raises(InvalidInputError, match=r"shape \[-1\], 1 value per row: send a table"):
        binder.bind(TableInputs(("a", "b"), X[:, :2]))
    with pytest.raises(InvalidInputError, match="unknown input 'a'"):
        binder.bind(NamedInputs({"a": Tensor(np.array([1.0]))}))  # names still matter here


def test_tensors_of_higher_rank_are_not_filled_from_tables() -> None:
    binder = binder_for(np.zeros((2, 2, 2)))
    with pytest.raises(InvalidInputError):
        binder.bind(TableInputs(("a", "b", "c", "d"), np.zeros((1, 4))))
