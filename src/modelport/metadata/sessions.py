"""The dashboard-session part of the metadata contract: ``SessionStore``, and its
in-memory twin.

A signed-out dashboard session is recorded here by its id (the random part of its
cookie) until the cookie would have expired anyway, so that every control-plane
instance over the same database refuses the cookie from then on, however it was
copied. ``MetadataSession`` includes this protocol; ``MemorySessionRevocations`` is the
reference the contract tests hold the SQL one (``metadata.sql.sessions``) to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class SessionStore(Protocol):
    """Revoked dashboard sessions (their ids, never their cookies)."""

    def revoke_session(self, session_id: str, *, expires_at: datetime, now: datetime) -> None:
        """Record the session ``session_id`` as signed out until ``expires_at`` (when its
        cookie lapses by itself); revoking it again changes nothing. Revocations past
        their expiry at ``now`` are forgotten."""
        ...

    def session_revoked(self, session_id: str) -> bool:
        """Whether the session ``session_id`` was signed out."""
        ...


class MemorySessionRevocations:
    """Session operations of ``MemorySession``; see ``SessionStore`` for the contract."""

    _revoked_sessions: dict[str, datetime]

    def revoke_session(self, session_id: str, *, expires_at: datetime, now: datetime) -> None:
        for stale in [s for s, until in self._revoked_sessions.items() if until <= now]:
            del self._revoked_sessions[stale]
        self._revoked_sessions.setdefault(session_id, expires_at)

    def session_revoked(self, session_id: str) -> bool:
        return session_id in self._revoked_sessions
