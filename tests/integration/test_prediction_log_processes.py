"""The prediction log's guarantees across real processes: kill, clean stop, two writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelport.monitoring.prediction_log import query

pytestmark = pytest.mark.timeout(120)

CHILD = Path(__file__).with_name("prediction_log_child.py")
INTERVAL_S = 0.2
# How late the writer thread may run on a loaded machine, on top of the interval.
SCHEDULING_SLACK_S = 1.0


def start(root: Path, tag: str, *count: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(root), tag, str(INTERVAL_S), *count],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def wait_for_rows(child: subprocess.Popen[str], rows: int) -> list[tuple[int, float]]:
    """The child's ``put`` lines until ``rows`` rows were put (bounded by the timeout)."""
    assert child.stdout is not None
    seen = []
    for line in child.stdout:
        _, i, at = line.split()
        seen.append((int(i), float(at)))
        if len(seen) >= rows:
            return seen
    raise AssertionError(f"child stopped after {len(seen)} rows, exit {child.wait(10)}")


def logged_ids(root: Path) -> list[str]:
    return query(str(root), "churn").column("prediction_id").to_pylist()


def test_sigkill_loses_at_most_the_rows_since_the_last_flush(tmp_path: Path) -> None:
    child = start(tmp_path, "k")
    assert child.stdout is not None
    try:
        seen = wait_for_rows(child, 500)  # 2.5 s or more of rows: many flushes
        killed_at = time.time()
        child.kill()
        child.wait(30)
        seen += [(int(i), float(at)) for _, i, at in (ln.split() for ln in child.stdout)]
    finally:
        child.kill()
        child.wait(30)
        child.stdout.close()
    ids = logged_ids(tmp_path)  # a segment cut short by the kill is never read
    assert ids, "no flush happened before the kill"
    assert ids == [f"k-{i:06d}" for i in range(len(ids))]  # a prefix: no gaps, no dupes
    old_enough = [i for i, at in seen if at < killed_at - INTERVAL_S - SCHEDULING_SLACK_S]
    assert old_enough, "the child put no row early enough to be sure of"
    assert len(ids) >= len(old_enough)


def test_sigterm_loses_nothing(tmp_path: Path) -> None:
    child = start(tmp_path, "t")
    try:
        wait_for_rows(child, 50)
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait(30)
    assert child.returncode == 0
    put = int(out.strip().splitlines()[-1].split()[1])
    assert logged_ids(tmp_path) == [f"t-{i:06d}" for i in range(put)]


def test_two_writer_processes_share_one_log(tmp_path: Path) -> None:
    children = [start(tmp_path, tag, "150") for tag in ("a", "b")]
    try:
        for child in children:
            out, _ = child.communicate(timeout=60)
            assert child.returncode == 0 and out.strip().endswith("closed 150")
    finally:
        for child in children:
            child.kill()
            child.wait(30)
    ids = logged_ids(tmp_path)
    assert sorted(ids) == sorted(f"{tag}-{i:06d}" for tag in "ab" for i in range(150))
    pids = {p.name.split("-")[0] for p in tmp_path.glob("churn/1/*/*.parquet")}
    assert pids == {str(child.pid) for child in children}
