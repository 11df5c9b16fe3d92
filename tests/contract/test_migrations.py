"""The schema's migrations, start-up checks, and unreachable databases."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, make_url, text

import modelport
from modelport.domain.search import parse_filter
from modelport.errors import SchemaMismatchError, StoreUnavailableError
from modelport.metadata.sql import SqlMetadataStore, schema
from modelport.metadata.sql.engine import create_sql_engine
from modelport.metadata.sql.tables import Base  # with the deployment tables: the store imports them

TABLES = {table.name for table in Base.metadata.sorted_tables}


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = create_sql_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    with engine_for(url) as engine, engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def execute(url: str, *statements: str) -> None:
    with engine_for(url) as engine, engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def test_head_is_the_revoked_sessions_revision() -> None:
    assert schema.head_revision() == "0006"


def test_migrations_ship_inside_the_package() -> None:
    package = Path(modelport.__file__).resolve().parent
    assert schema.MIGRATIONS_DIRECTORY.is_relative_to(package)
    assert (schema.MIGRATIONS_DIRECTORY / "env.py").is_file()
    assert (schema.MIGRATIONS_DIRECTORY / "script.py.mako").is_file()
    assert (schema.MIGRATIONS_DIRECTORY / "versions" / "0001_initial.py").is_file()
    assert (schema.MIGRATIONS_DIRECTORY / "versions" / "0002_archived_is_a_status.py").is_file()
    assert (schema.MIGRATIONS_DIRECTORY / "versions" / "0003_alert_history.py").is_file()
    assert (schema.MIGRATIONS_DIRECTORY / "versions" / "0004_deployments.py").is_file()
    assert (schema.MIGRATIONS_DIRECTORY / "versions" / "0005_api_keys.py").is_file()
    assert (schema.MIGRATIONS_DIRECTORY / "versions" / "0006_revoked_sessions.py").is_file()


def test_a_new_store_initializes_an_empty_database(sql_url: str) -> None:
    assert schema.current_revision(sql_url) is None
    SqlMetadataStore(sql_url).close()
    assert schema.current_revision(sql_url) == schema.head_revision()
    assert table_names(sql_url) == TABLES | {"alembic_version"}


def test_upgrade_from_empty_to_head_is_repeatable(sql_url: str) -> None:
    schema.upgrade(sql_url)
    schema.upgrade(sql_url)
    assert schema.current_revision(sql_url) == schema.head_revision()
    schema.check_schema(sql_url)


def test_the_models_match_the_migrations(sql_url: str) -> None:
    schema.upgrade(sql_url)
    with engine_for(sql_url) as engine, engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_downgrade_removes_every_table(sql_url: str) -> None:
    schema.upgrade(sql_url)
    schema.downgrade(sql_url, "base")
    assert table_names(sql_url) == {"alembic_version"}
    assert schema.current_revision(sql_url) is None


def older_revisions() -> list[str]:
    """Every revision before head, and base (the tables dropped, alembic_version kept)."""
    scripts = ScriptDirectory.from_config(schema.alembic_config())
    head = scripts.get_current_head()
    return [
        "base",
        *(script.revision for script in scripts.walk_revisions() if script.revision != head),
    ]


@pytest.mark.parametrize("older", older_revisions())
def test_an_out_of_date_schema_is_refused_until_upgraded(sql_url: str, older: str) -> None:
    schema.upgrade(sql_url)
    schema.downgrade(sql_url, older)
    with pytest.raises(SchemaMismatchError, match="run `modelport db upgrade`"):
        SqlMetadataStore(sql_url)
    schema.upgrade(sql_url)
    SqlMetadataStore(sql_url).close()


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with engine_for(url) as engine, engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(query))]


# A registry as 0001 left it: churn/1 and churn/2 archived (the ``archived`` alias on 2,
# the newest archived), churn/3 in production, and fraud/1 archived by hand-edited data
# that kept only the alias (the upgrade must keep it archived).
_VERSIONS_AT_0001 = (
    (1, 1, 1, "archived"),
    (2, 1, 2, "archived"),
    (3, 1, 3, "active"),
    (4, 2, 1, "active"),
)
_ALIASES_AT_0001 = ((1, "archived", 2), (1, "production", 3), (1, "champion", 3))


def _fill_at_0001(url: str) -> None:
    when = "'2026-01-01 00:00:00+00:00'"
    statements = [
        f"INSERT INTO registered_models (id, name, description, created_at, updated_at, "
        f"latest_version) VALUES ({i}, '{name}', '', {when}, {when}, {latest})"
        for i, name, latest in ((1, "churn", 3), (2, "fraud", 1))
    ]
    statements += [
        f"INSERT INTO model_versions (id, model_id, version, flavor, status, artifact_key, "
        f"manifest_digest, created_by, created_at, description) VALUES ({row_id}, {model}, "
        f"{number}, 'sklearn', '{status}', 'k{row_id}', 'd{row_id}', 'alice', {when}, '')"
        for row_id, model, number, status in _VERSIONS_AT_0001
    ]
    statements += [
        f"INSERT INTO model_aliases (model_id, alias, version) VALUES ({m}, '{a}', {v})"
        for m, a, v in (*_ALIASES_AT_0001, (2, "archived", 1))
    ]
    statements.append("INSERT INTO version_metrics (version_id, key, value) VALUES (1, 'auc', 0.9)")
    execute(url, *statements)


def test_upgrading_makes_archived_a_status_and_loses_nothing(sql_url: str) -> None:
    schema.upgrade(sql_url, "0001")
    _fill_at_0001(sql_url)
    schema.upgrade(sql_url)
    assert rows(sql_url, "SELECT model_id, alias, version FROM model_aliases ORDER BY alias") == [
        (1, "champion", 3),
        (1, "production", 3),
    ]
    statuses = "SELECT model_id, version, status FROM model_versions ORDER BY id"
    assert rows(sql_url, statuses) == [
        (1, 1, "archived"),
        (1, 2, "archived"),
        (1, 3, "active"),
        (2, 1, "archived"),  # named only by the alias: kept archived
    ]
    assert rows(sql_url, "SELECT version_id, key, value FROM version_metrics") == [(1, "auc", 0.9)]
    store = SqlMetadataStore(sql_url)
    try:
        with store.reader() as session:
            found = session.search_versions(parse_filter("stage = archived"), max_results=10)
            by_status = session.search_versions(parse_filter("status = 'archived'"), max_results=10)
            model = session.get_model("churn")
    finally:
        store.close()
    assert [v.ref for v in found] == [v.ref for v in by_status]
    assert sorted(v.ref for v in found) == ["models:/churn/1", "models:/churn/2", "models:/fraud/1"]
    assert model is not None and model.aliases == {"champion": 3, "production": 3}


def test_downgrading_puts_one_archived_alias_back(sql_url: str) -> None:
    schema.upgrade(sql_url, "0001")
    _fill_at_0001(sql_url)
    schema.upgrade(sql_url)
    schema.downgrade(sql_url, "0001")
    aliases = "SELECT model_id, alias, version FROM model_aliases WHERE alias = 'archived'"
    assert sorted(rows(sql_url, aliases)) == [(1, "archived", 2), (2, "archived", 1)]


def test_the_alert_tables_come_and_go_with_0003(sql_url: str) -> None:
    alert_tables = {"alert_states", "alert_events", "alert_deliveries"}
    schema.upgrade(sql_url, "0002")
    assert not alert_tables & table_names(sql_url)
    schema.upgrade(sql_url)
    assert alert_tables <= table_names(sql_url)
    schema.downgrade(sql_url, "0002")
    assert not alert_tables & table_names(sql_url)
    assert {"registered_models", "audit_entries"} <= table_names(sql_url)


def test_the_deployment_tables_come_and_go_with_0004(sql_url: str) -> None:
    deployment_tables = {"deployments", "deployment_events", "rollouts", "leases"}
    schema.upgrade(sql_url, "0003")
    assert not deployment_tables & table_names(sql_url)
    schema.upgrade(sql_url)
    assert deployment_tables <= table_names(sql_url)
    schema.downgrade(sql_url, "0003")
    assert not deployment_tables & table_names(sql_url)
    assert {"alert_states", "registered_models"} <= table_names(sql_url)


def test_the_key_table_comes_and_goes_with_0005(sql_url: str) -> None:
    schema.upgrade(sql_url, "0004")
    assert "api_keys" not in table_names(sql_url)
    schema.upgrade(sql_url)
    assert "api_keys" in table_names(sql_url)
    schema.downgrade(sql_url, "0004")
    assert "api_keys" not in table_names(sql_url)
    assert {"deployments", "registered_models"} <= table_names(sql_url)


def test_the_revoked_session_table_comes_and_goes_with_0006(sql_url: str) -> None:
    schema.upgrade(sql_url, "0005")
    assert "revoked_sessions" not in table_names(sql_url)
    schema.upgrade(sql_url)
    assert "revoked_sessions" in table_names(sql_url)
    schema.downgrade(sql_url, "0005")
    assert "revoked_sessions" not in table_names(sql_url)
    assert {"api_keys", "registered_models"} <= table_names(sql_url)


def test_a_newer_schema_is_refused(sql_url: str) -> None:
    schema.upgrade(sql_url)
    execute(sql_url, "UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(SchemaMismatchError, match="written by a newer modelport") as raised:
        SqlMetadataStore(sql_url)
    assert "9999_from_the_future" in str(raised.value)


def test_tables_without_alembic_version_are_refused(sql_url: str) -> None:
    execute(sql_url, "CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)")
    with pytest.raises(SchemaMismatchError, match="no alembic_version table"):
        SqlMetadataStore(sql_url)
    assert table_names(sql_url) == {"someone_elses"}


def test_the_schema_check_can_be_skipped(sql_url: str) -> None:
    execute(sql_url, "CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)")
    store = SqlMetadataStore(sql_url, check_schema=False)
    try:
        schema.upgrade(store.engine)
    finally:
        store.close()
    assert table_names(sql_url) == TABLES | {"alembic_version", "someone_elses"}


def test_stores_starting_together_initialize_once(sql_url: str) -> None:
    start = threading.Barrier(4)

    def open_store(_: int) -> None:
        start.wait()
        SqlMetadataStore(sql_url).close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(open_store, range(4)))
    assert schema.current_revision(sql_url) == schema.head_revision()


def test_servers_opening_a_new_sqlite_file_together_all_wait_their_turn(tmp_path: Path) -> None:
    # SQLite answers "database is locked" at once, without waiting, when connections race
    # to switch a new file to WAL; this failed about one round in eight.
    for round_ in range(20):
        url = f"sqlite:///{tmp_path / f'round-{round_}.db'}"
        start = threading.Barrier(4)

        def open_store(_: int, url: str = url, start: threading.Barrier = start) -> None:
            start.wait()
            SqlMetadataStore(url).close()

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(open_store, range(4)))
        assert schema.current_revision(url) == schema.head_revision()


# -- databases that cannot be used


def test_unreachable_postgres_is_store_unavailable() -> None:
    url = "postgresql+psycopg://modelport:s3cret@127.0.0.1:1/registry"
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as raised:
        SqlMetadataStore(url)
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert message.startswith(
        "cannot use the metadata database postgresql+psycopg://modelport:***@127.0.0.1:1/registry: "
    )
    assert "s3cret" not in message
    assert "\n" not in message
    assert raised.value.__cause__ is None


def test_sqlite_in_an_unwritable_place_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailableError, match="cannot create the directory"):
        SqlMetadataStore(f"sqlite:///{blocker / 'sub' / 'metadata.db'}")


def test_sqlite_path_that_is_a_directory_is_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="unable to open database file") as raised:
        SqlMetadataStore(f"sqlite:///{tmp_path}")
    assert "\n" not in str(raised.value)


@pytest.mark.postgres
def test_store_url_hides_the_password(postgres_schema_url: str) -> None:
    # The test server trusts local connections, so any password gets in.
    url = make_url(postgres_schema_url).set(password="s3cret")
    store = SqlMetadataStore(url.render_as_string(hide_password=False))
    try:
        assert "s3cret" not in store.url
        assert store.url.startswith("postgresql+psycopg://postgres:***@127.0.0.1:")
    finally:
        store.close()


@pytest.mark.postgres
def test_a_dropped_connection_is_replaced(postgres_schema_url: str) -> None:
    store = SqlMetadataStore(postgres_schema_url)
    try:
        with store.engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        execute(postgres_schema_url, f"SELECT pg_terminate_backend({int(pid)})")
        with store.reader() as session:
            assert session.list_models() == []
    finally:
        store.close()


def test_the_pinned_head_revision_is_alembics_head() -> None:
    from modelport.metadata.sql import schema

    assert schema.head_revision() == schema.HEAD_REVISION
