"""The dashboard-session part of the SQL metadata session, and its table (schema
revision 0006).

``revoked_sessions`` holds one row per signed-out dashboard session: its id (the random
part of the cookie), when it was signed out and when its cookie lapses; rows past that
are deleted at the next sign-out, so the table stays as small as the live sessions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from modelport.metadata.sql.statements import insert_row
from modelport.metadata.sql.tables import Base, UtcDateTime

SESSION_ID_LENGTH = 64


class RevokedSessionRow(Base):
    """One signed-out dashboard session."""

    __tablename__ = "revoked_sessions"

    session_id: Mapped[str] = mapped_column(String(SESSION_ID_LENGTH), primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class SqlSessionRevocations:
    """Session operations of ``SqlMetadataSession``; see ``SessionStore``."""

    _orm: Session
    _dialect: str

    def revoke_session(self, session_id: str, *, expires_at: datetime, now: datetime) -> None:
        self._orm.execute(
            delete(RevokedSessionRow)
            .where(RevokedSessionRow.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
        values = {"session_id": session_id, "revoked_at": now, "expires_at": expires_at}
        self._orm.execute(
            insert_row(RevokedSessionRow, values, self._dialect).on_conflict_do_nothing()
        )

    def session_revoked(self, session_id: str) -> bool:
        found = self._orm.scalar(
            select(RevokedSessionRow.session_id).where(RevokedSessionRow.session_id == session_id)
        )
        return found is not None
