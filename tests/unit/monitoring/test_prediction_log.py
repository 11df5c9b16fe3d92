"""The prediction log: rows written by the writer read back through DuckDB."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry, Counter

from modelport.config import PredictionLogSettings, Settings
from modelport.errors import InvalidArgumentError
from modelport.monitoring.prediction_log import (
    PredictionLogWriter,
    PredictionRecord,
    compact,
    delete_expired,
    query,
)

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(
    i: int, *, version: str = "1", time: datetime | None = None, **inputs: object
) -> PredictionRecord:
    return PredictionRecord(
        prediction_id=f"p{i:05d}",
        request_id=f"r{i // 2}",
        time=time or T0 + timedelta(seconds=i),
        model="churn",
        version=version,
        protocol="v2",
        latency_s=0.001 * i,
        status=200,
        inputs=inputs or {"age": i, "plan": "pro" if i % 2 else "free"},
        outputs={"prediction": i % 2, "proba_1": i / 100},
    )


def write(root: Path, records: list[PredictionRecord], **options: object) -> None:
    _write_uri(str(root), records, **options)


def _write_uri(uri: str, records: list[PredictionRecord], **options: object) -> None:
    writer = PredictionLogWriter(uri, flush_interval_s=60, **options)  # type: ignore[arg-type]
    for item in records:
        assert writer.put(item)
    writer.close()


def test_rows_read_back_with_one_column_per_feature(tmp_path: Path) -> None:
    write(tmp_path, [record(i) for i in range(10)])
    table = query(str(tmp_path), "churn")
    assert table.num_rows == 10
    rows = table.to_pylist()
    assert rows[3]["prediction_id"] == "p00003"
    assert rows[3]["in_age"] == 3 and rows[3]["in_plan"] == "pro"
    assert rows[3]["out_prediction"] == 1 and rows[3]["out_proba_1"] == pytest.approx(0.03)
    assert rows[3]["time"] == T0 + timedelta(seconds=3)
    assert rows[3]["status"] == 200 and rows[3]["protocol"] == "v2"
    assert list(tmp_path.glob("churn/1/2026-03-01/*.parquet"))


def test_query_filters_by_version_and_time(tmp_path: Path) -> None:
    write(tmp_path, [record(i, version=str(1 + i % 2)) for i in range(20)])
    assert query(str(tmp_path), "churn", version="2").column("version").to_pylist() == ["2"] * 10
    window = query(
        str(tmp_path), "churn", since=T0 + timedelta(seconds=5), until=T0 + timedelta(seconds=8)
    )
    assert window.column("prediction_id").to_pylist() == ["p00005", "p00006", "p00007"]


def test_versions_with_different_columns_read_together(tmp_path: Path) -> None:
    write(tmp_path, [record(0, version="1", age=1)])
    write(tmp_path, [record(1, version="2", age=2, income=3.5)])
    rows = query(str(tmp_path), "churn").to_pylist()
    assert [(r["in_age"], r["in_income"]) for r in rows] == [(1, None), (2, 3.5)]


def test_nothing_logged_reads_as_an_empty_table(tmp_path: Path) -> None:
    table = query(str(tmp_path), "churn")
    assert table.num_rows == 0 and "prediction_id" in table.column_names


def test_a_full_queue_drops_counts_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    dropped = Counter("modelport_prediction_log_dropped", "Rows dropped.", registry=registry)
    writer = PredictionLogWriter(
        str(tmp_path), flush_interval_s=60, max_queue_rows=3, on_drop=lambda n, _: dropped.inc(n)
    )
    accepted = [writer.put(record(i)) for i in range(5)]
    with caplog.at_level(logging.WARNING):
        writer.close()
    assert accepted == [True, True, True, False, False]
    assert registry.get_sample_value("modelport_prediction_log_dropped_total") == 2
    assert "dropped 2 rows" in caplog.text
    assert query(str(tmp_path), "churn").num_rows == 3


def test_close_writes_everything_queued(tmp_path: Path) -> None:
    writer = PredictionLogWriter(str(tmp_path), flush_interval_s=60, flush_rows=7)
    for i in range(100):
        assert writer.put(record(i))
    writer.close()
    assert query(str(tmp_path), "churn").num_rows == 100
    assert not writer.put(record(100))  # closed: refused, counted


def test_rows_are_written_each_interval_without_close(tmp_path: Path) -> None:
    writer = PredictionLogWriter(str(tmp_path), flush_interval_s=0.1)
    try:
        writer.put(record(0))
        for _ in range(100):  # bounded wait: 10 s
            if query(str(tmp_path), "churn").num_rows == 1:
                break
            writer._wake.wait(0.1)
        assert query(str(tmp_path), "churn").num_rows == 1
    finally:
        writer.close()


def test_column_subset_and_sampling(tmp_path: Path) -> None:
    write(tmp_path / "subset", [record(i) for i in range(4)], columns=["age"])
    table = query(str(tmp_path / "subset"), "churn")
    assert "in_age" in table.column_names and "in_plan" not in table.column_names
    assert "out_prediction" in table.column_names
    write(tmp_path / "none", [record(i) for i in range(4)], sample_rate=0.0)
    assert query(str(tmp_path / "none"), "churn").num_rows == 0


def test_segments_on_an_fsspec_store_are_queryable() -> None:
    uri = f"memory://plog-{uuid.uuid4().hex}"
    _write_uri(uri, [record(i) for i in range(5)])
    assert query(uri, "churn").column("prediction_id").to_pylist()[-1] == "p00004"


def test_compaction_merges_past_days_and_keeps_every_row(tmp_path: Path) -> None:
    for batch in range(3):
        write(tmp_path, [record(batch * 10 + i) for i in range(10)])
    write(tmp_path, [record(99, time=datetime(2026, 3, 2, tzinfo=UTC))])
    write(tmp_path, [record(98, time=datetime(2026, 3, 2, 1, tzinfo=UTC))])
    before = query(str(tmp_path), "churn")
    merged = compact(str(tmp_path), today=date(2026, 3, 2))
    assert merged == 3
    assert len(list(tmp_path.glob("churn/1/2026-03-01/*.parquet"))) == 1
    assert len(list(tmp_path.glob("churn/1/2026-03-02/*.parquet"))) == 2  # today: untouched
    assert query(str(tmp_path), "churn").to_pylist() == before.to_pylist()
    assert compact(str(tmp_path), today=date(2026, 3, 2)) == 0


def test_retention_deletes_old_days_only(tmp_path: Path) -> None:
    for day in (1, 2, 3, 4):
        write(tmp_path, [record(day, time=datetime(2026, 3, day, tzinfo=UTC))])
    assert delete_expired(str(tmp_path), 2, today=date(2026, 3, 4)) == 1
    days = sorted(p.name for p in tmp_path.glob("churn/1/*"))
    assert days == ["2026-03-02", "2026-03-03", "2026-03-04"]
    with pytest.raises(InvalidArgumentError, match="retention_days"):
        delete_expired(str(tmp_path), 0)


def test_segments_are_plain_parquet_with_utc_time(tmp_path: Path) -> None:
    write(tmp_path, [record(0)])
    (segment,) = tmp_path.glob("churn/1/*/*.parquet")
    assert str(pq.read_schema(segment).field("time").type) == "timestamp[us, tz=UTC]"
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("model", ["", "..", "a/b", "c*"])
def test_names_that_cannot_be_directories_are_refused(tmp_path: Path, model: str) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot name a directory"):
        query(str(tmp_path), model)


def test_bad_settings_and_records_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="sample_rate"):
        PredictionLogWriter(str(tmp_path), sample_rate=2.0)
    with pytest.raises(InvalidArgumentError, match="flush_interval_s"):
        PredictionLogWriter(str(tmp_path), flush_interval_s=0)
    with pytest.raises(InvalidArgumentError, match="naive time"):
        record(0, time=datetime(2026, 3, 1))


def test_settings_default_under_home_and_build_a_writer(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, prediction_log=PredictionLogSettings(flush_rows=2))
    assert settings.resolved_prediction_log_uri == str(tmp_path / "predictions")
    writer = PredictionLogWriter.from_settings(
        settings.prediction_log, settings.resolved_prediction_log_uri
    )
    writer.put(record(0))
    writer.close()
    assert query(settings.resolved_prediction_log_uri, "churn").num_rows == 1


def test_compaction_and_retention_on_an_fsspec_store() -> None:
    uri = f"memory://plog-maintenance-{uuid.uuid4().hex}"
    for i in range(3):
        _write_uri(uri, [record(i)])
    _write_uri(uri, [record(9, time=datetime(2026, 2, 1, tzinfo=UTC))])
    assert compact(uri, today=date(2026, 3, 2)) == 3
    assert query(uri, "churn").num_rows == 4
    assert delete_expired(uri, 7, today=date(2026, 3, 2)) == 1
    assert query(uri, "churn").column("prediction_id").to_pylist() == ["p00000", "p00001", "p00002"]


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_PREDICTION_LOG__URI", "s3://bucket/predictions")
    monkeypatch.setenv("MODELPORT_PREDICTION_LOG__SAMPLE_RATE", "0.25")
    settings = Settings()
    assert settings.resolved_prediction_log_uri == "s3://bucket/predictions"
    assert settings.prediction_log.sample_rate == 0.25
