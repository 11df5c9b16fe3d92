import json

import numpy as np
import pandas as pd
import pytest

from modelport.package.stats import (
    categorical_summary,
    numeric_summary,
    prediction_statistics,
    reference_statistics,
)


def test_numeric_histogram_uses_quantile_bins_of_equal_mass() -> None:
    values = np.random.default_rng(0).exponential(size=1000)
    summary = numeric_summary(values, bins=10)
    counts = summary["histogram"]["counts"]
    edges = summary["histogram"]["edges"]
    assert len(edges) == 11 and len(counts) == 10
    assert sum(counts) == 1000
    assert max(counts) - min(counts) <= 2  # quantile edges: every bin holds ~100
    assert edges[0] == summary["min"] and edges[-1] == summary["max"]
    assert summary["mean"] == pytest.approx(values.mean())
    assert summary["std"] == pytest.approx(values.std(ddof=1))
    assert summary["quantiles"]["p50"] == pytest.approx(np.median(values))


def test_numeric_missing_rate_and_discrete_values() -> None:
    summary = numeric_summary(np.array([1, 1, 1, 2, np.nan]))
    assert summary["missing_rate"] == pytest.approx(0.2)
    assert summary["count"] == 5
    assert sum(summary["histogram"]["counts"]) == 4
    edges = summary["histogram"]["edges"]
    assert edges[0] == 1.0 and edges[-1] == 2.0
    assert len(edges) == len(set(edges))  # repeated quantile edges are merged


def test_constant_column_has_one_bin() -> None:
    summary = numeric_summary(np.full(7, 3.5))
    assert summary["histogram"] == {"edges": [3.5], "counts": [7]}
    assert summary["std"] == 0.0


def test_all_missing_numeric_column() -> None:
    assert numeric_summary(np.array([np.nan, np.nan])) == {
        "kind": "numeric",
        "count": 2,
        "missing_rate": 1.0,
    }


def test_categorical_top_values_and_other_share() -> None:
    values = ["a"] * 5 + ["b"] * 3 + ["c", None]
    summary = categorical_summary(values, top_k=2)
    assert summary["top"] == {"a": 0.5, "b": 0.3}
    assert summary["other_rate"] == pytest.approx(0.1)
    assert summary["missing_rate"] == pytest.approx(0.1)
    assert summary["distinct"] == 3


def test_reference_statistics_cover_every_column_kind() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, np.nan],
            "city": ["a", "b", "a", "a"],
            "flag": [True, False, True, True],
            "when": pd.to_datetime(["2020-01-01", "2020-01-02", None, "2020-01-04"]),
            "plan": pd.Categorical(["p", "q", "p", "p"]),
        }
    )
    stats = reference_statistics(frame, np.array([0, 1, 0, 0]), np.array([[0.9, 0.1]] * 4), [0, 1])
    kinds = {name: f["kind"] for name, f in stats["features"].items()}
    assert kinds == {
        "x": "numeric",
        "city": "categorical",
        "flag": "categorical",
        "when": "datetime",
        "plan": "categorical",
    }
    assert stats["features"]["when"]["missing_rate"] == pytest.approx(0.25)
    assert stats["predictions"]["outputs"]["top"] == {"0": 0.75, "1": 0.25}
    assert stats["predictions"]["probabilities"]["1"]["mean"] == pytest.approx(0.1)
    assert stats["rows"] == 4
    json.dumps(stats, allow_nan=False)  # it must be writable as strict JSON


def test_tensor_features_are_summarized_per_column() -> None:
    stats = reference_statistics(np.arange(12, dtype=float).reshape(4, 3))
    assert list(stats["features"]) == ["input[0]", "input[1]", "input[2]"]
    images = reference_statistics(np.zeros((2, 4, 4)))
    assert list(images["features"]) == ["input"]


def test_regression_predictions_are_numeric() -> None:
    stats = prediction_statistics(np.linspace(0, 1, 100))
    assert stats["outputs"]["kind"] == "numeric"


def test_numeric_summary_keeps_what_the_drift_tests_need() -> None:
    from modelport.package.stats import SAMPLE_SIZE, STATS_VERSION

    few = numeric_summary(np.array([0.0, 1.0, 1.0, np.nan]))
    assert few["unique"] == 2
    assert few["value_counts"] == {"0.0": 1, "1.0": 2}
    assert sorted(few["sample"]) == [0.0, 1.0, 1.0]
    many = numeric_summary(np.random.default_rng(3).normal(size=3 * SAMPLE_SIZE))
    assert many["unique"] == 3 * SAMPLE_SIZE and "value_counts" not in many
    assert len(many["sample"]) == SAMPLE_SIZE
    assert reference_statistics(pd.DataFrame({"x": [1.0]}))["stats_version"] == STATS_VERSION == 2


def test_a_wide_table_gets_smaller_samples_within_the_budget() -> None:
    frame = pd.DataFrame(np.random.default_rng(4).normal(size=(3000, 150)))
    stats = reference_statistics(frame)
    sizes = {len(summary["sample"]) for summary in stats["features"].values()}
    assert sizes == {200_000 // 150}
