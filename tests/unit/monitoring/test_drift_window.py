"""Drift over a window of a real prediction log (Parquet segments, DuckDB) agrees with
the drift library on the same values and with scipy's tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from scipy.spatial import distance

from drift_logs import NOW, log_table, write_log
from modelport.errors import InvalidArgumentError, MissingStatisticsError
from modelport.monitoring.drift.report import drift_report
from modelport.monitoring.drift.selection import ColumnOptions
from modelport.monitoring.drift_window import drift_over_log
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from modelport.package.stats import reference_statistics


def _frame(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift * 10, 10, size=rows),
            "income": rng.exponential(1000 * (1 + shift), size=rows),
            "few": rng.integers(0, 4, size=rows).astype(float),
            "flag": (rng.random(rows) < 0.3 + shift * 0.3).astype(np.int64),
            "plan": rng.choice(
                ["basic", "pro", "team"], p=[0.5 - shift * 0.3, 0.3, 0.2 + shift * 0.3], size=rows
            ),
        }
    )


def _model_outputs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    score = 1 / (1 + np.exp(-(frame["age"].to_numpy() - 40) / 10))
    return (score > 0.5).astype(np.int64), np.column_stack([1 - score, score])


def _stats(frame: pd.DataFrame) -> dict[str, Any]:
    predictions, probabilities = _model_outputs(frame)
    stats = reference_statistics(frame, predictions, probabilities, classes=[0, 1])
    return json.loads(json.dumps(stats))  # as a package stores them


def _logged(root: Path, frame: pd.DataFrame, *, version: str = "3", start: datetime = NOW) -> None:
    predictions, probabilities = _model_outputs(frame)
    table = log_table(
        frame,
        model="churn",
        version=version,
        start=start,
        predictions=predictions,
        probabilities=probabilities,
    )
    write_log(root, table, model="churn", version=version)


def _current(frame: pd.DataFrame) -> dict[str, Any]:
    predictions, probabilities = _model_outputs(frame)
    return {
        **{name: frame[name] for name in frame},
        "prediction": predictions,
        "probability.0": probabilities[:, 0],
        "probability.1": probabilities[:, 1],
    }


@pytest.mark.parametrize("reference_rows", [500, 5000], ids=["small-reference", "large-reference"])
@pytest.mark.parametrize("shift", [0.0, 1.0], ids=["same", "shifted"])
def test_log_window_equals_the_library_on_the_same_values(
    tmp_path: Path, reference_rows: int, shift: float
) -> None:
    rng = np.random.default_rng(reference_rows)
    stats = _stats(_frame(rng, reference_rows))
    current = _frame(rng, 3000, shift)
    _logged(tmp_path, current)

    window = drift_over_log(str(tmp_path), "churn", stats, version="3")
    expected = drift_report(stats, _current(current))

    assert window.rows == 3000 and window.untested == ()
    got = {c.column: c for c in window.report.columns}
    assert set(got) == {c.column for c in expected.columns}
    for column in expected.columns:
        assert got[column.column].method == column.method
        assert got[column.column].score == pytest.approx(column.score, rel=1e-9, abs=1e-12)
        assert got[column.column].drifted == column.drifted
    assert window.report.dataset_drift == (shift > 0)


def test_small_reference_tests_equal_scipy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    reference = _frame(rng, 800)
    stats = _stats(reference)
    current = _frame(rng, 1500, shift=0.2)
    _logged(tmp_path, current)

    got = {c.column: c for c in drift_over_log(str(tmp_path), "churn", stats).report.columns}

    # KS: the stored sample is the whole reference (<= 2,000 rows), the window is read whole.
    assert got["age"].method == "ks"
    assert got["age"].score == pytest.approx(
        scipy_stats.ks_2samp(reference["age"], current["age"]).pvalue, rel=1e-9
    )
    # Chi-squared over the categories, expected counts scaled to the window's size.
    ref_counts = reference["plan"].value_counts().sort_index()
    cur_counts = current["plan"].value_counts().reindex(ref_counts.index, fill_value=0)
    expected = ref_counts / ref_counts.sum() * cur_counts.sum()
    assert got["plan"].method == "chisquare"
    assert got["plan"].score == pytest.approx(
        scipy_stats.chisquare(cur_counts, expected).pvalue, rel=1e-9
    )
    # Z-test of a binary column: the two-proportion test's p-value.
    n1, n2 = len(reference), len(current)
    p1, p2 = (reference["flag"] == 0).mean(), (current["flag"] == 0).mean()
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = abs(p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert got["flag"].method == "z"
    assert got["flag"].score == pytest.approx(2 * scipy_stats.norm.sf(z), rel=1e-9)


def test_large_reference_distances_equal_scipy(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    reference = _frame(rng, 1800)  # > 1,000 rows: distances; <= 2,000: the sample is exact
    stats = _stats(reference)
    current = _frame(rng, 2500, shift=0.5)
    _logged(tmp_path, current)

    got = {c.column: c for c in drift_over_log(str(tmp_path), "churn", stats).report.columns}

    std = reference["age"].std(ddof=1)
    assert got["age"].method == "wasserstein"
    assert got["age"].score == pytest.approx(
        scipy_stats.wasserstein_distance(reference["age"], current["age"]) / std, rel=1e-9
    )
    ref_shares = reference["plan"].value_counts(normalize=True).sort_index()
    cur_shares = current["plan"].value_counts(normalize=True).reindex(ref_shares.index).fillna(0)
    assert got["plan"].method == "jensenshannon"
    assert got["plan"].score == pytest.approx(
        distance.jensenshannon(ref_shares, cur_shares), rel=1e-9
    )
    # A numeric column with few values: value by value.
    ref_few = reference["few"].value_counts(normalize=True).sort_index()
    cur_few = current["few"].value_counts(normalize=True).reindex(ref_few.index).fillna(0)
    assert got["few"].method == "jensenshannon"
    assert got["few"].score == pytest.approx(distance.jensenshannon(ref_few, cur_few), rel=1e-9)


def test_numeric_distances_over_the_reference_bins_equal_scipy(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    reference = _frame(rng, 1800)
    stats = _stats(reference)
    current = _frame(rng, 2500, shift=0.5)
    _logged(tmp_path, current)
    options = {"income": ColumnOptions("jensenshannon"), "age": ColumnOptions("psi")}

    window = drift_over_log(str(tmp_path), "churn", stats, options=options)

    got = {c.column: c for c in window.report.columns}
    for name, method in (("income", "jensenshannon"), ("age", "psi")):
        edges = np.asarray(stats["features"][name]["histogram"]["edges"])
        ref_bins = np.asarray(stats["features"][name]["histogram"]["counts"], dtype=float)
        index = np.searchsorted(edges, current[name], side="right") - 1
        index = np.clip(index, 0, ref_bins.size - 1)
        cur_bins = np.bincount(index, minlength=ref_bins.size).astype(float)
        p, q = ref_bins / ref_bins.sum(), cur_bins / cur_bins.sum()
        if method == "jensenshannon":
            expected = distance.jensenshannon(p, q)
        else:
            p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
            expected = float(np.sum((q - p) * np.log(q / p)))
        assert got[name].method == method
        assert got[name].score == pytest.approx(expected, rel=1e-9)


def test_sampled_window_stays_within_the_documented_tolerance(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    reference = _frame(rng, 1800)
    stats = _stats(reference)
    current = _frame(rng, 40_000, shift=0.3)
    _logged(tmp_path, current)

    window = drift_over_log(str(tmp_path), "churn", stats, sample_rows=10_000)

    assert window.sampled_rows == 10_000 and window.rows == 40_000 and window.notes
    got = {c.column: c for c in window.report.columns}
    std = reference["age"].std(ddof=1)
    full = scipy_stats.wasserstein_distance(reference["age"], current["age"]) / std
    assert got["age"].score == pytest.approx(full, abs=0.05)
    # Counted columns are never sampled: exact over the whole window.
    ref_shares = reference["plan"].value_counts(normalize=True).sort_index()
    cur_shares = current["plan"].value_counts(normalize=True).reindex(ref_shares.index).fillna(0)
    assert got["plan"].score == pytest.approx(
        distance.jensenshannon(ref_shares, cur_shares), rel=1e-9
    )


def test_window_bounds_versions_and_label_directories(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    stats = _stats(_frame(rng, 2000))
    _logged(tmp_path, _frame(rng, 1000), start=NOW - timedelta(days=2))  # old, like the reference
    _logged(tmp_path, _frame(rng, 1000, shift=1.0), start=NOW - timedelta(minutes=30))
    _logged(tmp_path, _frame(rng, 500), version="4", start=NOW - timedelta(minutes=30))
    labels = tmp_path / "churn" / "_labels" / NOW.date().isoformat()
    labels.mkdir(parents=True)
    pd.DataFrame({"prediction_id": ["x"], "label": [1]}).to_parquet(labels / "1-ab-000000.parquet")

    recent = drift_over_log(
        str(tmp_path), "churn", stats, version="3", since=NOW - timedelta(hours=1)
    )
    old = drift_over_log(str(tmp_path), "churn", stats, version="3", until=NOW - timedelta(days=1))
    every = drift_over_log(str(tmp_path), "churn", stats)

    assert recent.rows == 1000 and recent.report.dataset_drift
    assert old.rows == 1000 and not old.report.dataset_drift
    assert every.rows == 2500
    assert recent.to_dict()["since"] == "2026-03-10T11:00:00Z"


def test_columns_the_log_lacks_are_listed_untested(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    stats = _stats(_frame(rng, 2000))
    frame = _frame(rng, 300).drop(columns=["income"])
    write_log(
        tmp_path,
        log_table(frame, model="churn", version="1", start=NOW),
        model="churn",
        version="1",
    )

    window = drift_over_log(str(tmp_path), "churn", stats)

    assert set(window.untested) == {"income", "prediction", "probability.0", "probability.1"}
    assert {c.column for c in window.report.columns} == {"age", "few", "flag", "plan"}


def test_empty_window_and_absent_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    stats = _stats(_frame(rng, 2000))
    _logged(tmp_path, _frame(rng, 100))

    later = drift_over_log(str(tmp_path), "churn", stats, since=NOW + timedelta(days=1))
    absent = drift_over_log(str(tmp_path), "other", stats)

    for window in (later, absent):
        assert window.rows == 0 and window.report.columns == ()
        assert not window.report.dataset_drift


def test_options_set_method_and_threshold(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    stats = _stats(_frame(rng, 2000))
    _logged(tmp_path, _frame(rng, 2000, shift=0.2))

    window = drift_over_log(
        str(tmp_path),
        "churn",
        stats,
        options={
            "age": ColumnOptions(method="psi", threshold=0.01),
            "plan": ColumnOptions("chisquare"),
        },
    )

    got = {c.column: c for c in window.report.columns}
    assert (got["age"].method, got["age"].threshold, got["age"].drifted) == ("psi", 0.01, True)
    assert got["plan"].method == "chisquare" and got["plan"].threshold == 0.05
    with pytest.raises(InvalidArgumentError, match="unknown columns"):
        drift_over_log(str(tmp_path), "churn", stats, options={"nope": ColumnOptions("ks")})


def test_missing_statistics_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MissingStatisticsError):
        drift_over_log(str(tmp_path), "churn", None)
    with pytest.raises(MissingStatisticsError, match="version 1"):
        drift_over_log(str(tmp_path), "churn", {"stats_version": 1, "features": {}})


def test_rows_written_by_the_log_writer(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    stats = _stats(_frame(rng, 2000))
    frame = _frame(rng, 200, shift=1.0)
    writer = PredictionLogWriter(str(tmp_path))
    now = datetime.now(UTC)
    for i, row in enumerate(frame.to_dict(orient="records")):
        writer.put(
            PredictionRecord(
                f"r-{i}",
                "r",
                now,
                "churn",
                "3",
                "v2",
                0.001,
                200,
                inputs=row,
                outputs={},
            )
        )
    writer.close()

    window = drift_over_log(str(tmp_path), "churn", stats, since=now - timedelta(minutes=1))

    expected = drift_report(stats, frame)
    assert window.rows == 200
    assert [c.score for c in window.report.columns] == pytest.approx(
        [c.score for c in expected.columns], rel=1e-9
    )
