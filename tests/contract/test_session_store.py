"""The dashboard-session part of the MetadataStore contract (``SessionStore``), on
memory, SQLite and PostgreSQL alike: a signed-out session stays refused until its
cookie would have lapsed, and is forgotten after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelport.metadata.store import MetadataStore

NOW = datetime(2026, 12, 7, 5, 0, 0, tzinfo=UTC)


def test_a_revoked_session_is_refused_until_it_lapses(metadata_store: MetadataStore) -> None:
    with metadata_store.reader() as tx:
        assert not tx.session_revoked("s1")
    with metadata_store.transaction() as tx:
        tx.revoke_session("s1", expires_at=NOW + timedelta(hours=1), now=NOW)
        tx.revoke_session("s1", expires_at=NOW + timedelta(hours=2), now=NOW)  # no error
        tx.revoke_session("s2", expires_at=NOW + timedelta(hours=3), now=NOW)
    with metadata_store.reader() as tx:
        assert tx.session_revoked("s1") and tx.session_revoked("s2")
        assert not tx.session_revoked("s3")
    # A later sign-out forgets the revocations whose cookies have lapsed meanwhile.
    with metadata_store.transaction() as tx:
        tx.revoke_session("s3", expires_at=NOW + timedelta(hours=4), now=NOW + timedelta(hours=2))
    with metadata_store.reader() as tx:
        assert [tx.session_revoked(s) for s in ("s1", "s2", "s3")] == [False, True, True]


def test_a_failed_transaction_revokes_nothing(metadata_store: MetadataStore) -> None:
    try:
        with metadata_store.transaction() as tx:
            tx.revoke_session("s1", expires_at=NOW + timedelta(hours=1), now=NOW)
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with metadata_store.reader() as tx:
        assert not tx.session_revoked("s1")
