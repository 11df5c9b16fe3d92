"""The API-key part of the SQL metadata session, and its table (schema revision 0005).

``api_keys`` holds one row per key: its public id, name, scopes (JSON text), the keyed
hash of its secret, who made and revoked it and when, and its own limits. Revoking is
one ``UPDATE ... WHERE revoked_at IS NULL``, so the first revocation is the one kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from modelport.domain.keys import ApiKey
from modelport.metadata.keys import key_exists
from modelport.metadata.sql.statements import insert_row
from modelport.metadata.sql.tables import Base, JsonText, UtcDateTime

KEY_ID_LENGTH = 32
KEY_NAME_LENGTH = 64


class ApiKeyRow(Base):
    """One API key (never its secret)."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(KEY_NAME_LENGTH), index=True)
    scopes: Mapped[list[str]] = mapped_column(JsonText)
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str | None] = mapped_column(Text)
    rate_limit: Mapped[str | None] = mapped_column(String(32))
    daily_quota: Mapped[int | None] = mapped_column(Integer)

    def to_domain(self) -> ApiKey:
        """The domain key."""
        return ApiKey(
            key_id=self.key_id,
            name=self.name,
            scopes=tuple(self.scopes),
            secret_hash=self.secret_hash,
            created_at=self.created_at,
            created_by=self.created_by,
            expires_at=self.expires_at,
            revoked_at=self.revoked_at,
            revoked_by=self.revoked_by,
            rate_limit=self.rate_limit,
            daily_quota=self.daily_quota,
        )


def _values(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "name": key.name,
        "scopes": list(key.scopes),
        "secret_hash": key.secret_hash,
        "created_at": key.created_at,
        "created_by": key.created_by,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "revoked_by": key.revoked_by,
        "rate_limit": key.rate_limit,
        "daily_quota": key.daily_quota,
    }


class SqlKeySession:
    """Key operations of ``SqlMetadataSession``; see ``KeyStore`` for the contract."""

    _orm: Session
    _dialect: str

    def add_key(self, key: ApiKey) -> ApiKey:
        statement = (
            insert_row(ApiKeyRow, _values(key), self._dialect)
            .on_conflict_do_nothing()
            .returning(ApiKeyRow.key_id)
        )
        if self._orm.scalar(statement) is None:
            raise key_exists(key.key_id)
        return key

    def get_key(self, key_id: str) -> ApiKey | None:
        row = self._orm.scalar(
            select(ApiKeyRow)
            .where(ApiKeyRow.key_id == key_id)
            .execution_options(populate_existing=True)
        )
        return row.to_domain() if row is not None else None

    def list_keys(self) -> list[ApiKey]:
        rows = self._orm.scalars(
            select(ApiKeyRow)
            .order_by(ApiKeyRow.created_at, ApiKeyRow.key_id)
            .execution_options(populate_existing=True)
        )
        return [row.to_domain() for row in rows]

    def revoke_key(self, key_id: str, *, now: datetime, actor: str) -> ApiKey | None:
        self._orm.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=actor)
            .execution_options(synchronize_session=False)
        )
        return self.get_key(key_id)
