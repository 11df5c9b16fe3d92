"""Requests logged as columnar batches: many turned into one table in the writer's thread."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from modelport.monitoring.prediction_log import PredictionBatch, PredictionLogWriter, query
from modelport.monitoring.prediction_log.batches import to_table

pytestmark = pytest.mark.timeout(60)
NAMES = ("age", "income")


def answered(request_id: str, rows: int, **ids: np.ndarray) -> PredictionBatch:
    matrix = np.arange(rows * 2, dtype=float).reshape(rows, 2)
    outputs = {"predictions": np.arange(rows), "probabilities": np.full((rows, 2), 0.5)}
    return PredictionBatch(
        request_id, time.time(), "churn", "1", "v2", 0.003, 200, rows,
        {"input": matrix}, outputs, ids, {"input": NAMES},
    )  # fmt: skip


def failed(request_id: str) -> PredictionBatch:
    return PredictionBatch(request_id, time.time(), "churn", "1", "mlflow", 0.001, 400, 1)


def test_rows_get_their_ids_and_matrix_columns() -> None:
    table = to_table([answered("a", 2), answered("b", 3)], None)
    assert table.column("prediction_id").to_pylist() == ["a-0", "a-1", "b-0", "b-1", "b-2"]
    assert table.column("request_id").to_pylist() == ["a", "a", "b", "b", "b"]
    assert table.column("in_age").to_pylist() == [0.0, 2.0, 0.0, 2.0, 4.0]
    assert table.column("in_income").to_pylist() == [1.0, 3.0, 1.0, 3.0, 5.0]
    assert table.column("out_predictions").to_pylist() == [0, 1, 0, 1, 2]
    assert table.column("out_probabilities").to_pylist()[0] == [0.5, 0.5]


def test_failures_and_answers_in_one_flush_share_one_table() -> None:
    ids = {"customer_id": np.array(["c1"], dtype=object)}
    table = to_table([answered("a", 1, **ids), failed("e"), answered("b", 1)], frozenset({"age"}))
    rows = {row["prediction_id"]: row for row in table.to_pylist()}
    assert rows["e-0"]["status"] == 400 and rows["e-0"]["in_age"] is None
    assert rows["a-0"]["id_customer_id"] == "c1" and rows["b-0"]["id_customer_id"] is None
    assert "in_income" not in table.column_names  # the column subset


def test_the_writer_counts_batches_by_rows(tmp_path: Path) -> None:
    drops: list[tuple[int, str]] = []
    writer = PredictionLogWriter(
        str(tmp_path),
        flush_interval_s=60,
        max_queue_rows=5,
        on_drop=lambda n, m: drops.append((n, m)),
    )
    assert writer.put_batch(answered("a", 3))
    assert writer.queued_rows == 3
    assert not writer.put_batch(answered("b", 3))  # 6 rows would not fit
    assert writer.put_batch(failed("c"))
    writer.close()
    assert drops == [(3, "churn")]
    assert sorted(query(str(tmp_path), "churn").column("prediction_id").to_pylist()) == [
        "a-0", "a-1", "a-2", "c-0",
    ]  # fmt: skip


def test_requests_around_midnight_go_to_their_own_days(tmp_path: Path) -> None:
    writer = PredictionLogWriter(str(tmp_path), flush_interval_s=60)
    late, early = answered("late", 2), answered("early", 1)
    late.time_s, early.time_s = 1_772_409_599.5, 1_772_409_600.5  # 2026-03-01 23:59:59.5 UTC
    assert writer.put_batch(late) and writer.put_batch(early)
    writer.close()
    days = sorted(p.name for p in (tmp_path / "churn" / "1").iterdir())
    assert days == ["2026-03-01", "2026-03-02"]
    assert sorted(query(str(tmp_path), "churn").column("prediction_id").to_pylist()) == [
        "early-0", "late-0", "late-1",
    ]  # fmt: skip


def test_rows_carry_the_deployment_and_arm_that_answered() -> None:
    champion = answered("r", 1)
    champion.deployment, champion.arm = "churn", "champion"
    shadow = answered("r", 1)
    shadow.deployment, shadow.arm = "churn", "shadow"
    table = to_table([champion, shadow, answered("alone", 2)], None)
    rows = [(r["request_id"], r["deployment"], r["arm"]) for r in table.to_pylist()]
    assert rows == [
        ("r", "churn", "champion"),
        ("r", "churn", "shadow"),  # the shadow's answer, under the request id it copies
        ("alone", None, None),  # a model served on its own
        ("alone", None, None),
    ]
    assert table.schema.field("deployment").type == table.schema.field("arm").type == "string"


def test_big_and_small_requests_keep_every_row_in_its_place() -> None:
    # Row numbers of many digits, a request bigger than any before it, a one-row request
    # between them, and a matrix of integers beside one of floats: each row keeps its
    # id, its request's scalars and its values.
    big, small, whole = answered("big", 1500), answered("one", 1), answered("ints", 12)
    whole.inputs = {"input": np.arange(24, dtype=np.int64).reshape(12, 2)}
    whole.latency_s, whole.status = 0.5, 207
    table = to_table([big, small, whole], None)
    ids = table.column("prediction_id").to_pylist()
    assert ids[:2] == ["big-0", "big-1"] and ids[1499] == "big-1499"
    assert ids[1500:1503] == ["one-0", "ints-0", "ints-1"] and ids[-1] == "ints-11"
    assert table.column("request_id").to_pylist()[1499:1502] == ["big", "one", "ints"]
    assert table.column("status").to_pylist()[1500:1502] == [200, 207]
    assert table.column("latency_s").to_pylist()[-1] == 0.5
    assert table.column("in_age").to_pylist()[1499:1503] == [2998.0, 0.0, 0.0, 2.0]
    assert table.column("in_income").to_pylist()[-1] == 23.0
    assert len(set(ids)) == table.num_rows == 1513


def test_a_request_whose_matrix_has_another_width_costs_no_other_row() -> None:
    # One request's probabilities have three classes, the others' two: its own group,
    # where its rows used to fail the join of the whole flush.
    wide = answered("wide", 1)
    wide.outputs = {"predictions": np.array([2]), "probabilities": np.array([[0.1, 0.2, 0.7]])}
    table = to_table([answered("a", 2), wide, answered("b", 1)], None)
    rows = {row["prediction_id"]: row for row in table.to_pylist()}
    assert sorted(rows) == ["a-0", "a-1", "b-0", "wide-0"]
    assert rows["wide-0"]["out_probabilities"] == [0.1, 0.2, 0.7]
    assert rows["b-0"]["out_probabilities"] == [0.5, 0.5]
