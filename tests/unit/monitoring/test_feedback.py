"""Labels: stored as Parquet segments beside the prediction log, every write kept, the
latest per key counting; unknown keys and corrections counted; JSON items parsed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelport.errors import InvalidArgumentError, InvalidRequestError
from modelport.monitoring.feedback.intake import labels_table, receive, receive_labels
from modelport.monitoring.feedback.items import parse_feedback
from modelport.monitoring.feedback.logdb import log_database
from modelport.monitoring.feedback.store import Label, label_files, label_parts, write_labels
from modelport.monitoring.prediction_log import (
    PredictionLogWriter,
    PredictionRecord,
    compact,
    delete_expired,
    query,
)
from modelport.monitoring.prediction_log.segments import day_dir, write_segment

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def log_predictions(root: Path, count: int, *, model: str = "churn") -> None:
    writer = PredictionLogWriter(str(root), flush_interval_s=60)
    for i in range(count):
        writer.put(
            PredictionRecord(
                f"r{i}-0",
                f"r{i}",
                T0 + timedelta(seconds=i),
                model,
                "1",
                "v2",
                0.001,
                200,
                {"age": i},
                {"predictions": i % 2},
            )
        )
    writer.close()


def stored_rows(root: Path, model: str = "churn") -> list[dict[str, object]]:
    _, files = label_files(str(root), model)
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pylist() if files else []


def latest(root: Path) -> dict[tuple[str, str], str]:
    with log_database(str(root), "churn") as db:
        rows = db.execute("SELECT key_kind, key, label FROM latest_labels").fetchall()
    return {(kind, key): label for kind, key, label in rows}


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        (1, ("1", 1.0, "int")),
        (True, ("true", 1.0, "bool")),
        (False, ("false", 0.0, "bool")),
        (0.25, ("0.25", 0.25, "float")),
        ("yes", ("yes", None, "str")),
        ("3", ("3", 3.0, "str")),
    ],
)
def test_a_label_keeps_its_text_number_and_type(value: object, parts: tuple[object, ...]) -> None:
    assert label_parts(value) == parts


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, float("nan"), float("inf"), ""])
def test_unusable_labels_are_refused_with_what_is_accepted(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="label must"):
        label_parts(value)


def test_labels_go_under_the_models_labels_directory_by_day(tmp_path: Path) -> None:
    path = write_labels(
        str(tmp_path),
        "churn",
        [Label.of("prediction_id", "r1-0", 1)],
        actor="ann",
        source="api",
        now=T0,
    )
    assert path is not None
    assert Path(path).parent == tmp_path / "churn" / "_labels" / "2026-03-01"
    (row,) = stored_rows(tmp_path)
    assert row["key_kind"] == "prediction_id" and row["key"] == "r1-0"
    assert row["label"] == "1" and row["label_value"] == 1.0 and row["label_type"] == "int"
    assert row["actor"] == "ann" and row["source"] == "api" and row["time"] == T0


def test_unknown_keys_are_stored_counted_and_listed(tmp_path: Path) -> None:
    log_predictions(tmp_path, 3)
    labels = [Label.of("prediction_id", "r1-0", 1), Label.of("prediction_id", "nope", 0)]
    result = receive(str(tmp_path), "churn", labels_table(labels), actor="a", source="api")
    assert (result.accepted, result.unknown, result.corrected) == (2, 1, 0)
    assert result.unknown_keys == ["nope"]
    assert len(stored_rows(tmp_path)) == 2


def test_an_id_column_never_logged_makes_its_labels_unknown(tmp_path: Path) -> None:
    log_predictions(tmp_path, 2)
    labels = labels_table([Label.of("customer_id", "c1", 1)])
    result = receive(str(tmp_path), "churn", labels, actor="a", source="api")
    assert (result.accepted, result.unknown) == (1, 1)


def test_id_column_labels_match_the_logged_id_column(tmp_path: Path) -> None:
    table = pa.table(
        {
            "prediction_id": ["a-0", "b-0"],
            "time": pa.array([T0, T0], pa.timestamp("us", "UTC")),
            "status": pa.array([200, 200], pa.int32()),
            "id_customer_id": [7, 8],
            "out_predictions": [1, 0],
        }
    )
    write_segment(*_fs(tmp_path), "seg", table)
    labels = labels_table([Label.of("customer_id", 7, 1), Label.of("customer_id", "9", 0)])
    result = receive(str(tmp_path), "churn", labels, actor="a", source="api")
    assert (result.unknown, result.unknown_keys) == (1, ["9"])


def _fs(root: Path) -> tuple[object, str]:
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem(), day_dir(str(root), "churn", "1", T0.date())


def test_corrections_are_counted_every_write_kept_and_the_latest_wins(tmp_path: Path) -> None:
    log_predictions(tmp_path, 3)
    uri = str(tmp_path)
    first = [Label.of("prediction_id", "r0-0", 0), Label.of("prediction_id", "r1-0", 0)]
    receive(uri, "churn", labels_table(first), actor="ann", source="api", now=T0)
    # r1-0 corrected by a later write, r2-0 labeled twice in one batch: the last one wins
    second = [
        Label.of("prediction_id", "r1-0", 1),
        Label.of("prediction_id", "r2-0", "x"),
        Label.of("prediction_id", "r2-0", "y"),
    ]
    result = receive(uri, "churn", labels_table(second), actor="bob", source="upload", now=T0)
    assert (result.accepted, result.corrected, result.unknown) == (3, 2, 0)
    assert latest(tmp_path) == {
        ("prediction_id", "r0-0"): "0",
        ("prediction_id", "r1-0"): "1",
        ("prediction_id", "r2-0"): "y",
    }
    audit = [(r["key"], r["label"], r["actor"]) for r in stored_rows(tmp_path)]
    assert sorted(audit) == sorted(
        [
            ("r0-0", "0", "ann"),
            ("r1-0", "0", "ann"),
            ("r1-0", "1", "bob"),
            ("r2-0", "x", "bob"),
            ("r2-0", "y", "bob"),
        ]
    )


def test_the_prediction_reader_ignores_labels(tmp_path: Path) -> None:
    log_predictions(tmp_path, 4)
    write_labels(
        str(tmp_path), "churn", [Label.of("prediction_id", "r0-0", 1)], actor="a", source="api"
    )
    table = query(str(tmp_path), "churn")
    assert table.num_rows == 4 and "key" not in table.column_names


def test_compaction_merges_label_days_and_keeps_the_latest_label(tmp_path: Path) -> None:
    uri = str(tmp_path)
    write_labels(
        uri, "churn", [Label.of("prediction_id", "p", "old")], actor="a", source="api", now=T0
    )
    write_labels(
        uri,
        "churn",
        [Label.of("prediction_id", "p", "new")],
        actor="a",
        source="api",
        now=T0 + timedelta(minutes=1),
    )
    assert compact(uri, today=date(2026, 3, 2)) == 2
    assert len(label_files(uri, "churn")[1]) == 1
    assert latest(tmp_path) == {("prediction_id", "p"): "new"}
    assert len(stored_rows(tmp_path)) == 2  # the audit trail survives compaction


def test_retention_deletes_expired_label_days(tmp_path: Path) -> None:
    uri = str(tmp_path)
    write_labels(uri, "churn", [Label.of("prediction_id", "p", 1)], actor="a", source="api", now=T0)
    write_labels(
        uri,
        "churn",
        [Label.of("prediction_id", "q", 1)],
        actor="a",
        source="api",
        now=T0 + timedelta(days=9),
    )
    assert delete_expired(uri, 5, today=date(2026, 3, 12)) == 1
    assert [r["key"] for r in stored_rows(tmp_path)] == ["q"]


def served(name: str) -> str | None:
    return None if name == "churn" else f"model {name!r} is not served here"


def test_every_json_form_is_parsed() -> None:
    body = [
        {"model": "churn", "prediction_id": "r1-0", "label": 1},
        {"model": "churn", "customer_id": "c1", "label": "yes"},
        {"model": "churn", "id": {"customer_id": 5}, "label": 0.5},
    ]
    parsed = parse_feedback(body, served)
    assert parsed.errors == []
    assert [(x.key_kind, x.key, x.label) for x in parsed.labels["churn"]] == [
        ("prediction_id", "r1-0", "1"),
        ("customer_id", "c1", "yes"),
        ("customer_id", "5", "0.5"),
    ]
    wrapped = parse_feedback(
        {"model": "churn", "labels": [{"prediction_id": "a", "label": 1}]}, served
    )
    assert len(wrapped.labels["churn"]) == 1
    single = parse_feedback({"model": "churn", "prediction_id": "a", "label": True}, served)
    assert single.labels["churn"][0].label == "true"


def test_bad_items_are_reported_by_index_and_the_rest_taken() -> None:
    body = [
        {"model": "churn", "prediction_id": "ok", "label": 1},
        {"model": "churn", "prediction_id": "a"},
        {"model": "churn", "prediction_id": "a", "customer_id": "c", "label": 1},
        {"model": "other", "prediction_id": "a", "label": 1},
        "text",
        {"model": "churn", "prediction_id": "a", "label": [1]},
        {"model": "churn", "bad column": "a", "label": 1},
    ]
    parsed = parse_feedback(body, served)
    assert len(parsed.labels["churn"]) == 1
    errors = {e["index"]: e["error"] for e in parsed.errors}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6]
    assert "'label' is missing" in errors[1]
    assert "exactly one key" in errors[2] and "found prediction_id, customer_id" in errors[2]
    assert "not served" in errors[3]
    assert "JSON object, got string" in errors[4]
    assert "label must be" in errors[5]
    assert "cannot name an id column" in errors[6]


@pytest.mark.parametrize("body", [3, "x", [], {"labels": 3}, {"labels": [], "extra": 1}])
def test_a_wholly_malformed_body_is_refused_with_the_accepted_forms(body: object) -> None:
    with pytest.raises(InvalidRequestError, match="accepted: a JSON object"):
        parse_feedback(body, served)


def test_labels_of_several_models_are_answered_together(tmp_path: Path) -> None:
    log_predictions(tmp_path, 2)
    log_predictions(tmp_path, 2, model="fraud")
    parsed = parse_feedback(
        [
            {"model": "churn", "prediction_id": "r0-0", "label": 1},
            {"model": "fraud", "prediction_id": "zz", "label": 0},
            {"model": "fraud"},
        ],
        lambda name: None,
    )
    answer = receive_labels(
        str(tmp_path), parsed.labels, actor="a", source="api", errors=parsed.errors
    )
    assert (answer["accepted"], answer["unknown"], answer["rejected"]) == (2, 1, 1)
    assert [m["model"] for m in answer["models"]] == ["churn", "fraud"]
    assert answer["errors"][0]["index"] == 2
