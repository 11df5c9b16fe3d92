"""The rows an export is checked on: the input example, then rows drawn feature by
feature from the package's reference statistics, in the signature's types."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature, TensorSchema, TensorSpec
from modelport.package.export.rows import check_rows
from modelport.package.stats import reference_statistics


def test_rows_are_the_example_then_draws_from_each_features_statistics() -> None:
    rng = np.random.default_rng(0)
    sample = pd.DataFrame(
        {
            "age": rng.integers(18, 90, 500),
            "income": rng.normal(3000, 500, 500),
            "city": rng.choice(["paris", "rome"], 500),
            "member": rng.random(500) < 0.3,
        }
    )
    signature = Signature(
        ColumnSchema(
            (
                ColumnSpec("age", "int64"),
                ColumnSpec("income", "float64"),
                ColumnSpec("city", "string"),
                ColumnSpec("member", "bool"),
            )
        )
    )
    example = sample.head(5)

    rows = check_rows(example, reference_statistics(sample), signature, count=100)

    assert (rows.example_rows, rows.reference_rows, rows.note) == (5, 100, None)
    batch = rows.batch
    assert len(batch) == 105
    pd.testing.assert_frame_equal(batch.head(5), example, check_dtype=False)
    drawn = batch.iloc[5:]
    assert drawn["age"].between(18, 89).all() and drawn["age"].dtype == np.int64
    assert drawn["income"].between(sample["income"].min(), sample["income"].max()).all()
    assert set(drawn["city"]) == {"paris", "rome"}
    assert drawn["member"].dtype == bool and 0 < drawn["member"].mean() < 1


def test_a_matrix_is_drawn_column_by_column() -> None:
    rng = np.random.default_rng(1)
    sample = np.column_stack([rng.normal(0, 1, 300), rng.uniform(10, 20, 300)]).astype(np.float32)
    signature = Signature(TensorSchema((TensorSpec("input", "float32", (-1, 2)),)))

    rows = check_rows(sample[:5], reference_statistics(sample), signature, count=50)

    assert rows.batch.shape == (55, 2) and rows.batch.dtype == np.float32
    assert (rows.batch[5:, 1] >= 10).all() and (rows.batch[5:, 1] <= 20).all()


def test_without_statistics_the_example_alone_is_checked() -> None:
    signature = Signature(ColumnSchema((ColumnSpec("x", "float64"),)))
    example = pd.DataFrame({"x": [1.0, 2.0]})

    rows = check_rows(example, None, signature)

    assert rows.batch is example and (rows.example_rows, rows.reference_rows) == (2, 0)
    assert rows.note == "the package has no reference statistics"
