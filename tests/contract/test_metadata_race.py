"""Concurrent registrations of one new model, on SQLite and PostgreSQL.

Each registration is what the registry does in one transaction: ensure the model,
allocate a number, create the version, append an audit entry. Workers start
together on a model that does not exist yet, so they also race to create it.

Run as a script, this file is one worker process (see ``run_worker``).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import make_url

from modelport.domain.entities import NewAuditEntry, NewVersion
from modelport.metadata.sql import SqlMetadataStore

MODEL = "contended"
THREADS = 8
PROCESSES = 4
REGISTRATIONS = 10
WORKER_TIMEOUT_SECONDS = 120


def register_once(store: SqlMetadataStore, worker: str) -> tuple[int, bool]:
    """One registration in one transaction; the number and whether it created the model."""
    now = datetime.now(UTC)
    with store.transaction() as session:
        # Read before writing, as the registry does: on SQLite a transaction that
        # reads first only gets to write safely because it began IMMEDIATE.
        session.get_model(MODEL)
        _, created = session.ensure_model(MODEL, description="", tags={}, now=now)
        number = session.allocate_version(MODEL, now=now)
        session.create_version(
            number,
            NewVersion(
                name=MODEL,
                flavor="sklearn",
                artifact_key=f"{MODEL}/{worker}-{number}",
                manifest_digest="sha256:" + "0" * 64,
                created_by=worker,
                created_at=now,
                tags={"worker": worker},
            ),
        )
        session.add_audit(
            NewAuditEntry(
                actor=worker, action="register", model=MODEL, timestamp=now, version=number
            )
        )
    return number, created


def assert_all_registered(url: str, results: list[tuple[int, bool]], total: int) -> None:
    """Every registration got its own number, 1..total, and every row is there."""
    assert sorted(number for number, _ in results) == list(range(1, total + 1))
    assert sum(created for _, created in results) == 1
    store = SqlMetadataStore(url)
    try:
        with store.reader() as session:
            versions = session.list_versions(MODEL)
            audit = session.list_audit(model=MODEL, limit=total + 10)
            model = session.get_model(MODEL)
    finally:
        store.close()
    assert [version.version for version in versions] == list(range(total, 0, -1))
    assert all(version.artifact_key.endswith(f"-{version.version}") for version in versions)
    assert sorted(entry.version or 0 for entry in audit) == list(range(1, total + 1))
    assert model is not None
    assert model.latest_version == total


def test_threads_register_the_same_new_model(sql_url: str) -> None:
    store = SqlMetadataStore(sql_url)
    start = threading.Barrier(THREADS)

    def work(worker: int) -> list[tuple[int, bool]]:
        start.wait()
        return [register_once(store, f"thread-{worker}") for _ in range(REGISTRATIONS)]

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            results = [result for batch in pool.map(work, range(THREADS)) for result in batch]
    finally:
        store.close()
    assert_all_registered(sql_url, results, THREADS * REGISTRATIONS)


def test_processes_register_the_same_new_model(sql_url: str) -> None:
    SqlMetadataStore(sql_url).close()  # the schema exists before the workers start
    workers = [
        subprocess.Popen(
            [sys.executable, str(Path(__file__)), sql_url, f"process-{n}", str(REGISTRATIONS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    try:
        # Wait until every worker has its store open, then start them all at once.
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready", worker.communicate()[1]
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=WORKER_TIMEOUT_SECONDS) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    results: list[tuple[int, bool]] = []
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
        results.extend((number, created) for number, created in json.loads(stdout))
    assert_all_registered(sql_url, results, PROCESSES * REGISTRATIONS)


def run_worker(url: str, worker: str, count: int) -> None:
    """Open a store, say ready, wait for "go" on stdin, register, print the results."""
    store = SqlMetadataStore(url)
    try:
        print("ready", flush=True)
        sys.stdin.readline()
        results = [register_once(store, worker) for _ in range(count)]
    finally:
        store.close()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    run_worker(sys.argv[1], sys.argv[2], int(sys.argv[3]))


def test_sqlite_write_transactions_lock_at_begin(sqlite_url: str) -> None:
    store = SqlMetadataStore(sqlite_url)
    other = sqlite3.connect(str(make_url(sqlite_url).database), timeout=0, isolation_level=None)
    try:
        with store.reader() as session:
            session.list_models()
            other.execute("BEGIN IMMEDIATE")  # readers do not hold writers back
            other.execute("ROLLBACK")
        with store.transaction() as session:
            session.list_models()  # nothing written yet, and still the lock is held
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
        store.close()


def test_sqlite_connections_are_set_up_for_sharing(sqlite_url: str) -> None:
    store = SqlMetadataStore(sqlite_url)
    try:
        with store.engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        store.close()
