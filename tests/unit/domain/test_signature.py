import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

from modelport.domain.signature import (
    ColumnSchema,
    ColumnSpec,
    Signature,
    TensorSchema,
    TensorSpec,
    infer_schema,
    normalize_sample,
)
from modelport.errors import InvalidInputError, InvalidSampleError


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 52],
            "income": [1200.5, np.nan, 3100.0],
            "city": ["paris", "rome", "oslo"],
            "member": [True, False, True],
            "plan": pd.Categorical(["a", "b", "a"]),
            "since": pd.to_datetime(["2020-01-01", "2021-06-30", "2022-12-31"]),
        }
    )


def test_infer_columns_with_types_nullability_and_categories(frame: pd.DataFrame) -> None:
    schema = infer_schema(frame)
    assert isinstance(schema, ColumnSchema)
    assert schema.columns == (
        ColumnSpec("age", "int64"),
        ColumnSpec("income", "float64", nullable=True),
        ColumnSpec("city", "string"),
        ColumnSpec("member", "bool"),
        ColumnSpec("plan", "category", categories=("a", "b")),
        ColumnSpec("since", "datetime"),
    )


def test_infer_tensor_with_variable_batch_dimension() -> None:
    schema = infer_schema(np.zeros((4, 3, 2), dtype="float32"))
    assert schema == TensorSchema((TensorSpec("input", "float32", (-1, 3, 2)),))


def test_infer_named_tensors_from_a_dict() -> None:
    schema = infer_schema({"ids": np.zeros((2, 5), "int64"), "mask": np.ones((2, 5), bool)})
    assert [t.name for t in schema.tensors] == ["ids", "mask"]  # type: ignore[union-attr]


def test_records_and_dicts_become_tables() -> None:
    assert isinstance(normalize_sample([{"a": 1}, {"a": 2}]), pd.DataFrame)
    assert isinstance(normalize_sample({"a": [1, 2]}), pd.DataFrame)


@pytest.mark.parametrize("empty", [pd.DataFrame({"a": []}), np.zeros((0, 3)), []])
def test_a_sample_without_rows_is_refused(empty: object) -> None:
    with pytest.raises(InvalidSampleError, match="no rows"):
        normalize_sample(empty)


def test_an_unknown_sample_kind_is_refused() -> None:
    with pytest.raises(InvalidSampleError, match="cannot use a object"):
        normalize_sample(object())


def test_mixed_column_is_refused_at_inference() -> None:
    with pytest.raises(InvalidSampleError, match="'x' holds values of mixed"):
        infer_schema(pd.DataFrame({"x": [1, "a"]}))


def test_signature_round_trips_through_dict(frame: pd.DataFrame) -> None:
    signature = Signature.infer(frame, np.array([0, 1, 1]))
    assert Signature.from_dict(signature.to_dict()) == signature


# ------------------------------------------------------------------ column validation


def schema_of(frame: pd.DataFrame) -> ColumnSchema:
    schema = infer_schema(frame)
    assert isinstance(schema, ColumnSchema)
    return schema


def test_validate_reorders_by_name_and_drops_unknown_columns(frame: pd.DataFrame) -> None:
    shuffled = frame[list(reversed(frame.columns))].assign(extra=1)
    result = schema_of(frame).validate(shuffled)
    assert list(result.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(result, frame)


def test_validate_accepts_records_and_widens_int_to_float(frame: pd.DataFrame) -> None:
    schema = schema_of(frame[["age", "income"]])
    result = schema.validate([{"age": 40, "income": 1000}, {"income": None, "age": 41}])
    assert result["income"].dtype == np.float64
    assert result["income"].tolist()[0] == 1000.0
    assert np.isnan(result["income"].tolist()[1])


def test_missing_required_column_is_named(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="missing required column 'city'") as info:
        schema_of(frame).validate(frame.drop(columns="city"))
    assert info.value.field == "city"
    assert info.value.expected == "string"


def test_missing_optional_column_is_filled() -> None:
    schema = ColumnSchema(
        (ColumnSpec("a", "float64"), ColumnSpec("b", "float64", nullable=True, required=False))
    )
    result = schema.validate({"a": [1.0, 2.0]})
    assert result["b"].isna().all()


def test_text_in_a_numeric_column_is_refused_with_an_example(frame: pd.DataFrame) -> None:
    bad = frame.astype({"age": object})
    bad.loc[1, "age"] = "forty"
    with pytest.raises(
        InvalidInputError, match="column 'age' expects int64, got .*'forty'"
    ) as info:
        schema_of(frame).validate(bad)
    assert info.value.field == "age"


def test_numbers_in_a_text_column_are_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="'city' expects string"):
        schema_of(frame).validate(frame.assign(city=[1, 2, 3]))


def test_missing_values_in_a_non_nullable_column_are_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="'age' has 1 missing value"):
        schema_of(frame).validate(frame.assign(age=[1, None, 3]))


def test_whole_floats_are_accepted_for_int_columns_fractions_are_not() -> None:
    schema = ColumnSchema((ColumnSpec("n", "int32"),))
    assert schema.validate({"n": [1.0, 2.0]})["n"].dtype == np.int32
    with pytest.raises(InvalidInputError, match="not whole numbers"):
        schema.validate({"n": [1.5]})
    with pytest.raises(InvalidInputError, match="outside"):
        schema.validate({"n": [2**40]})


def test_huge_ints_do_not_silently_lose_precision_as_float() -> None:
    schema = ColumnSchema((ColumnSpec("x", "float32"),))
    with pytest.raises(InvalidInputError, match="lose precision"):
        schema.validate({"x": [2**30]})


def test_float64_narrows_to_float32_when_in_range() -> None:
    schema = ColumnSchema((ColumnSpec("x", "float32"),))
    assert schema.validate({"x": [1.5]})["x"].dtype == np.float32
    with pytest.raises(InvalidInputError, match="out of range"):
        schema.validate({"x": [1e300]})


def test_bool_is_not_a_number() -> None:
    with pytest.raises(InvalidInputError, match="got bool"):
        ColumnSchema((ColumnSpec("x", "float64"),)).validate({"x": [True]})


def test_category_values_outside_the_categories_are_named(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="outside its categories: 'z'"):
        schema_of(frame).validate(frame.assign(plan=["a", "z", "b"]))


def test_dates_are_parsed_from_iso_text(frame: pd.DataFrame) -> None:
    text = frame.assign(since=["2020-01-01", "2021-06-30", "2022-12-31"])
    assert schema_of(frame).validate(text)["since"].tolist() == frame["since"].tolist()
    with pytest.raises(InvalidInputError, match="ISO 8601"):
        schema_of(frame).validate(frame.assign(since=["yesterday", "x", "y"]))


def test_positional_rows_follow_the_signature_order() -> None:
    schema = ColumnSchema((ColumnSpec("a", "int64"), ColumnSpec("b", "string")))
    assert schema.validate([[1, "x"], [2, "y"]])["b"].tolist() == ["x", "y"]
    with pytest.raises(InvalidInputError, match="2 values"):
        schema.validate([[1, "x", 3]])
    with pytest.raises(InvalidInputError, match="2 columns"):
        schema.validate(np.zeros((2, 3)))


def test_an_empty_batch_is_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="no rows"):
        schema_of(frame).validate(frame.iloc[:0])


def test_a_non_table_is_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="expected a table"):
        schema_of(frame).validate("age=3")


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
    pd.testing.assert_frame_equal(schema_of(sample).validate(sample), sample)


# ------------------------------------------------------------------ tensor validation


def test_tensor_checks_rank_and_fixed_dimensions() -> None:
    schema = TensorSchema((TensorSpec("x", "float32", (-1, 3)),))
    assert schema.validate(np.zeros((5, 3))).dtype == np.float32
    with pytest.raises(
        InvalidInputError, match=r"tensor 'x' expects shape \[-1, 3\] .*, got \[5, 4\]"
    ):
        schema.validate(np.zeros((5, 4)))
    with pytest.raises(InvalidInputError, match="got \\[3\\]"):
        schema.validate([1.0, 2.0, 3.0])
    with pytest.raises(InvalidInputError, match="ragged"):
        schema.validate([[1.0, 2.0, 3.0], [1.0]])
    with pytest.raises(InvalidInputError, match="text"):
        schema.validate(np.array([["a", "b", "c"]]))


def test_named_tensors_must_all_be_present() -> None:
    schema = TensorSchema(
        (TensorSpec("ids", "int64", (-1, 4)), TensorSpec("mask", "bool", (-1, 4)))
    )
    batch = {"ids": np.ones((2, 4), "int32"), "mask": np.ones((2, 4), bool)}
    result = schema.validate(batch)
    assert result["ids"].dtype == np.int64
    with pytest.raises(InvalidInputError, match="missing input tensor 'mask'"):
        schema.validate({"ids": batch["ids"]})
