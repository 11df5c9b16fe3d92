"""Live performance: the log joined with the latest labels, equal to scikit-learn's
metrics on the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from fsspec.implementations.local import LocalFileSystem
from sklearn import metrics as skm

from modelport.errors import InvalidArgumentError
from modelport.monitoring.feedback.store import Label, write_labels
from modelport.monitoring.performance import live_performance
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from modelport.monitoring.prediction_log.segments import day_dir, write_segment

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOL = 1e-12


def log(
    root: Path,
    predictions: list[Any],
    probabilities: list[list[float]] | None = None,
    *,
    version: str = "1",
    start: datetime = T0,
    prefix: str = "r",
    status: int = 200,
) -> list[str]:
    writer = PredictionLogWriter(str(root), flush_interval_s=60)
    ids = []
    for i, value in enumerate(predictions):
        outputs: dict[str, Any] = {"predictions": value}
        if probabilities is not None:
            outputs["probabilities"] = probabilities[i]
        ids.append(f"{prefix}{i}-0")
        writer.put(
            PredictionRecord(
                ids[-1],
                f"{prefix}{i}",
                start + timedelta(seconds=i),
                "churn",
                version,
                "v2",
                0.001,
                status,
                {"x": i},
                outputs,
            )
        )
    writer.close()
    return ids


def label(
    root: Path,
    pairs: list[tuple[str, Any]],
    *,
    kind: str = "prediction_id",
    now: datetime | None = None,
) -> None:
    labels = [Label.of(kind, key, value) for key, value in pairs]
    write_labels(str(root), "churn", labels, actor="test", source="api", now=now)


def close(actual: dict[str, float], expected: dict[str, float]) -> None:
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, abs=TOL), name


def test_binary_with_probabilities_equals_scikit_learn(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p1 = rng.random(400)
    y_pred = (p1 > 0.5).astype(int)
    y_true = (rng.random(400) < p1).astype(int)
    ids = log(tmp_path, y_pred.tolist(), np.c_[1 - p1, p1].tolist())
    labeled = [i for i in range(400) if i % 4]  # 75% coverage
    label(tmp_path, [(ids[i], int(y_true[i])) for i in labeled])
    report = live_performance(str(tmp_path), "churn")
    t, p, s = y_true[labeled], y_pred[labeled], p1[labeled]
    assert report.task == "classification" and report.positive_class == 1
    assert (report.predictions, report.labeled, report.coverage) == (400, 300, 0.75)
    assert report.probability_rows == 300
    close(
        report.metrics,
        {
            "accuracy": skm.accuracy_score(t, p),
            "precision": skm.precision_score(t, p),
            "recall": skm.recall_score(t, p),
            "f1": skm.f1_score(t, p),
            "roc_auc": skm.roc_auc_score(t, s),
            "log_loss": skm.log_loss(t, np.c_[1 - s, s]),
        },
    )


def test_multiclass_strings_use_macro_averages_and_one_vs_rest_auc(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    classes = np.array(["bronze", "gold", "silver"])
    proba = rng.dirichlet([1, 1, 1], 300)
    y_pred = classes[proba.argmax(axis=1)]
    y_true = np.where(rng.random(300) < 0.7, y_pred, classes[rng.integers(0, 3, 300)])
    ids = log(tmp_path, y_pred.tolist(), proba.tolist())
    label(tmp_path, [(ids[i], str(y_true[i])) for i in range(300)])
    report = live_performance(str(tmp_path), "churn")
    assert report.task == "classification" and report.positive_class is None
    close(
        report.metrics,
        {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "precision": skm.precision_score(y_true, y_pred, average="macro"),
            "recall": skm.recall_score(y_true, y_pred, average="macro"),
            "f1": skm.f1_score(y_true, y_pred, average="macro"),
            "roc_auc": skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro"),
            "log_loss": skm.log_loss(y_true, proba, labels=classes),
        },
    )


def test_binary_strings_take_the_later_class_as_positive(tmp_path: Path) -> None:
    y_pred = ["no", "yes", "yes", "no", "yes", "no"]
    y_true = ["no", "yes", "no", "no", "no", "yes"]
    ids = log(tmp_path, y_pred)
    label(tmp_path, list(zip(ids, y_true, strict=True)))
    report = live_performance(str(tmp_path), "churn")
    assert report.positive_class == "yes"
    close(
        report.metrics,
        {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "precision": skm.precision_score(y_true, y_pred, pos_label="yes"),
            "recall": skm.recall_score(y_true, y_pred, pos_label="yes"),
            "f1": skm.f1_score(y_true, y_pred, pos_label="yes"),
        },
    )


def test_regression_equals_scikit_learn(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    y_pred = rng.normal(100, 20, 250)
    y_true = y_pred + rng.normal(0, 5, 250)
    ids = log(tmp_path, y_pred.tolist())
    label(tmp_path, [(ids[i], float(y_true[i])) for i in range(250)])
    report = live_performance(str(tmp_path), "churn")
    assert report.task == "regression"
    close(
        report.metrics,
        {
            "mae": skm.mean_absolute_error(y_true, y_pred),
            "rmse": skm.root_mean_squared_error(y_true, y_pred),
            "r2": skm.r2_score(y_true, y_pred),
        },
    )


def test_the_task_can_be_given(tmp_path: Path) -> None:
    ids = log(tmp_path, [1.0, 2.0, 3.0, 4.0])
    label(tmp_path, list(zip(ids, [1.0, 2.0, 4.0, 4.0], strict=True)))
    assert live_performance(str(tmp_path), "churn").task == "classification"
    report = live_performance(str(tmp_path), "churn", task="regression")
    assert report.metrics["mae"] == pytest.approx(0.25)


def test_corrections_count_with_their_latest_value(tmp_path: Path) -> None:
    ids = log(tmp_path, [1, 1, 0, 0])
    label(tmp_path, list(zip(ids, [0, 0, 1, 1], strict=True)), now=T0 + timedelta(hours=1))
    label(tmp_path, [(ids[0], 1), (ids[2], 0)], now=T0 + timedelta(hours=2))
    assert live_performance(str(tmp_path), "churn").metrics["accuracy"] == 0.5


def test_window_and_version_select_the_rows(tmp_path: Path) -> None:
    old = log(tmp_path, [1, 1], start=T0 - timedelta(days=2), prefix="old")
    v1 = log(tmp_path, [1, 0], prefix="a")
    v2 = log(tmp_path, [0, 0, 0], version="2", prefix="b")
    failed = log(tmp_path, [1], prefix="f", status=500)
    label(tmp_path, [(k, 1) for k in old + v1 + v2 + failed])
    since, until = T0 - timedelta(hours=1), T0 + timedelta(hours=1)
    report = live_performance(str(tmp_path), "churn", since=since, until=until)
    assert (report.predictions, report.labeled) == (5, 5)  # not the old rows, nor the 500
    assert report.metrics["accuracy"] == pytest.approx(1 / 5)
    only_v2 = live_performance(str(tmp_path), "churn", version="2", since=since)
    assert (only_v2.version, only_v2.predictions, only_v2.metrics["accuracy"]) == ("2", 3, 0.0)
    everything = live_performance(str(tmp_path), "churn")
    assert everything.predictions == 7


def test_id_column_labels_apply_to_every_prediction_of_that_id(tmp_path: Path) -> None:
    table = pa.table(
        {
            "prediction_id": ["a-0", "a-1", "b-0", "c-0"],
            "time": pa.array([T0] * 4, pa.timestamp("us", "UTC")),
            "status": pa.array([200] * 4, pa.int32()),
            "id_customer_id": ["c1", "c1", "c2", "c3"],
            "out_predictions": [1, 0, 1, 1],
        }
    )
    write_segment(LocalFileSystem(), day_dir(str(tmp_path), "churn", "1", T0.date()), "s", table)
    label(tmp_path, [("c1", 1), ("c2", 0)], kind="customer_id", now=T0)
    label(tmp_path, [("a-1", 0)], now=T0 + timedelta(minutes=1))  # later: wins for a-1
    report = live_performance(str(tmp_path), "churn")
    assert (report.predictions, report.labeled) == (4, 3)
    # a-0: 1 vs 1 right; a-1: 0 vs 0 (its own, later label) right; b-0: 1 vs 0 wrong
    assert report.metrics["accuracy"] == pytest.approx(2 / 3)


def test_unmatched_labels_are_those_matching_no_logged_row(tmp_path: Path) -> None:
    ids = log(tmp_path, [1, 0])
    label(tmp_path, [(ids[0], 1), ("ghost-0", 1)])
    label(tmp_path, [("nobody", 1)], kind="customer_id")
    report = live_performance(str(tmp_path), "churn")
    assert (report.labeled, report.unmatched_labels) == (1, 2)


def test_no_labels_and_no_log_give_empty_reports(tmp_path: Path) -> None:
    empty = live_performance(str(tmp_path), "churn")
    assert (empty.predictions, empty.labeled, empty.metrics, empty.task) == (0, 0, {}, None)
    log(tmp_path, [1, 0])
    unlabeled = live_performance(str(tmp_path), "churn")
    assert (unlabeled.predictions, unlabeled.coverage, unlabeled.metrics) == (2, 0.0, {})
    assert unlabeled.to_dict()["predictions"] == 2


def test_naive_times_and_unknown_tasks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="naive"):
        live_performance(str(tmp_path), "churn", since=datetime(2026, 1, 1))
    with pytest.raises(InvalidArgumentError, match="classification or regression"):
        live_performance(str(tmp_path), "churn", task="ranking")  # type: ignore[arg-type]


def test_any_fsspec_uri_holds_log_and_labels() -> None:
    import uuid

    from modelport.monitoring.feedback.intake import labels_table, receive

    uri = f"memory://perf-{uuid.uuid4().hex}"
    writer = PredictionLogWriter(uri, flush_interval_s=60)
    for i in range(4):
        writer.put(
            PredictionRecord(
                f"r{i}-0",
                f"r{i}",
                T0,
                "churn",
                "1",
                "v2",
                0.001,
                200,
                {"x": i},
                {"predictions": i % 2},
            )
        )
    writer.close()
    labels = labels_table([Label.of("prediction_id", "r1-0", 1), Label.of("prediction_id", "x", 1)])
    result = receive(uri, "churn", labels, actor="a", source="api")
    assert (result.accepted, result.unknown) == (2, 1)
    report = live_performance(uri, "churn")
    assert (report.predictions, report.labeled, report.metrics["accuracy"]) == (4, 1, 1.0)
