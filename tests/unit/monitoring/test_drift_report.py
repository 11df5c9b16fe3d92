"""Choosing a test per column, per-column overrides, the dataset verdict, and
statistics that lack what the tests need."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.errors import InvalidArgumentError, MissingStatisticsError
from modelport.monitoring.drift.reference import BinCounts, ColumnReference
from modelport.monitoring.drift.report import drift_report, reference_columns
from modelport.monitoring.drift.selection import ColumnOptions, default_method
from modelport.package.stats import reference_statistics


def _rng(*key: float) -> np.random.Generator:
    """The same data for the same arguments, whatever order the tests run in."""
    return np.random.default_rng([11, *(round(k * 1000) for k in key)])


def _frame(rows: int, shift: float = 0.0) -> pd.DataFrame:
    rng = _rng(rows, shift)
    return pd.DataFrame(
        {
            "wide": rng.normal(loc=shift, size=rows),
            "few": rng.integers(0, 4, size=rows).astype(float),
            "flag": rng.integers(0, 2, size=rows),
            "color": rng.choice(["red", "green", "blue"], size=rows),
            "yes": rng.choice([True, False], size=rows),
        }
    )


def _stats(rows: int) -> dict[str, Any]:
    # Through JSON, as a package stores them.
    return json.loads(json.dumps(reference_statistics(_frame(rows))))


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (1000, {"wide": "ks", "few": "chisquare", "flag": "z", "color": "chisquare", "yes": "z"}),
        (
            1001,
            {
                "wide": "wasserstein",
                "few": "jensenshannon",
                "flag": "jensenshannon",
                "color": "jensenshannon",
                "yes": "jensenshannon",
            },
        ),
    ],
)
def test_default_methods_follow_evidentlys_rule(rows: int, expected: dict[str, str]) -> None:
    report = drift_report(_stats(rows), _frame(300))
    assert {c.column: c.method for c in report.columns} == expected
    thresholds = {c.method: c.threshold for c in report.columns}
    assert all(t == (0.05 if m in ("ks", "chisquare", "z") else 0.1) for m, t in thresholds.items())


def test_a_numeric_column_with_five_values_gets_chisquare_six_gets_ks() -> None:
    five = reference_columns(reference_statistics(pd.DataFrame({"x": np.arange(100) % 5})))
    six = reference_columns(reference_statistics(pd.DataFrame({"x": np.arange(100) % 6})))
    assert default_method(five["x"], 100) == "chisquare"
    assert default_method(six["x"], 100) == "ks"


def test_a_shift_drifts_the_column_and_the_dataset_by_share() -> None:
    stats = _stats(5000)
    shifted = _frame(1000, shift=1.0)
    report = drift_report(stats, shifted)
    drifted = {c.column for c in report.columns if c.drifted}
    assert drifted == {"wide"}
    assert report.share_drifted == pytest.approx(0.2)
    assert not report.dataset_drift
    assert drift_report(stats, shifted, drift_share=0.2).dataset_drift


def test_the_dataset_drifts_when_half_its_columns_do() -> None:
    stats = _stats(5000)
    current = _frame(1000, shift=1.0)
    current["color"] = "red"
    current["yes"] = True
    report = drift_report(stats, current[["wide", "color", "yes", "few"]])
    assert report.drifted_columns == 3 and report.dataset_drift


def test_method_and_threshold_can_be_set_per_column() -> None:
    options = {
        "wide": ColumnOptions(method="psi", threshold=0.5),
        "color": ColumnOptions(threshold=0.0),
    }
    report = drift_report(_stats(5000), _frame(1000, shift=0.3), options=options)
    by_name = {c.column: c for c in report.columns}
    assert by_name["wide"].method == "psi" and by_name["wide"].threshold == 0.5
    assert not by_name["wide"].drifted
    assert by_name["color"].method == "jensenshannon" and by_name["color"].drifted
    assert by_name["few"].threshold == 0.1


def test_bad_options_and_columns_are_clear_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown drift method 'kl'; accepted: ks"):
        ColumnOptions(method="kl")
    with pytest.raises(InvalidArgumentError, match=r"unknown columns \['nope'\]"):
        drift_report(_stats(100), _frame(10), options={"nope": ColumnOptions()})
    with pytest.raises(InvalidArgumentError, match=r"columns the reference does not: \['extra'\]"):
        drift_report(_stats(100), {"extra": np.zeros(3)})


def test_counts_from_a_streaming_histogram_are_accepted() -> None:
    stats = _stats(5000)
    edges = np.asarray(stats["features"]["wide"]["histogram"]["edges"])
    current = np.clip(_rng(2000, 99).normal(size=2000), edges[0], edges[-1])
    counts = np.histogram(current, edges)[0].tolist()
    report = drift_report(stats, {"wide": BinCounts(counts)})
    assert report.columns[0].method == "wasserstein" and not report.columns[0].drifted


def test_predictions_and_probabilities_are_columns() -> None:
    frame = _frame(500)
    stats = reference_statistics(
        frame,
        predictions=np.array(["a", "b"] * 250),
        probabilities=_rng(500, 98).random((500, 2)),
        classes=["a", "b"],
    )
    columns = reference_columns(stats)
    assert {"prediction", "probability.a", "probability.b"} <= set(columns)
    report = drift_report(stats, {"prediction": np.array(["a"] * 100)})
    assert report.columns[0].method == "z" and report.columns[0].drifted


def test_version_one_statistics_say_they_are_missing_and_how_to_recompute() -> None:
    stats = _stats(100)
    stats["stats_version"] = 1
    for summary in stats["features"].values():
        for key in ("unique", "value_counts", "sample"):
            summary.pop(key, None)
    with pytest.raises(
        MissingStatisticsError,
        match="version 1.*modelport version stats NAME/VERSION --sample FILE",
    ):
        drift_report(stats, _frame(10))


def test_a_package_without_statistics_says_so() -> None:
    with pytest.raises(MissingStatisticsError, match="no reference statistics.*--sample"):
        drift_report(None, _frame(10))


def test_a_summary_lacking_a_field_names_the_column_and_field() -> None:
    ref = ColumnReference("wide", {"kind": "numeric", "count": 10})
    with pytest.raises(MissingStatisticsError, match="column 'wide' have no 'unique'"):
        default_method(ref, 10)
