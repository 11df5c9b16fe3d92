"""Alembic environment for modelport's metadata schema.

Alembic executes this file as a script for every command, so the work below runs
when it is loaded, by design. ``modelport.metadata.sql.schema`` passes an open
connection (inside its locked transaction) in ``config.attributes["connection"]``;
without one, the URL in the ``sqlalchemy.url`` option is used.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from modelport.metadata.sql import (
    deployment_tables,  # noqa: F401  (its tables join Base)
    keys,  # noqa: F401  (its table joins Base)
)
from modelport.metadata.sql.engine import create_sql_engine
from modelport.metadata.sql.tables import Base


def run_on(connection: Connection) -> None:
    """Run the migrations on an open connection."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline(url: str) -> None:
    """Write the migrations as SQL (``--sql``) instead of running them."""
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    """Run the migrations on the connection or URL alembic was given."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("modelport's migrations need a connection or sqlalchemy.url")
    if context.is_offline_mode():
        run_offline(url)
        return
    engine = create_sql_engine(url)
    try:
        with engine.connect() as open_connection:
            run_on(open_connection)
            open_connection.commit()
    finally:
        engine.dispose()


run()
