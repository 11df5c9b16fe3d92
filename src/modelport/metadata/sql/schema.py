"""The metadata schema's version: alembic migrations shipped inside the package.

``check_schema`` runs when a ``SqlMetadataStore`` starts: it creates the tables in
a database that has none (so a fresh machine works with no set-up) and otherwise
refuses a schema this release does not expect, naming the fix. ``upgrade`` is what
``modelport db upgrade`` runs.

Alembic is configured here in code (there is no ``alembic.ini``). To write a new
migration during development::

    from alembic import command
    from modelport.metadata.sql.schema import alembic_config
    command.revision(alembic_config("sqlite:////tmp/dev.db"), "what changed", autogenerate=True)

(upgrade that database to head first), then check the generated file by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy import exc as sa_exc

from modelport.errors import SchemaMismatchError
from modelport.metadata.sql.engine import (
    WRITE_OPTION,
    create_sql_engine,
    display_url,
    translated_errors,
)

if TYPE_CHECKING:  # alembic is imported only when the schema must be read or changed
    from alembic.config import Config

MIGRATIONS_DIRECTORY = Path(__file__).resolve().parent.parent / "migrations"
# The newest migration's revision; a test keeps it equal to alembic's head. Starting
# against a database already at this revision needs one query and no alembic import.
HEAD_REVISION = "0006"
_READ_REVISION = text("SELECT version_num FROM alembic_version")
VERSION_TABLE = "alembic_version"
UPGRADE_COMMAND = "modelport db upgrade"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """Alembic configuration for modelport's migrations, on a URL or an open connection."""
    from alembic.config import Config

    config = Config()
    # ConfigParser treats % as interpolation; paths and URLs may contain it.
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The schema revision this release of modelport expects."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


def current_revision(target: Engine | str) -> str | None:
    """The database's schema revision, or None when it has none."""
    from alembic.runtime.migration import MigrationContext

    with (
        _engine(target) as engine,
        translated_errors(display_url(engine.url)),
        engine.connect() as connection,
    ):
        revision: str | None = MigrationContext.configure(connection).get_current_revision()
        return revision


def upgrade(target: Engine | str, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (the newest by default)."""
    from alembic import command

    with _locked_connection(target) as connection:
        command.upgrade(alembic_config(connection=connection), revision)


def downgrade(target: Engine | str, revision: str) -> None:
    """Migrate the database back to ``revision`` (``base`` removes every table)."""
    from alembic import command

    with _locked_connection(target) as connection:
        command.downgrade(alembic_config(connection=connection), revision)


def check_schema(target: Engine | str) -> None:
    """Make sure the database holds the schema this release expects.

    An empty database is brought to the newest revision. Raises
    ``SchemaMismatchError`` for an older schema (the message says to run
    ``modelport db upgrade``), a newer or unknown one, or tables that alembic
    does not track.
    """
    if _at_head(target):
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with _locked_connection(target) as connection:
        tables = set(inspect(connection).get_table_names())
        if not tables:
            command.upgrade(alembic_config(connection=connection), "head")
            return
        url = display_url(connection.engine.url)
        if VERSION_TABLE not in tables:
            raise SchemaMismatchError(
                f"the metadata database {url} has tables ({', '.join(sorted(tables))}) "
                f"but no {VERSION_TABLE} table, so modelport did not create it: point "
                "modelport at an empty database (or PostgreSQL schema) or at one it created"
            )
        _check_revision(url, MigrationContext.configure(connection).get_current_revision())


def _check_revision(url: str, current: str | None) -> None:
    head = head_revision()
    if current == head:
        return
    if current is not None and not _is_known(current):
        raise SchemaMismatchError(
            f"the metadata database {url} has schema revision {current!r}, which this "
            f"modelport does not know (it expects {head!r}): the database was written by "
            "a newer modelport; upgrade modelport"
        )
    found = f"schema revision {current!r}" if current else "no schema revision"
    raise SchemaMismatchError(
        f"the metadata database {url} has {found} but this modelport needs {head!r}: "
        f"back up the database, then run `{UPGRADE_COMMAND}`"
    )


def _at_head(target: Engine | str) -> bool:
    """Whether the database's recorded revision is this release's head (one query)."""
    with (
        _engine(target) as engine,
        translated_errors(display_url(engine.url)),
        engine.connect() as connection,
    ):
        try:
            stored = connection.execute(_READ_REVISION)
            revisions = [row[0] for row in stored]
        except sa_exc.DBAPIError:  # no version table yet: the slow path decides
            return False
    return revisions == [HEAD_REVISION]


def _is_known(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


@contextmanager
def _engine(target: Engine | str) -> Iterator[Engine]:
    if isinstance(target, Engine):
        yield target
        return
    engine = create_sql_engine(target)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _locked_connection(target: Engine | str) -> Iterator[Connection]:
    """One write transaction holding the schema lock, so that servers starting
    together on a fresh database do not all try to create the tables."""
    with (
        _engine(target) as engine,
        translated_errors(display_url(engine.url)),
        engine.connect() as connection,
    ):
        # On SQLite the write option makes the transaction BEGIN IMMEDIATE, which
        # is the lock.
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text(_POSTGRES_SCHEMA_LOCK))
            yield connection


# Keyed on the schema, so that schemas sharing one database lock independently.
_POSTGRES_SCHEMA_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('modelport.schema:' || current_schema()))"
)
