"""``SqlMetadataSession``: one transaction on the metadata database.

Each session is one ORM ``Session`` in one database transaction. Writes are single
statements (upserts with ON CONFLICT, ``UPDATE ... RETURNING`` for the version
counter), so they are atomic without read-then-write races; reads go through the
ORM with ``populate_existing`` so they always show what those statements did.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from modelport.domain.entities import (
    AuditEntry,
    ModelVersion,
    NewAuditEntry,
    NewVersion,
    RegisteredModel,
    VersionStatus,
)
from modelport.domain.search import VersionFilter
from modelport.errors import ConflictError, VersionNotFoundError
from modelport.metadata.sql import listings
from modelport.metadata.sql.alerts import SqlAlertSession
from modelport.metadata.sql.deployments import SqlDeploymentSession
from modelport.metadata.sql.filters import version_conditions
from modelport.metadata.sql.keys import SqlKeySession
from modelport.metadata.sql.sessions import SqlSessionRevocations
from modelport.metadata.sql.statements import (
    insert_row,
    model_not_found,
    sortable,
    stored_metrics,
    upsert_row,
    version_values,
)
from modelport.metadata.sql.tables import (
    AliasRow,
    AuditRow,
    ModelRow,
    ModelTagRow,
    VersionMetricRow,
    VersionParamRow,
    VersionRow,
    VersionTagRow,
)

_NO_SYNC = {"synchronize_session": False}


class SqlMetadataSession(
    SqlAlertSession, SqlDeploymentSession, SqlKeySession, SqlSessionRevocations
):
    """One transaction on the metadata database; see ``MetadataSession`` for the contract."""

    def __init__(self, orm: Session) -> None:
        self._orm = orm
        self._dialect = orm.get_bind().dialect.name

    # -- registered models
    def get_model(self, name: str) -> RegisteredModel | None:
        found = listings.list_models(self._orm, self._dialect, name)
        return found[0] if found else None

    def list_models(self) -> list[RegisteredModel]:
        return listings.list_models(self._orm, self._dialect)

    def ensure_model(
        self, name: str, *, description: str, tags: Mapping[str, str], now: datetime
    ) -> tuple[RegisteredModel, bool]:
        # Insert-or-nothing, then read: when two transactions race, PostgreSQL makes
        # the loser wait for the winner's commit and then skip; SQLite never races
        # because write transactions begin with the write lock.
        values = {"name": name, "description": description, "created_at": now, "updated_at": now}
        created_id = self._orm.scalar(
            insert_row(ModelRow, values, self._dialect)
            .on_conflict_do_nothing()
            .returning(ModelRow.id)
        )
        if created_id is not None and tags:
            rows = [{"model_id": created_id, "key": k, "value": v} for k, v in tags.items()]
            self._orm.execute(insert(ModelTagRow), rows)
        model = self.get_model(name)
        assert model is not None
        return model, created_id is not None

    def update_model(self, name: str, *, description: str, now: datetime) -> RegisteredModel:
        self._touch_model(name, now, description=description)
        model = self.get_model(name)
        assert model is not None
        return model

    def set_model_tag(self, name: str, key: str, value: str, *, now: datetime) -> None:
        model_id = self._touch_model(name, now)
        row = {"model_id": model_id, "key": key, "value": value}
        self._orm.execute(
            upsert_row(ModelTagRow, row, self._dialect, key=("model_id", "key"), replace=("value",))
        )

    def delete_model_tag(self, name: str, key: str, *, now: datetime) -> None:
        model_id = self._touch_model(name, now)
        self._orm.execute(
            delete(ModelTagRow).where(ModelTagRow.model_id == model_id, ModelTagRow.key == key),
            execution_options=_NO_SYNC,
        )

    def delete_model(self, name: str) -> None:
        # Versions, tags and aliases go with it by ON DELETE CASCADE; audit entries
        # name the model as text and stay.
        deleted = self._orm.scalar(
            delete(ModelRow).where(ModelRow.name == name).returning(ModelRow.id),
            execution_options=_NO_SYNC,
        )
        if deleted is None:
            raise model_not_found(name)

    # -- versions
    def allocate_version(self, name: str, *, now: datetime) -> int:
        # One statement: the increment takes the row lock until commit, so
        # concurrent registrations queue here and each gets its own number.
        number = self._orm.scalar(
            update(ModelRow)
            .where(ModelRow.name == name)
            .values(latest_version=ModelRow.latest_version + 1, updated_at=now)
            .returning(ModelRow.latest_version),
            execution_options=_NO_SYNC,
        )
        if number is None:
            raise model_not_found(name)
        return int(number)

    def create_version(self, version: int, new: NewVersion) -> ModelVersion:
        metrics = stored_metrics(new)
        values = version_values(self._model_id(new.name), version, new)
        try:
            version_id = self._orm.execute(
                insert(VersionRow).values(values).returning(VersionRow.id)
            ).scalar_one()
        except sa_exc.IntegrityError:
            raise ConflictError(
                f"model {new.name!r} already has version {version}", model=new.name, version=version
            ) from None
        for row_class, pairs in (
            (VersionTagRow, new.tags),
            (VersionMetricRow, metrics),
            (VersionParamRow, new.params),
        ):
            rows = [{"version_id": version_id, "key": k, "value": v} for k, v in pairs.items()]
            if rows:
                self._orm.execute(insert(row_class), rows)
        return self._existing_version(new.name, version)

    def get_version(self, name: str, version: int) -> ModelVersion | None:
        model_id = self._model_id(name)
        conditions = [VersionRow.model_id == model_id, VersionRow.version == version]
        found = listings.list_versions(self._orm, conditions, [])
        return found[0] if found else None

    def list_versions(self, name: str) -> list[ModelVersion]:
        model_id = self._model_id(name)
        return listings.list_versions(
            self._orm, [VersionRow.model_id == model_id], [VersionRow.version.desc()]
        )

    def search_versions(self, query: VersionFilter, *, max_results: int) -> list[ModelVersion]:
        if max_results <= 0:
            return []
        return listings.list_versions(
            self._orm,
            version_conditions(query, self._dialect),
            [sortable(ModelRow.name, self._dialect), VersionRow.version.desc()],
            max_results,
        )

    def set_version_status(self, name: str, version: int, status: VersionStatus) -> None:
        version_id = self._version_id(name, version)
        self._orm.execute(
            update(VersionRow)
            .where(VersionRow.id == version_id)
            .values(status=VersionStatus(status).value),
            execution_options=_NO_SYNC,
        )

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        row = {"version_id": self._version_id(name, version), "key": key, "value": value}
        self._orm.execute(
            upsert_row(
                VersionTagRow, row, self._dialect, key=("version_id", "key"), replace=("value",)
            )
        )

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        version_id = self._version_id(name, version)
        self._orm.execute(
            delete(VersionTagRow).where(
                VersionTagRow.version_id == version_id, VersionTagRow.key == key
            ),
            execution_options=_NO_SYNC,
        )

    def delete_version(self, name: str, version: int) -> None:
        # Tags, metrics, params and aliases go with it by ON DELETE CASCADE.
        version_id = self._version_id(name, version)
        self._orm.execute(
            delete(VersionRow).where(VersionRow.id == version_id), execution_options=_NO_SYNC
        )

    # -- aliases
    def get_alias(self, name: str, alias: str) -> int | None:
        model_id = self._model_id(name)
        return self._orm.scalar(
            select(AliasRow.version).where(AliasRow.model_id == model_id, AliasRow.alias == alias)
        )

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._version_id(name, version)
        row = {"model_id": self._model_id(name), "alias": alias, "version": version}
        self._orm.execute(
            upsert_row(
                AliasRow, row, self._dialect, key=("model_id", "alias"), replace=("version",)
            )
        )

    def delete_alias(self, name: str, alias: str) -> None:
        model_id = self._model_id(name)
        self._orm.execute(
            delete(AliasRow).where(AliasRow.model_id == model_id, AliasRow.alias == alias),
            execution_options=_NO_SYNC,
        )

    # -- audit trail
    def add_audit(self, entry: NewAuditEntry) -> None:
        values = dict(vars(entry))
        for field in ("before", "after"):
            values[field] = dict(values[field]) if values[field] is not None else None
        self._orm.execute(insert(AuditRow).values(values))

    def list_audit(
        self, *, model: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(max(limit, 0))
        if model is not None:
            query = query.where(AuditRow.model == model)
        if since is not None:
            query = query.where(AuditRow.timestamp >= since)
        return [row.to_domain() for row in self._orm.scalars(query)]

    # -- lookups
    def _model_id(self, name: str) -> int:
        model_id = self._orm.scalar(select(ModelRow.id).where(ModelRow.name == name))
        if model_id is None:
            raise model_not_found(name)
        return model_id

    def _version_id(self, name: str, version: int) -> int:
        model_id = self._model_id(name)
        version_id = self._orm.scalar(
            select(VersionRow.id).where(
                VersionRow.model_id == model_id, VersionRow.version == version
            )
        )
        if version_id is None:
            raise VersionNotFoundError(
                f"model {name!r} has no version {version}", model=name, version=version
            )
        return version_id

    def _existing_version(self, name: str, version: int) -> ModelVersion:
        found = self.get_version(name, version)
        assert found is not None
        return found

    def _touch_model(self, name: str, now: datetime, **changes: str) -> int:
        model_id = self._orm.scalar(
            update(ModelRow)
            .where(ModelRow.name == name)
            .values(updated_at=now, **changes)
            .returning(ModelRow.id),
            execution_options=_NO_SYNC,
        )
        if model_id is None:
            raise model_not_found(name)
        return int(model_id)
