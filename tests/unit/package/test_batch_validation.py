"""Checking batches against a signature's inputs: tables by column, tensors by shape."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

from modelport.domain.signature import ColumnSchema, ColumnSpec, TensorSchema, TensorSpec
from modelport.errors import InvalidInputError
from modelport.package.batch_validation import validate_batch
from modelport.package.sample_schema import infer_schema


@pytest.fixture
def frame(mixed_frame: pd.DataFrame) -> pd.DataFrame:
    return mixed_frame


# ------------------------------------------------------------------ column validation


def schema_of(frame: pd.DataFrame) -> ColumnSchema:
    schema = infer_schema(frame)
    assert isinstance(schema, ColumnSchema)
    return schema


def test_validate_reorders_by_name_and_drops_unknown_columns(frame: pd.DataFrame) -> None:
    shuffled = frame[list(reversed(frame.columns))].assign(extra=1)
    result = validate_batch(schema_of(frame), shuffled)
    assert list(result.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(result, frame)


def test_validate_accepts_records_and_widens_int_to_float(frame: pd.DataFrame) -> None:
    schema = schema_of(frame[["age", "income"]])
    result = validate_batch(schema, [{"age": 40, "income": 1000}, {"income": None, "age": 41}])
    assert result["income"].dtype == np.float64
    assert result["income"].tolist()[0] == 1000.0
    assert np.isnan(result["income"].tolist()[1])


def test_missing_required_column_is_named(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="missing required column 'city'") as info:
        validate_batch(schema_of(frame), frame.drop(columns="city"))
    assert info.value.field == "city"
    assert info.value.expected == "string"


def test_missing_optional_column_is_filled() -> None:
    schema = ColumnSchema(
        (ColumnSpec("a", "float64"), ColumnSpec("b", "float64", nullable=True, required=False))
    )
    result = validate_batch(schema, {"a": [1.0, 2.0]})
    assert result["b"].isna().all()


def test_text_in_a_numeric_column_is_refused_with_an_example(frame: pd.DataFrame) -> None:
    bad = frame.astype({"age": object})
    bad.loc[1, "age"] = "forty"
    with pytest.raises(
        InvalidInputError, match="column 'age' expects int64, got .*'forty'"
    ) as info:
        validate_batch(schema_of(frame), bad)
    assert info.value.field == "age"


def test_numbers_in_a_text_column_are_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="'city' expects string"):
        validate_batch(schema_of(frame), frame.assign(city=[1, 2, 3]))


def test_missing_values_in_a_non_nullable_column_are_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="'age' has 1 missing value"):
        validate_batch(schema_of(frame), frame.assign(age=[1, None, 3]))


def test_whole_floats_are_accepted_for_int_columns_fractions_are_not() -> None:
    schema = ColumnSchema((ColumnSpec("n", "int32"),))
    assert validate_batch(schema, {"n": [1.0, 2.0]})["n"].dtype == np.int32
    with pytest.raises(InvalidInputError, match="not whole numbers"):
        validate_batch(schema, {"n": [1.5]})
    with pytest.raises(InvalidInputError, match="outside"):
        validate_batch(schema, {"n": [2**40]})


def test_huge_ints_do_not_silently_lose_precision_as_float() -> None:
    schema = ColumnSchema((ColumnSpec("x", "float32"),))
    with pytest.raises(InvalidInputError, match="lose precision"):
        validate_batch(schema, {"x": [2**30]})


def test_float64_narrows_to_float32_when_in_range() -> None:
    schema = ColumnSchema((ColumnSpec("x", "float32"),))
    assert validate_batch(schema, {"x": [1.5]})["x"].dtype == np.float32
    with pytest.raises(InvalidInputError, match="out of range"):
        validate_batch(schema, {"x": [1e300]})


def test_bool_is_not_a_number() -> None:
    with pytest.raises(InvalidInputError, match="got bool"):
        validate_batch(ColumnSchema((ColumnSpec("x", "float64"),)), {"x": [True]})


def test_category_values_outside_the_categories_are_named(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="outside its categories: 'z'"):
        validate_batch(schema_of(frame), frame.assign(plan=["a", "z", "b"]))


def test_dates_are_parsed_from_iso_text(frame: pd.DataFrame) -> None:
    text = frame.assign(since=["2020-01-01", "2021-06-30", "2022-12-31"])
    assert validate_batch(schema_of(frame), text)["since"].tolist() == frame["since"].tolist()
    with pytest.raises(InvalidInputError, match="ISO 8601"):
        validate_batch(schema_of(frame), frame.assign(since=["yesterday", "x", "y"]))


def test_positional_rows_follow_the_signature_order() -> None:
    schema = ColumnSchema((ColumnSpec("a", "int64"), ColumnSpec("b", "string")))
    assert validate_batch(schema, [[1, "x"], [2, "y"]])["b"].tolist() == ["x", "y"]
    with pytest.raises(InvalidInputError, match="2 values"):
        validate_batch(schema, [[1, "x", 3]])
    with pytest.raises(InvalidInputError, match="2 columns"):
        validate_batch(schema, np.zeros((2, 3)))


def test_an_empty_batch_is_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="no rows"):
        validate_batch(schema_of(frame), frame.iloc[:0])


def test_a_non_table_is_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="expected a table"):
        validate_batch(schema_of(frame), "age=3")


@settings(max_examples=40, deadline=None)
@given(
    hpd.data_frames(
        [
            hpd.column("i", dtype=np.int64),
            hpd.column("f", elements=st.floats(allow_nan=False, allow_infinity=False, width=64)),
            hpd.column("s", elements=st.text(max_size=5)),
        ],
        index=hpd.range_indexes(min_size=1, max_size=20),
    )
)
def test_validating_the_sample_gives_it_back(sample: pd.DataFrame) -> None:
    sample = sample.astype({"s": object})
    pd.testing.assert_frame_equal(validate_batch(schema_of(sample), sample), sample)


# ------------------------------------------------------------------ tensor validation


def test_tensor_checks_rank_and_fixed_dimensions() -> None:
    schema = TensorSchema((TensorSpec("x", "float32", (-1, 3)),))
    assert validate_batch(schema, np.zeros((5, 3))).dtype == np.float32
    with pytest.raises(
        InvalidInputError, match=r"tensor 'x' expects shape \[-1, 3\] .*, got \[5, 4\]"
    ):
        validate_batch(schema, np.zeros((5, 4)))
    with pytest.raises(InvalidInputError, match="got \\[3\\]"):
        validate_batch(schema, [1.0, 2.0, 3.0])
    with pytest.raises(InvalidInputError, match="ragged"):
        validate_batch(schema, [[1.0, 2.0, 3.0], [1.0]])
    with pytest.raises(InvalidInputError, match="text"):
        validate_batch(schema, np.array([["a", "b", "c"]]))


def test_named_tensors_must_all_be_present() -> None:
    schema = TensorSchema(
        (TensorSpec("ids", "int64", (-1, 4)), TensorSpec("mask", "bool", (-1, 4)))
    )
    batch = {"ids": np.ones((2, 4), "int32"), "mask": np.ones((2, 4), bool)}
    result = validate_batch(schema, batch)
    assert result["ids"].dtype == np.int64
    with pytest.raises(InvalidInputError, match="missing input tensor 'mask'"):
        validate_batch(schema, {"ids": batch["ids"]})


# ------------------------------------------------------------ integer column labels


def test_integer_labels_match_the_names_a_signature_gives_them() -> None:
    """``pd.DataFrame(X)`` labels its columns 0, 1, ...; its signature names them "0", "1"."""
    x = np.arange(6.0).reshape(2, 3)
    schema = schema_of(pd.DataFrame(x))
    assert schema.names == ["0", "1", "2"]
    validated = validate_batch(schema, pd.DataFrame(x))
    assert list(validated.columns) == ["0", "1", "2"]
    np.testing.assert_array_equal(validated.to_numpy(), x)
    reordered = pd.DataFrame({2: x[:, 2], "0": x[:, 0], 1: x[:, 1]})  # labels of both kinds
    np.testing.assert_array_equal(validate_batch(schema, reordered).to_numpy(), x)
    with pytest.raises(InvalidInputError, match="missing required column '2'"):
        validate_batch(schema, pd.DataFrame(x[:, :2]))


def test_labels_that_read_the_same_as_text_are_refused() -> None:
    schema = schema_of(pd.DataFrame(np.zeros((1, 2))))
    clash = pd.DataFrame([[1.0, 2.0, 3.0]], columns=pd.Index([0, "0", 1], dtype=object))
    with pytest.raises(InvalidInputError, match="the columns 0, '0' have the same name"):
        validate_batch(schema, clash)
