"""Monitoring reports: numbers from a real prediction log, the page and its JSON twin."""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelport.errors import InvalidArgumentError
from modelport.monitoring.drift.reference import OTHER, ColumnReference, binned, categorical
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord, query
from modelport.monitoring.prediction_log.records import BASE_SCHEMA
from modelport.monitoring.prediction_log.segments import day_dir, write_segment
from modelport.monitoring.report import Sources, Subject, build_report, render
from modelport.monitoring.report.aggregates import LogScan
from modelport.monitoring.report.build import compare_metrics
from modelport.monitoring.report.model import AlertEvent, Performance, Window
from modelport.package.stats import reference_statistics

pytestmark = pytest.mark.timeout(120)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 10, tzinfo=UTC)
PLANS = ["free", "pro", "team"]


def reference_frame(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, rows),
            "calls": rng.integers(0, 4, rows),  # few values: counted per value
            "plan": rng.choice(PLANS, rows),
        }
    )


@pytest.fixture
def stats() -> dict[str, Any]:
    return reference_statistics(reference_frame())


def records(rows: int, *, days: int = 3, seed: int = 1) -> list[PredictionRecord]:
    """Two rows per request spread over ``days`` before NOW; every 10th request fails
    (500) and every 10th from the 5th is refused (422); ``age`` moves up each day."""
    rng = np.random.default_rng(seed)
    start = NOW - timedelta(days=days)
    step = timedelta(days=days) / rows
    out = []
    for i in range(rows):
        time = start + step * i
        request = i // 2
        status = {0: 500, 5: 422}.get(request % 10, 200)
        failed = status != 200
        inputs = {
            "age": float(rng.normal(40 + 5 * (time - start).days, 10)),
            "calls": int(rng.integers(0, 5)),  # 4 is new: it goes to <other>
            "plan": str(rng.choice([*PLANS, "enterprise"])),
        }
        out.append(
            PredictionRecord(
                prediction_id=f"r{request}-{i % 2}",
                request_id=f"r{request}",
                time=time,
                model="churn",
                version="1",
                protocol="v2",
                latency_s=0.001 * (1 + request % 7),
                status=status,
                inputs={} if failed else inputs,
                outputs={} if failed else {"predictions": int(rng.integers(0, 2))},
            )
        )
    return out


def write_log(root: Path | str, rows: list[PredictionRecord]) -> str:
    writer = PredictionLogWriter(str(root), flush_interval_s=60, max_queue_rows=len(rows) + 1)
    for row in rows:
        assert writer.put(row)
    writer.close()
    return str(root)


@pytest.fixture
def log(tmp_path: Path) -> str:
    return write_log(tmp_path / "log", records(600))


def report_of(log: str, stats: Any, **subject: Any) -> Any:
    return build_report(
        Subject(log, "churn", "1", stats, **subject),
        NOW - timedelta(days=3),
        NOW,
        sources=Sources(),
        now=NOW,
    )


def test_serving_numbers_equal_pandas_on_the_same_rows(log: str, stats: Any) -> None:
    report = report_of(log, stats)
    frame = query(log, "churn").to_pandas()
    requests = frame.groupby("request_id").agg(
        time=("time", "min"), latency=("latency_s", "max"), status=("status", "max")
    )
    assert len(frame) == 600
    assert report.serving.rows == int((frame["status"] < 400).sum()) == 480
    assert report.serving.requests == len(requests) == 300
    assert report.serving.errors == int((requests["status"] >= 500).sum()) == 30
    assert report.serving.error_rate == pytest.approx(0.1)
    assert report.serving.latency_p50_s == pytest.approx(requests["latency"].quantile(0.5))
    assert report.serving.latency_p99_s == pytest.approx(requests["latency"].quantile(0.99))
    assert report.window.bucket == "hour"
    assert len(report.timeline) == 72
    assert sum(b.rows for b in report.timeline) == 480
    hours = requests.groupby(requests["time"].dt.floor("h"))
    for bucket in report.timeline:
        group = hours.get_group(pd.Timestamp(bucket.start)) if bucket.requests else None
        if group is None:
            continue
        assert bucket.requests == len(group)
        assert bucket.latency_p99_s == pytest.approx(group["latency"].quantile(0.99))


def test_histograms_count_answered_values_on_the_reference_bins(log: str, stats: Any) -> None:
    report = report_of(log, stats)
    frame = query(log, "churn").to_pandas()
    answered = frame[frame["status"] < 400]
    found = {h.column: h for h in report.histograms}
    assert set(found) == {"age", "calls", "plan"}  # the prediction has no reference here

    age = ColumnReference("age", stats["features"]["age"])
    expected, observed = binned(age, answered["in_age"])
    assert found["age"].kind == "bins"
    assert found["age"].current == tuple(int(n) for n in observed)
    assert found["age"].reference == tuple(expected)
    assert found["age"].edges == tuple(stats["features"]["age"]["histogram"]["edges"])

    for name in ("calls", "plan"):
        ref = ColumnReference(name, stats["features"][name])
        expected, observed = categorical(ref, answered[f"in_{name}"])
        assert found[name].kind == "categories"
        assert found[name].current == tuple(int(n) for n in observed)
        assert found[name].reference == pytest.approx(tuple(expected))
    assert found["plan"].labels[-1] == OTHER
    assert found["plan"].current[-1] == int((answered["in_plan"] == "enterprise").sum())
    assert found["calls"].labels == ("0", "1", "2", "3", OTHER)


def test_labels_next_to_versions_are_not_predictions(log: str, stats: Any) -> None:
    before = report_of(log, stats).serving
    labels = pa.table(
        {
            "prediction_id": ["r1-0"],
            "time": pa.array([NOW - timedelta(hours=1)], type=pa.timestamp("us", tz="UTC")),
            "label": [1],
        }
    )
    directory = Path(log) / "churn" / "_labels" / (NOW.date().isoformat())
    directory.mkdir(parents=True)
    pq.write_table(labels, directory / "1-abcd-000000.parquet")
    assert report_of(log, stats).serving == before


def test_an_empty_window_still_renders(tmp_path: Path, stats: Any) -> None:
    report = report_of(str(tmp_path / "nothing"), stats)
    assert report.serving.rows == 0
    assert report.serving.error_rate is None
    assert report.histograms == ()
    assert report.notes[0] == "The prediction log has no rows for this model in the window."
    page = render(report)
    assert "No histograms for this window." in page
    assert json.loads(render(report, "json"))["serving"]["rows"] == 0


def test_missing_statistics_are_a_note_not_a_failure(log: str) -> None:
    report = report_of(log, None)
    assert report.drift is None
    assert report.histograms == ()
    assert any("no reference statistics" in note for note in report.notes)
    assert report.serving.rows == 480


def test_json_carries_the_numbers_the_page_shows(log: str, stats: Any) -> None:
    alerts = [
        {"time": NOW - timedelta(hours=2), "rule": "p99", "state": "firing", "value": 0.25},
        AlertEvent(NOW - timedelta(hours=1), "p99", "resolved", 0.01, "back under 0.1 s"),
    ]
    report = build_report(
        Subject(log, "churn", "1", stats, {"test_accuracy": 0.91}),
        NOW - timedelta(days=3),
        NOW,
        sources=Sources(alerts=lambda since, until: alerts),
        now=NOW,
    )
    data = json.loads(render(report, "json"))
    assert data == json.loads(json.dumps(report.to_dict()))
    assert data["model"] == "churn"
    assert data["version"] == "1"
    assert data["window"] == {
        "since": "2026-03-07T12:00:00+00:00",
        "until": "2026-03-10T12:00:00+00:00",
        "bucket": "hour",
        "bucket_seconds": 3600,
    }
    assert data["serving"]["error_rate"] == pytest.approx(0.1)
    assert [a["state"] for a in data["alerts"]] == ["resolved", "firing"]  # newest first
    assert len(data["histograms"]) == 3
    page = render(report)
    assert ">480<" in page  # the predictions card
    assert "10.0%" in page  # the error rate card
    assert "back under 0.1 s" in page
    assert '<span class="pill bad">firing</span>' in page


def test_the_page_fetches_nothing(log: str, stats: Any) -> None:
    page = render(report_of(log, stats))
    assert "<script" not in page
    assert not re.search(r"\b(src|href)\s*=", page)
    assert "url(" not in page
    assert "@import" not in page
    # The only URL is SVG's namespace, which names a vocabulary and is never fetched.
    assert set(re.findall(r"https?://[^\"' ]+", page)) == {"http://www.w3.org/2000/svg"}


def test_text_from_the_data_is_escaped(tmp_path: Path) -> None:
    frame = pd.DataFrame({"<b>x</b>": np.arange(50.0)})
    stats = reference_statistics(frame)
    rows = [
        PredictionRecord(
            f"r{i}-0", f"r{i}", NOW - timedelta(minutes=i + 1), "churn", "1", "v2", 0.001, 200,
            {"<b>x</b>": float(i)}, {},
        )
        for i in range(20)
    ]  # fmt: skip
    log = write_log(tmp_path / "log", rows)
    page = render(report_of(log, stats))
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


def test_live_metrics_meet_registered_ones_under_other_spellings() -> None:
    compared = compare_metrics(
        {"accuracy": 0.8, "roc_auc": 0.85, "log_loss": 0.4},
        {"test_accuracy": 0.9, "auc": 0.88, "f1_score": 0.7, "training_seconds": 12.0},
    )
    table = {m.name: (m.live, m.registered) for m in compared}
    assert table == {
        "accuracy": (0.8, 0.9),
        "roc_auc": (0.85, 0.88),
        "log_loss": (0.4, None),
        "f1": (None, 0.7),
    }
    assert compared[0].change == pytest.approx(-0.1)


def test_windows_up_to_three_days_go_by_hour_longer_ones_by_day() -> None:
    assert Window.of(NOW - timedelta(days=3), NOW).bucket == "hour"
    assert Window.of(NOW - timedelta(days=3, seconds=1), NOW).bucket == "day"


def write_fast_log(root: Path, *, days: int, rows_per_day: int, features: int) -> None:
    """A log written as the writer lays it out (one segment per day), built column-wise
    so a month of rows takes a moment."""
    rng = np.random.default_rng(3)
    for day in range(days):
        start = MIDNIGHT - timedelta(days=days - day)
        times = pd.date_range(start, periods=rows_per_day, freq=timedelta(days=1) / rows_per_day)
        columns: dict[str, Any] = {
            "prediction_id": [f"d{day}-{i}-0" for i in range(rows_per_day)],
            "request_id": [f"d{day}-{i}" for i in range(rows_per_day)],
            "time": pa.array(times, type=pa.timestamp("us", tz="UTC")),
            "model": ["churn"] * rows_per_day,
            "version": ["1"] * rows_per_day,
            "protocol": ["v2"] * rows_per_day,
            "latency_s": rng.gamma(2.0, 0.002, rows_per_day),
            "status": pa.array(np.where(rng.random(rows_per_day) < 0.01, 500, 200), pa.int32()),
        }
        for j in range(features):
            columns[f"in_f{j}"] = rng.normal(0.02 * day * (j % 3), 1.0, rows_per_day)
        table = pa.table(
            {k: pa.array(v, type=BASE_SCHEMA.field(k).type) if k in BASE_SCHEMA.names else v
             for k, v in columns.items()}
        )  # fmt: skip
        directory = day_dir(str(root), "churn", "1", start.date())
        write_segment_named(directory, table)


def write_segment_named(directory: str, table: pa.Table) -> None:
    import fsspec

    write_segment(fsspec.filesystem("file"), directory, f"1-{secrets.token_hex(4)}-0", table)


def test_thirty_days_of_twenty_features_stay_under_two_megabytes(tmp_path: Path) -> None:
    features = 20
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({f"f{j}": rng.normal(0, 1, 5000) for j in range(features)})
    stats = reference_statistics(reference)
    write_fast_log(tmp_path / "log", days=30, rows_per_day=2000, features=features)
    report = build_report(
        Subject(str(tmp_path / "log"), "churn", "1", stats),
        MIDNIGHT - timedelta(days=30),
        MIDNIGHT,
        sources=Sources.default(),
        now=NOW,
    )
    assert report.serving.requests == 60_000
    assert len(report.timeline) == 30
    assert len(report.histograms) == features
    for fmt in ("html", "json"):
        size = len(render(report, fmt).encode())
        print(f"30 days x 20 features: {fmt} report {size / 1024:.0f} KiB")
        assert size < 2 * 1024 * 1024


def test_a_log_on_an_object_store_reads_the_same(tmp_path: Path, stats: Any) -> None:
    rows = records(200)
    local = write_log(tmp_path / "log", rows)
    remote = write_log(f"memory://report-{secrets.token_hex(4)}", rows)
    assert not any(tmp_path.glob("**/memory*"))
    assert report_of(remote, stats).serving == report_of(local, stats).serving
    assert report_of(remote, stats).histograms == report_of(local, stats).histograms


def test_a_window_must_run_forward_in_aware_time(log: str) -> None:
    subject = Subject(log, "churn", "1")
    with pytest.raises(
        InvalidArgumentError, match="since=2026-03-10T12:00:00\\+00:00 is not before"
    ):
        build_report(subject, NOW, NOW - timedelta(hours=1), sources=Sources())
    with pytest.raises(InvalidArgumentError, match="has no timezone"):
        build_report(subject, datetime(2026, 3, 1), NOW, sources=Sources())


def test_a_falling_error_is_green_a_falling_score_red(log: str) -> None:
    report = report_of(log, None)
    performance = Performance(
        task="regression",
        predictions=480,
        labeled=100,
        coverage=100 / 480,
        unmatched_labels=0,
        metrics=compare_metrics({"mae": 0.8, "r2": 0.7}, {"mae": 1.0, "r2": 0.9}),
    )
    page = render(dataclasses.replace(report, performance=performance))
    assert '<span class="up">-0.2000</span>' in page  # mae fell: better
    assert '<span class="down">-0.2000</span>' in page  # r2 fell: worse


def test_only_the_days_of_the_window_are_read(log: str) -> None:
    window = Window(NOW - timedelta(hours=3), NOW, "hour")
    scan = LogScan.of(log, "churn", "1", window)
    assert {Path(f).parent.name for f in scan.files} == {"2026-03-10"}
    everything = LogScan.of(log, "churn", None, Window.of(NOW - timedelta(days=30), NOW))
    assert {Path(f).parent.name for f in everything.files} == {
        "2026-03-07",
        "2026-03-08",
        "2026-03-09",
        "2026-03-10",
    }
