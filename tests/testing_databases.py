"""Real databases for tests: the PostgreSQL server at 127.0.0.1:5432 and SQLite files.

PostgreSQL tests use that server (or ``MODELPORT_TEST_POSTGRES_URL``) for real. Each
test gets a schema of its own, dropped afterwards, so tests can run in parallel on one
database. When the server cannot be reached, those tests fail (they do not skip) with
a message saying how to start it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import NullPool, create_engine, make_url, text
from sqlalchemy import exc as sa_exc

POSTGRES_URL_VARIABLE = "MODELPORT_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


def reachable_postgres_url() -> str:
    """URL of the test PostgreSQL database; fails the calling test when it is unreachable."""
    url = os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL)
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            return url
    except sa_exc.DBAPIError as error:
        reason = " ".join(str(error.orig).split())
    finally:
        engine.dispose()
    shown = make_url(url).render_as_string(hide_password=True)
    pytest.fail(
        f"PostgreSQL is not reachable at {shown} ({reason}). Start it with "
        f"`{START_POSTGRES}`, or set {POSTGRES_URL_VARIABLE} to a reachable database.",
        pytrace=False,
    )


@contextmanager
def fresh_postgres_schema(postgres_url: str) -> Iterator[str]:
    """A new empty schema, first on the search path of the URL given; dropped after."""
    schema = f"t_{uuid.uuid4().hex}"
    admin = create_engine(postgres_url, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def fresh_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a SQLite file that does not exist yet (nor does its directory)."""
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'db' / 'metadata.db'}"
