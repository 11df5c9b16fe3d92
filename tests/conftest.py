"""Fixtures every test can use.

* ``isolated_home`` (automatic): modelport never touches the user's own ~/.modelport, and
  the prediction log's converter never waits for idle CPU.
* ``postgres_url`` / ``postgres_schema_url``: the real PostgreSQL server, one fresh schema
  per test (see ``testing_databases``).
* ``sqlite_url``: a SQLite file that does not exist yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testing_databases import fresh_postgres_schema, fresh_sqlite_url, reachable_postgres_url


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point modelport at a fresh home directory and clear the other settings."""
    home = tmp_path / "modelport-home"
    monkeypatch.setenv("MODELPORT_HOME", str(home))
    for name in ("DATABASE_URL", "ARTIFACTS_URI", "USER", "VERSION_CHECK", "DEBUG",
                 "REGISTRY_URL", "API_KEY", "REGISTRY_CA_BUNDLE"):  # fmt: skip
        monkeypatch.delenv(f"MODELPORT_{name}", raising=False)
    # Tests wait for logged rows on a machine their own servers keep busy: the prediction
    # log's converter must not wait for idle CPU (up to spool_max_lag_s) there. The gate
    # itself is tested in tests/integration/test_prediction_spool.py.
    monkeypatch.setenv("MODELPORT_PREDICTION_LOG__SPOOL_BUSY_LIMIT", "1")
    return home


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the test PostgreSQL database; fails the test when it is unreachable."""
    return reachable_postgres_url()


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL schema for one test."""
    with fresh_postgres_schema(postgres_url) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a SQLite file for one test; neither it nor its directory exists yet."""
    return fresh_sqlite_url(tmp_path_factory)
