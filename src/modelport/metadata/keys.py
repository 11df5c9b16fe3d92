"""The API-key part of the metadata contract: ``KeyStore``, and its in-memory twin.

Keys live in the metadata database beside the registry, so a key created with
``modelport key create`` on one machine reaches every server over the same database,
and creating or revoking one is a transaction together with its audit entry.
``MetadataSession`` includes this protocol; ``MemoryKeySession`` is the reference the
contract tests hold the SQL one (``metadata.sql.keys``) to.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Protocol

from modelport.domain.keys import ApiKey
from modelport.errors import ConflictError


class KeyStore(Protocol):
    """Stored API keys (only hashes of their secrets)."""

    def add_key(self, key: ApiKey) -> ApiKey:
        """Store a new key; ``ConflictError`` when its ``key_id`` exists."""
        ...

    def get_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, or None."""
        ...

    def list_keys(self) -> list[ApiKey]:
        """Every key, revoked and expired ones too, oldest first."""
        ...

    def revoke_key(self, key_id: str, *, now: datetime, actor: str) -> ApiKey | None:
        """Mark the key revoked at ``now`` by ``actor`` (a key revoked before keeps its
        first revocation); the key as stored after, or None when there is none."""
        ...


def key_exists(key_id: str) -> ConflictError:
    """The error for a second key with the same id."""
    return ConflictError(f"an API key with id {key_id!r} exists")


class MemoryKeySession:
    """Key operations of ``MemorySession``; see ``KeyStore`` for the contract."""

    _keys: dict[str, ApiKey]

    def add_key(self, key: ApiKey) -> ApiKey:
        if key.key_id in self._keys:
            raise key_exists(key.key_id)
        self._keys[key.key_id] = key
        return key

    def get_key(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    def list_keys(self) -> list[ApiKey]:
        return sorted(self._keys.values(), key=lambda k: (k.created_at, k.key_id))

    def revoke_key(self, key_id: str, *, now: datetime, actor: str) -> ApiKey | None:
        key = self._keys.get(key_id)
        if key is None or key.revoked_at is not None:
            return key
        revoked = replace(key, revoked_at=now, revoked_by=actor)
        self._keys[key_id] = revoked
        return revoked
