"""The serving workers' prediction log path: requests spooled to local files, converted
to Parquet by a converter process (``monitoring.prediction_log.spool``, ``converter``).

Real files, real converter processes, real kills. What a user relies on: every row the
in-process writer would log is logged the same way; a killed worker or server loses at
most the spool's last flush; a killed converter is replaced; a converter killed
mid-pass never writes a row twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from modelport.monitoring.prediction_log import PredictionLogWriter, query
from modelport.monitoring.prediction_log import converter as converter_module
from modelport.monitoring.prediction_log.batches import Logged, origin
from modelport.monitoring.prediction_log.converter import SpoolConverter
from modelport.monitoring.prediction_log.spool import FLUSH_S, SpoolSink
from modelport.serving.logged import NO_ARRAYS

pytestmark = pytest.mark.timeout(120)

CHILD = Path(__file__).with_name("prediction_spool_child.py")
# How late a flush may come on a loaded machine, beyond FLUSH_S.
SCHEDULING_SLACK_S = 1.0
FOREST = origin("forest", "3", None, None, {"input": ("age", "income")})
TEXT = origin("texts", "1", "texts", "canary")


def forest(i: int, rows: int = 1, **extra: Any) -> Logged:
    inputs = np.arange(2 * rows, dtype=np.float64).reshape(rows, 2) + i
    outputs = {
        "predict": np.arange(rows, dtype=np.int64) % 2,
        "predict_proba": np.full((rows, 2), 0.5) + i / 1000,
    }
    return (FOREST, f"f{i}", time.time(), "v2", 0.001 * i, 200, rows, {"input": inputs},
            outputs, extra.get("ids", NO_ARRAYS))  # fmt: skip


def texts(i: int) -> Logged:
    inputs = {
        "name": np.array([f"n{i}", None, "ü"], dtype=object),
        "code": np.array(["ab", "c", "def"]),  # fixed-width text
        "day": np.array(["2026-01-01", "2026-02-03", "2026-12-31"], dtype="datetime64[D]"),
        "flag": np.array([True, False, True]),
    }
    outputs = {"score": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])[:, 0]}  # strided
    ids = {"customer": np.array([10 * i, 10 * i + 1, 10 * i + 2], dtype=np.int32)}
    return (TEXT, f"t{i}", time.time(), "mlflow", 0.002, 200, 3, inputs, outputs, ids)


def failed(i: int) -> Logged:
    return (FOREST, f"x{i}", time.time(), "v2", 0.01, 422, 1, NO_ARRAYS, NO_ARRAYS, NO_ARRAYS)


def requests() -> Iterator[Logged]:
    for i in range(60):
        yield forest(i, rows=1 + i % 3)
        if i % 7 == 0:
            yield texts(i)
        if i % 11 == 0:
            yield failed(i)


def table(uri: Path, model: str) -> pa.Table:
    found = query(str(uri), model)
    return found.select(sorted(found.column_names)).sort_by("prediction_id")


def test_spooled_rows_equal_those_of_the_writer_thread(tmp_path: Path) -> None:
    sink = SpoolSink(tmp_path / "spool", str(tmp_path / "spooled"), flush_interval_s=0.2)
    writer = PredictionLogWriter(str(tmp_path / "direct"), flush_interval_s=0.2)
    for request in requests():
        assert sink.put_request(request)
        assert writer.put_request(request)
    time.sleep(1.0)  # the converter process has started and converted some passes
    assert sink.converter_pid is not None
    sink.close()
    writer.close()
    for model in ("forest", "texts"):
        spooled, direct = table(tmp_path / "spooled", model), table(tmp_path / "direct", model)
        assert spooled.num_rows == direct.num_rows > 0
        assert spooled.to_pylist() == direct.to_pylist()
    assert list((tmp_path / "spool").iterdir()) == []  # converted, deleted, lock removed


def test_requests_whose_dtypes_or_row_shapes_change_keep_their_values(tmp_path: Path) -> None:
    sink = SpoolSink(tmp_path / "spool", str(tmp_path / "log"), flush_interval_s=0.2)
    sink.put_request(forest(1))
    sink.put_request((FOREST, "f-int", time.time(), "v2", 0.0, 200, 1,
                      {"input": np.array([[7, 8]], dtype=np.int32)},
                      {"predict": np.array([1]), "predict_proba": np.array([[0.2, 0.8]])},
                      NO_ARRAYS))  # fmt: skip
    sink.put_request((FOREST, "f-wide", time.time(), "v2", 0.0, 200, 1,
                      {"input": np.array([[1.5, 2.5]])},
                      {"predict": np.array([2]), "predict_proba": np.array([[0.1, 0.2, 0.7]])},
                      NO_ARRAYS))  # fmt: skip
    sink.close()
    rows = {row["request_id"]: row for row in table(tmp_path / "log", "forest").to_pylist()}
    assert (rows["f-int"]["in_age"], rows["f-int"]["in_income"]) == (7, 8)
    assert rows["f-int"]["out_predict_proba"] == [0.2, 0.8]
    assert rows["f-wide"]["out_predict_proba"] == [0.1, 0.2, 0.7]
    assert rows["f1"]["out_predict_proba"] == [0.501, 0.501]


def test_rows_span_rotated_files_and_a_restarted_converter(tmp_path: Path, monkeypatch) -> None:
    from modelport.monitoring.prediction_log import spool

    monkeypatch.setattr(spool, "ROTATE_S", 0.15)
    sink = SpoolSink(tmp_path / "spool", str(tmp_path / "log"), flush_interval_s=0.2)
    put = 0
    deadline = time.monotonic() + 30
    while sink.converter_pid is None and time.monotonic() < deadline:
        assert sink.put_request(forest(put))
        put += 1
        time.sleep(0.005)
    first = sink.converter_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)  # replaced after a back-off of 1 s
    while (sink.converter_pid in {None, first}) and time.monotonic() < deadline:
        assert sink.put_request(forest(put))
        put += 1
        time.sleep(0.005)
    assert sink.converter_pid not in {None, first}
    sink.close()
    ids = table(tmp_path / "log", "forest").column("request_id").to_pylist()
    assert sorted(ids) == sorted(f"f{i}" for i in range(put))  # each row once


def test_a_pass_redone_after_a_crash_writes_no_row_twice(tmp_path: Path, monkeypatch) -> None:
    spool_dir, uri = tmp_path / "spool", str(tmp_path / "log")
    sink = SpoolSink(spool_dir, uri, converter=False)
    for i in range(40):
        sink.put_request(forest(i))
    time.sleep(3 * FLUSH_S)  # in the spool file, still open
    token = sink.token

    def crash(path: Path, offset: int) -> None:
        raise KeyboardInterrupt  # killed after its segments, before its offset

    monkeypatch.setattr(converter_module, "_record_offset", crash)
    with SpoolConverter(spool_dir, uri) as dying:
        dying.own(token)
        with pytest.raises(KeyboardInterrupt):
            dying.convert_token(token)
    assert table(tmp_path / "log", "forest").num_rows == 40
    monkeypatch.undo()
    for i in range(40, 50):
        sink.put_request(forest(i))
    sink.close()  # no converter ran: the sink converts, from the recorded offset (none)
    ids = table(tmp_path / "log", "forest").column("request_id").to_pylist()
    assert sorted(ids) == sorted(f"f{i}" for i in range(50))


def test_a_server_killed_whole_is_converted_by_the_next_converter(tmp_path: Path) -> None:
    spool_dir, uri = tmp_path / "spool", str(tmp_path / "log")
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(spool_dir), uri], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    seen: list[tuple[int, float]] = []
    try:
        for line in child.stdout:
            _, i, at = line.split()
            seen.append((int(i), float(at)))
            if len(seen) >= 1000:  # 3 s or more: many flushes
                break
        killed_at = time.time()
        child.kill()
        child.wait(30)
    finally:
        child.kill()
        child.wait(30)
        child.stdout.close()
    with open(next(spool_dir.glob("*.spool")), "ab") as torn:
        torn.write(b"\x50\x00\x00\x00\x02partial")  # a frame cut short by the kill
    with SpoolConverter(spool_dir, uri) as next_one:
        next_one.sweep()
    logged = set(table(tmp_path / "log", "churn").column("request_id").to_pylist())
    old_enough = [f"k{i}" for i, at in seen if at < killed_at - FLUSH_S - SCHEDULING_SLACK_S]
    assert len(old_enough) > 100
    assert [rid for rid in old_enough if rid not in logged] == []
    assert list(spool_dir.iterdir()) == []


def test_a_file_that_is_not_a_spool_is_left_alone(tmp_path: Path, caplog) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    stranger = spool_dir / "4199999-abc-000000.spool"  # a pid above Linux's pid_max: gone
    stranger.write_bytes(b"not a spool file at all")
    with SpoolConverter(spool_dir, str(tmp_path / "log")) as converter:
        assert converter.sweep() == 0
    assert stranger.exists()
    assert "not a readable spool file" in caplog.text


def test_requests_the_spool_cannot_hold_are_dropped_and_counted(tmp_path: Path) -> None:
    drops: list[tuple[int, str]] = []
    sink = SpoolSink(
        tmp_path / "spool",
        str(tmp_path / "log"),
        converter=False,
        max_bytes=2000,
        on_drop=lambda rows, model: drops.append((rows, model)),
    )
    accepted = [sink.put_request(forest(i, rows=2)) for i in range(30)]
    assert accepted[0]
    assert not accepted[-1]
    sink.close()
    kept = table(tmp_path / "log", "forest").num_rows
    assert kept + sum(rows for rows, _ in drops) == 60
    assert {model for _, model in drops} == {"forest"}


def test_a_busy_machine_defers_conversion_up_to_the_longest_lag(tmp_path: Path) -> None:
    # A limit of 0: any CPU used by other processes (this test's, at least) keeps the
    # gate closed, so after its first pass only the longest lag lets the converter work.
    log = tmp_path / "log"
    sink = SpoolSink(
        tmp_path / "spool", str(log), flush_interval_s=0.2, busy_limit=0.0, max_lag_s=4.0
    )

    def logged() -> int:
        files = list(log.glob("**/*.parquet"))
        return table(log, "forest").num_rows if files else 0

    put = 0
    deadline = time.monotonic() + 30
    while logged() == 0 and time.monotonic() < deadline:  # until the first pass
        sink.put_request(forest(put))
        put += 1
        time.sleep(0.01)
    first_pass = time.monotonic()
    before = logged()
    assert before > 0
    for i in range(put, put + 50):
        sink.put_request(forest(i))
    put += 50
    while time.monotonic() < first_pass + 2.0:  # this process keeps a core busy
        sum(range(10_000))
    assert logged() == before  # deferred: the machine is busy
    while logged() < put and time.monotonic() < deadline:
        time.sleep(0.1)
    assert logged() == put  # converted once the longest lag passed
    assert time.monotonic() - first_pass >= 3.0
    sink.close()
