"""Signed-out dashboard sessions, kept in the metadata database (``SessionStore``) so
that every control-plane instance over it refuses a signed-out cookie, copies included.

A row lives until the cookie would have lapsed anyway; the next sign-out deletes the
rows past that. Calls open the database: run them in a thread.
"""

from __future__ import annotations

from datetime import UTC, datetime

from modelport.registry.service import RegistryService
from modelport.ui.session import Viewer


def revoke(registry: RegistryService, viewer: Viewer) -> None:
    """Record the viewer's session as signed out (nothing to do without a session)."""
    if viewer.session is None:
        return
    expires = datetime.fromtimestamp(viewer.expires, UTC)
    with registry.metadata.transaction() as tx:
        tx.revoke_session(viewer.session, expires_at=expires, now=datetime.now(UTC))


def revoked(registry: RegistryService, viewer: Viewer) -> bool:
    """Whether the viewer's session was signed out (on any instance)."""
    if viewer.session is None:
        return False
    with registry.metadata.reader() as tx:
        return tx.session_revoked(viewer.session)
