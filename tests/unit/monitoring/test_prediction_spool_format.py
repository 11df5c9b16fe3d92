"""The spool's frames read back as columns: what a worker spooled is what the converter
reads, a frame cut short is left for later, a resumed read skips what was converted."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from modelport.monitoring.prediction_log.batches import origin
from modelport.monitoring.prediction_log.spool import FLUSH_S, SpoolSink
from modelport.monitoring.prediction_log.spool_format import MAGIC, read_frames
from modelport.serving.logged import NO_ARRAYS

WHERE = origin("churn", "2", "churn", "champion", {"input": ("age", "income")})


def spooled(tmp_path: Path, requests: list[tuple]) -> bytes:
    """The bytes of the spool file a worker writes for ``requests`` (no converter)."""
    sink = SpoolSink(tmp_path / "spool", str(tmp_path / "log"), converter=False)
    for request in requests:
        assert sink.put_request(request)
    time.sleep(3 * FLUSH_S)  # written by the flush thread, the file still open
    (path,) = (tmp_path / "spool").glob("*.spool")
    data = path.read_bytes()
    sink.close()
    return data


def request(i: int, rows: int, rid: str | None = None) -> tuple:
    inputs = {"input": np.arange(2 * rows, dtype=np.float64).reshape(rows, 2) + 100 * i}
    outputs = {"label": np.arange(rows, dtype=np.int64) + i, "proba": np.full((rows, 3), i / 10)}
    ids = {"customer": np.array([f"c{i}-{r}" for r in range(rows)])}
    return (WHERE, rid or f"r{i:03d}", 1_700_000_000.0 + i, "v2", i / 1000, 200, rows, inputs,
            outputs, ids)  # fmt: skip


def test_what_was_spooled_reads_back_as_columns(tmp_path: Path) -> None:
    requests = [request(i, rows=1 + i % 2) for i in range(6)]
    requests.append((WHERE, "failed", 1_700_000_100.0, "mlflow", 0.5, 422, 1, NO_ARRAYS,
                     NO_ARRAYS, NO_ARRAYS))  # fmt: skip
    frames = read_frames(spooled(tmp_path, requests), 0, {})
    assert not frames.finished  # the writer had not closed the file yet
    by_rows = {(run.rows, run.layout.protocol): run for run in frames.runs}
    two = by_rows[(2, "v2")]
    inputs, outputs, ids = two.columns()
    assert inputs["input"].tolist() == [[100, 101], [102, 103], [300, 301], [302, 303],
                                        [500, 501], [502, 503]]  # fmt: skip
    assert outputs["label"].tolist() == [1, 2, 3, 4, 5, 6]
    assert outputs["proba"].shape == (6, 3)
    assert ids["customer"].tolist() == ["c1-0", "c1-1", "c3-0", "c3-1", "c5-0", "c5-1"]
    heads = two.heads_array()
    assert heads["time"].tolist() == [1_700_000_001.0, 1_700_000_003.0, 1_700_000_005.0]
    assert heads["status"].tolist() == [200, 200, 200]
    data, offsets = two.request_ids()
    assert [data[a:b].decode() for a, b in itertools.pairwise(offsets)] == ["r001", "r003", "r005"]
    failed = by_rows[(1, "mlflow")]
    assert failed.columns() == ({}, {}, {})
    assert failed.heads_array()["status"].tolist() == [422]
    assert frames.rows == 6 * 1.5 + 1


def test_a_frame_cut_short_is_left_for_the_next_read(tmp_path: Path) -> None:
    data = spooled(tmp_path, [request(i, rows=1) for i in range(3)])
    whole = read_frames(data, 0, {})
    cut = read_frames(data[:-5], 0, {})
    assert cut.rows == 2
    assert cut.end < whole.end == len(data)
    rest = read_frames(data[cut.end :], cut.end, {**{}, **_layouts(data)})
    assert rest.rows == 1


def test_a_resumed_read_skips_what_was_converted_and_keeps_the_layouts(tmp_path: Path) -> None:
    data = spooled(tmp_path, [request(i, rows=1) for i in range(5)])
    first = read_frames(data[: len(data) // 2], 0, {})
    resumed = read_frames(data, 0, {}, requests_from=first.end)  # a new converter: no layouts
    assert first.rows + resumed.rows == 5
    (run,) = resumed.runs
    assert run.columns()[1]["label"].tolist() == list(range(first.rows, 5))


def test_ids_of_other_lengths_keep_their_requests(tmp_path: Path) -> None:
    data = spooled(tmp_path, [request(0, 1, "a"), request(1, 1, "bbbbbb"), request(2, 1, "cc")])
    got = {}
    for run in read_frames(data, 0, {}).runs:
        ids, offsets = run.request_ids()
        labels = run.columns()[1]["label"].tolist()
        for (a, b), label in zip(itertools.pairwise(offsets), labels, strict=True):
            got[ids[a:b].decode()] = label
    assert got == {"a": 0, "bbbbbb": 1, "cc": 2}


def test_a_file_that_is_not_a_spool_is_refused() -> None:
    with pytest.raises(ValueError, match="not a modelport spool file"):
        read_frames(b"PAR1 and then some more bytes", 0, {})
    assert read_frames(MAGIC[:4], 0, {}).runs == []  # too short to tell: nothing yet


def _layouts(data: bytes) -> dict:
    layouts: dict = {}
    read_frames(data, 0, layouts)
    return layouts
