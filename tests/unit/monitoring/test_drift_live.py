"""Live drift: sketches fed request by request agree with the drift library on the same
rows, windows slide, and several workers' files merge."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.monitoring.drift.report import drift_report
from modelport.monitoring.drift_live import LiveDriftBook
from modelport.package.stats import reference_statistics


def _rng(*key: float) -> np.random.Generator:
    """The same data for the same arguments, whatever order the tests run in."""
    return np.random.default_rng([21, *(round(k * 1000) for k in key)])


def _frame(rows: int, shift: float = 0.0) -> pd.DataFrame:
    rng = _rng(rows, shift)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + 10 * shift, 10, rows),
            "few": rng.integers(0, 4, rows).astype(float),
            "plan": rng.choice(
                ["basic", "pro", "team"], rows, p=[0.5 - 0.3 * shift, 0.3, 0.2 + 0.3 * shift]
            ),
        }
    )


def _stats(rows: int) -> dict[str, Any]:
    return json.loads(json.dumps(reference_statistics(_frame(rows))))


def _extract(names: Sequence[str]) -> Any:
    def extract(payload: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]) -> Any:
        return {name: values for name, values in payload[0].items() if name in names}

    return extract


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _send(book_feed: Any, frame: pd.DataFrame, batch: int = 16) -> None:
    for start in range(0, len(frame), batch):
        part = frame.iloc[start : start + batch]
        book_feed.observe(({name: part[name].to_numpy() for name in part}, {}))


def test_counted_columns_equal_the_library_on_the_same_rows() -> None:
    stats = _stats(5000)  # large reference: Jensen-Shannon (counts) and Wasserstein (sample)
    # Seeded: the reservoir's draws are random. Over 150 unseeded runs the Wasserstein
    # below differed from the full window's by 0.003 on average, with a standard
    # deviation of 0.042: unseeded, the 0.1 bound failed about one run in a hundred.
    book = LiveDriftBook(window_s=600, min_rows=10, clock=Clock(), background=False, seed=7)
    feed = book.feed("churn", "3", stats, _extract)
    current = _frame(3000, shift=0.5)

    _send(feed, current)
    [live] = book.current()

    expected = {c.column: c for c in drift_report(stats, current).columns}
    got = {c.column: c for c in live.columns}
    assert live.rows == 3000 and set(got) == set(expected)
    for name in ("few", "plan"):  # counts: exact
        assert got[name].method == "jensenshannon"
        assert got[name].score == pytest.approx(expected[name].score, rel=1e-9)
    # Wasserstein from the reservoir sample (<= 500 values per bucket): within 0.1 of the
    # full window's, and drifted the same way.
    assert got["age"].method == "wasserstein"
    assert got["age"].score == pytest.approx(expected["age"].score, abs=0.1)
    assert got["age"].drifted == expected["age"].drifted


@pytest.mark.parametrize(("shift", "drifted"), [(0.0, False), (1.0, True)])
def test_small_reference_p_value_tests(shift: float, drifted: bool) -> None:
    stats = _stats(800)  # KS, chi-squared
    book = LiveDriftBook(window_s=600, min_rows=10, clock=Clock(), background=False)
    _send(book.feed("churn", "3", stats, _extract), _frame(400, shift))

    [live] = book.current()

    assert {c.column: c.method for c in live.columns} == {
        "age": "ks", "few": "chisquare", "plan": "chisquare"
    }  # fmt: skip
    assert (live.share_drifted >= 0.5) is drifted


def test_the_window_slides_and_small_windows_are_not_exported() -> None:
    clock = Clock()
    book = LiveDriftBook(window_s=100, min_rows=50, clock=clock, background=False)
    feed = book.feed("churn", "3", _stats(2000), _extract)
    _send(feed, _frame(40))
    assert book.current() == []  # 40 rows < min_rows

    clock.now += 50
    _send(feed, _frame(40))
    assert [d.rows for d in book.current()] == [80]
    clock.now += 55  # the first bucket left the window
    assert book.current() == []
    clock.now += 100
    book.flush()
    assert book.current() == []


def test_workers_files_merge(tmp_path: Path) -> None:
    stats = _stats(5000)
    clock = Clock()
    workers = [
        LiveDriftBook(str(tmp_path), window_s=600, min_rows=10, clock=clock, background=False)
        for _ in range(2)
    ]
    current = _frame(2000, shift=0.5)
    for book, half in zip(workers, (current.iloc[:1000], current.iloc[1000:]), strict=True):
        _send(book.feed("churn", "3", stats, _extract), half)
        book.flush()

    [live] = workers[0].current()

    expected = {c.column: c.score for c in drift_report(stats, current).columns}
    assert live.rows == 2000
    assert {c.column: c.score for c in live.columns}["plan"] == pytest.approx(
        expected["plan"], rel=1e-9
    )
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("drift-live-*.json")) == [
        "drift",
        "drift",
    ]


def test_unusable_statistics_turn_live_drift_off_for_that_version() -> None:
    book = LiveDriftBook(window_s=600, min_rows=1, clock=Clock(), background=False)
    feed = book.feed("churn", "1", {"stats_version": 1, "features": {}}, _extract)
    _send(feed, _frame(20))
    assert book.current() == []
    feed.observe(({"age": np.zeros(5)}, {}))
    assert feed.closed and not feed.pending


def test_collector_exports_the_gauges() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from modelport.monitoring.drift_live import DriftCollector

    book = LiveDriftBook(window_s=600, min_rows=10, clock=Clock(), background=False)
    _send(book.feed("churn", "3", _stats(5000), _extract), _frame(500, shift=1.0))
    registry = CollectorRegistry()
    registry.register(DriftCollector(book))

    text = generate_latest(registry).decode()

    assert (
        'modelport_feature_drift{feature="plan",method="jensenshannon",model="churn",version="3"}'
        in text
    )
    assert (
        'modelport_dataset_drift_share{model="churn",version="3"} 0.666' in text
    )  # few: unshifted


def test_the_drift_thread_freezes_what_it_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's drift thread moves the modules it loaded (pandas, scipy) out of the
    cycle collector, as the server does at its start: full collections would walk them."""
    import gc
    import time

    from modelport.monitoring import drift_live

    monkeypatch.setattr(drift_live, "START_DELAY_S", 0.0)
    gc.unfreeze()  # whatever an earlier test froze in this process
    book = LiveDriftBook(window_s=600, min_rows=10, flush_s=0.05)
    try:
        book.feed("churn", "1", _stats(200), _extract)
        deadline = time.monotonic() + 30
        while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gc.get_freeze_count() > 0
    finally:
        book.close()
        gc.unfreeze()
