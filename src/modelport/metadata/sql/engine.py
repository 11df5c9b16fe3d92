"""Engines for the metadata database, and what its failures mean to a user.

SQLite is tuned so several processes on one machine can share a file: WAL, a long
busy timeout, and write transactions that take the write lock up front. PostgreSQL
gets a short connect timeout and pre-ping, so a dead server is reported in seconds
and a dropped connection is replaced rather than handed out.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc

from modelport.errors import (
    ConflictError,
    InvalidArgumentError,
    MissingDependencyError,
    StoreUnavailableError,
)

SQLITE_BUSY_TIMEOUT_SECONDS = 30
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5

# Execution option that marks a connection's transactions as read-write. On SQLite
# they then start with BEGIN IMMEDIATE: a deferred transaction that reads and then
# writes fails with "database is locked" at once instead of waiting its turn.
WRITE_OPTION = "modelport_write"

_SQLITE_PRAGMAS = (
    # First, so that the pragmas below wait for a lock instead of failing.
    f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_SECONDS * 1000}",
    # Readers and the one writer no longer block each other.
    "PRAGMA journal_mode = WAL",
    # Off by default in SQLite; the schema relies on ON DELETE CASCADE.
    "PRAGMA foreign_keys = ON",
    # LIKE is case-sensitive in the search syntax, as on PostgreSQL.
    "PRAGMA case_sensitive_like = ON",
)


def display_url(url: str | URL) -> str:
    """The URL as text with any password hidden."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        return "<invalid database URL>"
    return parsed.render_as_string(hide_password=True)


def create_sql_engine(url: str | URL) -> Engine:
    """An engine for a ``sqlite:///path`` or ``postgresql+psycopg://`` URL."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        return _postgres_engine(parsed)
    raise InvalidArgumentError(
        f"unsupported metadata database {display_url(parsed)}: use sqlite:///PATH "
        "or postgresql+psycopg://USER@HOST/DB",
        field="database_url",
    )


def _parse(url: str | URL) -> URL:
    try:
        return make_url(url)
    except sa_exc.ArgumentError:
        raise InvalidArgumentError(
            "invalid metadata database URL: expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB",
            field="database_url",
        ) from None


def _sqlite_engine(url: URL) -> Engine:
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        raise InvalidArgumentError(
            "an in-memory SQLite database is not shared between connections: "
            "use a file (sqlite:///PATH) or memory://",
            field="database_url",
        )
    _make_parent_directory(url, Path(database))
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _make_parent_directory(url: URL, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreUnavailableError(
            f"cannot use the metadata database {display_url(url)}: cannot create the "
            f"directory {str(path.parent)!r}: {error.strerror or error}"
        ) from None


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's documented pysqlite recipe: stop the driver from issuing its own
    # (late, deferred) BEGIN, and emit BEGIN ourselves in _begin_sqlite_transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            _execute_waiting(cursor, pragma)
    finally:
        cursor.close()


def _execute_waiting(cursor: Any, statement: str) -> None:
    """Run ``statement``, waiting out "database is locked" up to the busy timeout.

    SQLite does not always call its busy handler: switching a new database to WAL while
    another connection does the same fails at once (seen with four servers opening a
    fresh file together), so the wait happens here.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    pause = 0.005
    while True:
        try:
            cursor.execute(statement)
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _begin_sqlite_transaction(connection: Connection) -> None:
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _postgres_engine(url: URL) -> Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_SECONDS
    try:
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except ImportError:
        raise MissingDependencyError(
            "PostgreSQL needs psycopg: pip install 'modelport[postgres]'",
            package="psycopg",
            extra="postgres",
        ) from None


def unavailable_error(url: str, error: BaseException) -> StoreUnavailableError:
    """A ``StoreUnavailableError`` naming the (password-free) URL and the reason."""
    return StoreUnavailableError(f"cannot use the metadata database {url}: {_one_line(error)}")


@contextmanager
def translated_errors(url: str) -> Iterator[None]:
    """Turn database failures into modelport errors with one-line messages.

    A database that is down, unreachable or locked is ``StoreUnavailableError``:
    connection failures surface as OperationalError or InterfaceError (or another
    DBAPIError whose connection was invalidated), and a pool with no connection to
    give within its timeout is the same story for the caller. A constraint violation
    (a concurrent change got there first) is ``ConflictError``.
    """
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as error:
        raise unavailable_error(url, error) from None
    except sa_exc.IntegrityError as error:
        raise ConflictError(
            f"the change conflicts with the metadata stored in {url}: {_one_line(error)}"
        ) from None
    except sa_exc.DBAPIError as error:
        if not error.connection_invalidated:
            raise
        raise unavailable_error(url, error) from None


def _one_line(error: BaseException) -> str:
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig else error
    reason = " ".join(line.strip() for line in str(cause).splitlines() if line.strip())
    return reason or type(cause).__name__
