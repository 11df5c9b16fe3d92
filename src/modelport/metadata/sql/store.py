"""``SqlMetadataStore``: the MetadataStore contract on SQLite or PostgreSQL.

The store owns the engine and opens sessions (``modelport.metadata.sql.session``): a
read-write one per transaction, a read-only one per read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from modelport.metadata.sql import schema
from modelport.metadata.sql.engine import (
    WRITE_OPTION,
    create_sql_engine,
    display_url,
    translated_errors,
)
from modelport.metadata.sql.session import SqlMetadataSession


class SqlMetadataStore:
    """Metadata in SQLite (``sqlite:///PATH``) or PostgreSQL (``postgresql+psycopg://``).

    Starting checks the schema: an empty database is created at the newest schema
    revision; any other mismatch raises ``SchemaMismatchError`` naming the fix.
    Pass ``check_schema=False`` only to run the migrations themselves.
    """

    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        self._engine = create_sql_engine(url)
        self._url = display_url(self._engine.url)
        self._writer = self._engine.execution_options(**{WRITE_OPTION: True})
        # On PostgreSQL a reader sees one snapshot across its queries, as on SQLite.
        self._reader = (
            self._engine.execution_options(isolation_level="REPEATABLE READ")
            if self._engine.dialect.name == "postgresql"
            else self._engine
        )
        if check_schema:
            try:
                schema.check_schema(self._engine)
            except BaseException:
                self._engine.dispose()
                raise

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self._url

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, e.g. for running the migrations on it."""
        return self._engine

    @contextmanager
    def transaction(self) -> Iterator[SqlMetadataSession]:
        """A read-write session: one transaction, committed on normal exit."""
        with translated_errors(self._url), Session(self._writer) as orm, orm.begin():
            yield SqlMetadataSession(orm)

    @contextmanager
    def reader(self) -> Iterator[SqlMetadataSession]:
        """A read session; anything written in it is rolled back at the end."""
        with translated_errors(self._url), Session(self._reader) as orm:
            yield SqlMetadataSession(orm)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()
