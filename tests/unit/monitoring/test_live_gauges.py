"""The live performance gauges: computed in the background, shared through a file, read
at scrape."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from modelport.errors import InvalidArgumentError
from modelport.monitoring.feedback.store import Label, write_labels
from modelport.monitoring.live_gauges import LiveGauges, LiveMetricsCollector, LiveMetricsStore
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord

pytestmark = pytest.mark.timeout(60)


def prepare(root: Path) -> None:
    writer = PredictionLogWriter(str(root), flush_interval_s=60)
    now = datetime.now(UTC)
    for i, (when, value) in enumerate([(5, 1), (10, 0), (120, 1), (180, 1)]):
        writer.put(
            PredictionRecord(
                f"r{i}-0",
                f"r{i}",
                now - timedelta(minutes=when),
                "churn",
                "3",
                "v2",
                0.001,
                200,
                {"x": i},
                {"predictions": value},
            )
        )
    writer.close()
    labels = [Label.of("prediction_id", f"r{i}-0", 1) for i in (0, 1, 2)]
    write_labels(str(root), "churn", labels, actor="t", source="api")


def scrape(store: LiveMetricsStore) -> str:
    registry = CollectorRegistry()
    registry.register(LiveMetricsCollector(store))
    return generate_latest(registry).decode()


def test_gauges_per_window_shared_through_the_metrics_directory(tmp_path: Path) -> None:
    log_dir, metrics_dir = tmp_path / "log", tmp_path / "metrics"
    metrics_dir.mkdir()
    prepare(log_dir)
    writer_store = LiveMetricsStore(str(metrics_dir))
    gauges = LiveGauges(str(log_dir), lambda: [("churn", "3")], writer_store, windows=["1h", "24h"])
    gauges.compute()
    text = scrape(LiveMetricsStore(str(metrics_dir)))  # as another worker reads it
    assert (
        'modelport_live_metric{metric="accuracy",model="churn",version="3",window="1h"} 0.5' in text
    )
    assert (
        'modelport_live_metric{metric="accuracy",model="churn",version="3",window="24h"} 0.6666'
        in text
    )
    assert 'modelport_label_coverage{model="churn",version="3",window="1h"} 1.0' in text
    assert 'modelport_label_coverage{model="churn",version="3",window="24h"} 0.75' in text


def test_a_model_without_labels_is_uncovered_in_every_window(tmp_path: Path) -> None:
    prepare(tmp_path)
    store = LiveMetricsStore()
    LiveGauges(str(tmp_path), lambda: [("churn", "3"), ("fraud", "1")], store).compute()
    fraud = [entry for entry in store.entries() if entry["model"] == "fraud"]
    assert [(e["window"], e["coverage"], e["metrics"]) for e in fraud] == [
        ("1h", 0.0, {}),
        ("24h", 0.0, {}),
    ]
    text = scrape(store)
    assert 'modelport_label_coverage{model="fraud",version="1",window="1h"} 0.0' in text
    assert 'modelport_live_metric{metric="accuracy",model="fraud"' not in text


def test_the_thread_publishes_and_stops(tmp_path: Path) -> None:
    prepare(tmp_path)
    store = LiveMetricsStore()
    gauges = LiveGauges(str(tmp_path), lambda: [("churn", "3")], store, interval_s=0.05)
    gauges.start()
    deadline = time.monotonic() + 20
    while not store.entries() and time.monotonic() < deadline:
        time.sleep(0.05)
    gauges.stop()
    assert {entry["window"] for entry in store.entries()} == {"1h", "24h"}


def test_a_failing_model_leaves_the_others(tmp_path: Path) -> None:
    prepare(tmp_path)
    store = LiveMetricsStore()
    LiveGauges(str(tmp_path), lambda: [("bad/name", "1"), ("churn", "3")], store).compute()
    assert {entry["model"] for entry in store.entries()} == {"churn"}


def test_an_unreadable_file_exports_nothing(tmp_path: Path) -> None:
    (tmp_path / "live-metrics.json").write_text("{not json", encoding="utf-8")
    assert "modelport_live_metric{" not in scrape(LiveMetricsStore(str(tmp_path)))


def test_windows_must_be_durations(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="not a duration"):
        LiveGauges(str(tmp_path), list, LiveMetricsStore(), windows=["yesterday"])


def test_settings_refuse_windows_that_are_not_durations() -> None:
    from pydantic import ValidationError

    from modelport.config import LivePerformanceSettings

    assert LivePerformanceSettings(windows=["30m", "7d"]).windows == ["30m", "7d"]
    with pytest.raises(ValidationError):
        LivePerformanceSettings(windows=["yesterday"])
