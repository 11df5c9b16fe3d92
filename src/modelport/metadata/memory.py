"""MetadataStore in process memory: the reference implementation and test twin."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from modelport.domain.entities import (
    AuditEntry,
    ModelVersion,
    NewAuditEntry,
    NewVersion,
    RegisteredModel,
    VersionStatus,
)
from modelport.domain.keys import ApiKey
from modelport.domain.search import VersionFilter
from modelport.errors import ModelNotFoundError, VersionNotFoundError
from modelport.metadata.keys import MemoryKeySession
from modelport.metadata.memory_alerts import AlertRecords, MemoryAlertSession
from modelport.metadata.memory_deployments import DeploymentRecords, MemoryDeploymentSession
from modelport.metadata.sessions import MemorySessionRevocations
from modelport.metadata.store import aliases_by_version, sort_versions


@dataclass
class _ModelState:
    model: RegisteredModel
    counter: int = 0
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass
class _State:
    models: dict[str, _ModelState] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    alerts: AlertRecords = field(default_factory=AlertRecords)
    deployments: DeploymentRecords = field(default_factory=DeploymentRecords)
    keys: dict[str, ApiKey] = field(default_factory=dict)
    revoked_sessions: dict[str, datetime] = field(default_factory=dict)


class MemorySession(
    MemoryAlertSession, MemoryDeploymentSession, MemoryKeySession, MemorySessionRevocations
):
    """A session over the in-memory state; see ``MetadataSession`` for the contract."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._alerts = state.alerts
        self._deployments = state.deployments
        self._keys = state.keys
        self._revoked_sessions = state.revoked_sessions

    # -- helpers
    def _model_state(self, name: str) -> _ModelState:
        state = self._state.models.get(name)
        if state is None:
            raise ModelNotFoundError(f"model {name!r} does not exist", model=name)
        return state

    def _version_record(self, name: str, version: int) -> ModelVersion:
        record = self._model_state(name).versions.get(version)
        if record is None:
            raise VersionNotFoundError(
                f"model {name!r} has no version {version}", model=name, version=version
            )
        return record

    def _with_aliases(self, state: _ModelState) -> RegisteredModel:
        latest = max(state.versions) if state.versions else None
        return replace(state.model, aliases=dict(state.aliases), latest_version=latest)

    def _decorate(self, state: _ModelState, record: ModelVersion) -> ModelVersion:
        return replace(record, aliases=aliases_by_version(state.aliases).get(record.version, ()))

    # -- models
    def get_model(self, name: str) -> RegisteredModel | None:
        state = self._state.models.get(name)
        return self._with_aliases(state) if state is not None else None

    def list_models(self) -> list[RegisteredModel]:
        return [self._with_aliases(self._state.models[n]) for n in sorted(self._state.models)]

    def ensure_model(
        self, name: str, *, description: str, tags: Mapping[str, str], now: datetime
    ) -> tuple[RegisteredModel, bool]:
        if name in self._state.models:
            return self._with_aliases(self._state.models[name]), False
        model = RegisteredModel(
            name=name, description=description, created_at=now, updated_at=now, tags=dict(tags)
        )
        self._state.models[name] = _ModelState(model=model)
        return self._with_aliases(self._state.models[name]), True

    def update_model(self, name: str, *, description: str, now: datetime) -> RegisteredModel:
        state = self._model_state(name)
        state.model = replace(state.model, description=description, updated_at=now)
        return self._with_aliases(state)

    def set_model_tag(self, name: str, key: str, value: str, *, now: datetime) -> None:
        state = self._model_state(name)
        state.model = replace(state.model, tags={**state.model.tags, key: value}, updated_at=now)

    def delete_model_tag(self, name: str, key: str, *, now: datetime) -> None:
        state = self._model_state(name)
        tags = {k: v for k, v in state.model.tags.items() if k != key}
        state.model = replace(state.model, tags=tags, updated_at=now)

    def delete_model(self, name: str) -> None:
        self._model_state(name)
        del self._state.models[name]

    # -- versions
    def allocate_version(self, name: str, *, now: datetime) -> int:
        state = self._model_state(name)
        state.counter += 1
        state.model = replace(state.model, updated_at=now)
        return state.counter

    def create_version(self, version: int, new: NewVersion) -> ModelVersion:
        state = self._model_state(new.name)
        record = ModelVersion(
            name=new.name,
            version=version,
            flavor=new.flavor,
            status=VersionStatus.ACTIVE,
            artifact_key=new.artifact_key,
            manifest_digest=new.manifest_digest,
            created_by=new.created_by,
            created_at=new.created_at,
            description=new.description,
            tags=dict(new.tags),
            metrics=dict(new.metrics),
            params=dict(new.params),
            signature=copy.deepcopy(dict(new.signature)) if new.signature is not None else None,
        )
        state.versions[version] = record
        return self._decorate(state, record)

    def get_version(self, name: str, version: int) -> ModelVersion | None:
        state = self._model_state(name)
        record = state.versions.get(version)
        return self._decorate(state, record) if record is not None else None

    def list_versions(self, name: str) -> list[ModelVersion]:
        state = self._model_state(name)
        return [
            self._decorate(state, state.versions[v]) for v in sorted(state.versions, reverse=True)
        ]

    def search_versions(self, query: VersionFilter, *, max_results: int) -> list[ModelVersion]:
        matches = [
            version
            for name in self._state.models
            for version in self.list_versions(name)
            if query.matches(version)
        ]
        return sort_versions(matches)[:max_results]

    def set_version_status(self, name: str, version: int, status: VersionStatus) -> None:
        record = self._version_record(name, version)
        self._model_state(name).versions[version] = replace(record, status=status)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        record = self._version_record(name, version)
        tags = {**record.tags, key: value}
        self._model_state(name).versions[version] = replace(record, tags=tags)

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        record = self._version_record(name, version)
        tags = {k: v for k, v in record.tags.items() if k != key}
        self._model_state(name).versions[version] = replace(record, tags=tags)

    def delete_version(self, name: str, version: int) -> None:
        self._version_record(name, version)
        state = self._model_state(name)
        del state.versions[version]
        state.aliases = {a: v for a, v in state.aliases.items() if v != version}

    # -- aliases
    def get_alias(self, name: str, alias: str) -> int | None:
        return self._model_state(name).aliases.get(alias)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._version_record(name, version)
        self._model_state(name).aliases[alias] = version

    def delete_alias(self, name: str, alias: str) -> None:
        self._model_state(name).aliases.pop(alias, None)

    # -- audit
    def add_audit(self, entry: NewAuditEntry) -> None:
        number = len(self._state.audit) + 1
        self._state.audit.append(AuditEntry(**vars(entry), id=number))

    def list_audit(
        self, *, model: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        entries = [
            e
            for e in reversed(self._state.audit)
            if (model is None or e.model == model) and (since is None or e.timestamp >= since)
        ]
        return entries[:limit]


class MemoryMetadataStore:
    """Metadata in a dict; every session holds one lock, and a failed write session
    restores the state it started from."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        return "memory://"

    @contextmanager
    def transaction(self) -> Iterator[MemorySession]:
        with self._lock:
            snapshot = copy.deepcopy(self._state)
            try:
                yield MemorySession(self._state)
            except BaseException:
                self._state.models = snapshot.models
                self._state.audit = snapshot.audit
                self._state.alerts = snapshot.alerts
                self._state.deployments = snapshot.deployments
                self._state.keys = snapshot.keys
                self._state.revoked_sessions = snapshot.revoked_sessions
                raise

    @contextmanager
    def reader(self) -> Iterator[MemorySession]:
        with self._lock:
            yield MemorySession(copy.deepcopy(self._state))

    def close(self) -> None:
        """Nothing to release."""
