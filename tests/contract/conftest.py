"""Fixtures for the contract tests: each store protocol against every back end
(the database fixtures themselves are in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from modelport.metadata.memory import MemoryMetadataStore
from modelport.metadata.sql import SqlMetadataStore
from modelport.metadata.store import MetadataStore
from testing_databases import fresh_postgres_schema, fresh_sqlite_url

# The back ends every SQL test runs on; PostgreSQL ones carry the `postgres` marker.
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
METADATA_BACKENDS = ["memory", *SQL_BACKENDS]


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest) -> str:
    """URL of an empty database on each SQL back end."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_schema_url"
    url: str = request.getfixturevalue(fixture)
    return url


@contextmanager
def open_metadata_store(backend: str, request: pytest.FixtureRequest) -> Iterator[MetadataStore]:
    """An empty store on ``backend`` (memory, sqlite or postgres), closed after."""
    with ExitStack() as cleanup:
        store: MetadataStore
        if backend == "memory":
            store = MemoryMetadataStore()
        elif backend == "sqlite":
            store = SqlMetadataStore(fresh_sqlite_url(request.getfixturevalue("tmp_path_factory")))
        else:
            url = cleanup.enter_context(
                fresh_postgres_schema(request.getfixturevalue("postgres_url"))
            )
            store = SqlMetadataStore(url)
        cleanup.callback(store.close)
        yield store


@pytest.fixture(params=METADATA_BACKENDS)
def metadata_store(request: pytest.FixtureRequest) -> Iterator[MetadataStore]:
    """An empty MetadataStore on each back end: memory, SQLite, PostgreSQL."""
    with open_metadata_store(request.param, request) as store:
        yield store


@pytest.fixture(scope="module", params=METADATA_BACKENDS)
def shared_metadata_store(request: pytest.FixtureRequest) -> Iterator[MetadataStore]:
    """A MetadataStore on each back end shared by a module's tests: for tests that
    only read what a module-scoped fixture wrote."""
    with open_metadata_store(request.param, request) as store:
        yield store
