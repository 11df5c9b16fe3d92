"""The API-key part of the MetadataStore contract (``KeyStore``), on memory, SQLite and
PostgreSQL alike, and ``KeyAdmin``'s audited changes over it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelport.domain.keys import ApiKey
from modelport.errors import ConflictError, InvalidArgumentError, NotFoundError
from modelport.metadata.store import MetadataStore
from modelport.security.key_admin import KeyAdmin
from modelport.security.keys import secret_matches, split_token

NOW = datetime(2026, 12, 6, 20, 0, 5, 125000, tzinfo=UTC)


def key(key_id: str = "abcdefghijkl", name: str = "ci", **fields: object) -> ApiKey:
    values: dict[str, object] = {
        "key_id": key_id,
        "name": name,
        "scopes": ("predict:churn", "feedback:churn"),
        "secret_hash": "f" * 64,
        "created_at": NOW,
        "created_by": "ana",
        **fields,
    }
    return ApiKey(**values)  # type: ignore[arg-type]


def test_a_key_is_stored_and_read_back_field_for_field(metadata_store: MetadataStore) -> None:
    stored = key(expires_at=NOW + timedelta(days=90), rate_limit="50/s", daily_quota=100_000)
    with metadata_store.transaction() as tx:
        tx.add_key(stored)
        tx.add_key(key("zzzzzzzzzzzz", "later", created_at=NOW + timedelta(seconds=1)))
    with metadata_store.reader() as tx:
        assert tx.get_key("abcdefghijkl") == stored
        assert tx.get_key("nope") is None
        assert [k.name for k in tx.list_keys()] == ["ci", "later"]
        found = tx.get_key("abcdefghijkl")
    assert found is not None and found.expires_at == NOW + timedelta(days=90)
    assert found.expires_at.tzinfo is not None


def test_a_second_key_with_the_same_id_is_refused(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as tx:
        tx.add_key(key())
    with pytest.raises(ConflictError), metadata_store.transaction() as tx:
        tx.add_key(key(name="other"))
    with metadata_store.reader() as tx:
        assert [k.name for k in tx.list_keys()] == ["ci"]


def test_revoking_keeps_the_first_revocation(metadata_store: MetadataStore) -> None:
    with metadata_store.transaction() as tx:
        tx.add_key(key())
        first = tx.revoke_key("abcdefghijkl", now=NOW, actor="ana")
        again = tx.revoke_key("abcdefghijkl", now=NOW + timedelta(hours=1), actor="bo")
        assert tx.revoke_key("nope", now=NOW, actor="ana") is None
    assert first is not None and (first.revoked_at, first.revoked_by) == (NOW, "ana")
    assert again == first
    with metadata_store.reader() as tx:
        assert tx.get_key("abcdefghijkl") == first


def test_key_admin_changes_are_audited_and_store_only_a_hash(
    metadata_store: MetadataStore,
) -> None:
    admin = KeyAdmin(metadata_store, clock=lambda: NOW)
    created, token = admin.create("ci", ["predict:churn", "predict:churn"], actor="ana")
    parts = split_token(token)
    assert parts is not None and parts[0] == created.key_id
    assert created.scopes == ("predict:churn",)
    assert parts[1] not in created.secret_hash and secret_matches(*parts, created.secret_hash)
    with pytest.raises(ConflictError, match="revoke it first"):
        admin.create("ci", ["admin"], actor="ana")
    revoked = admin.revoke("ci", actor="bo")
    assert (revoked.revoked_by, revoked.revoked_at) == ("bo", NOW)
    with pytest.raises(NotFoundError):
        admin.revoke("ci", actor="bo")  # by name: only unrevoked keys
    assert admin.revoke(created.key_id, actor="bo") == revoked  # by id: as it was
    renewed, _ = admin.create("ci", ["admin"], actor="ana")  # the name is free again
    with metadata_store.reader() as tx:
        trail = [(e.action, e.actor, e.target) for e in tx.list_audit() if e.action[:4] == "key."]
        assert token not in str(tx.list_audit())
    assert sorted(trail) == [
        ("key.created", "ana", "key:ci"),
        ("key.created", "ana", "key:ci"),
        ("key.revoked", "bo", "key:ci"),
    ]
    assert renewed.key_id != created.key_id


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["read"], "read"),
        (["deploy:churn-v2.1"], "deploy:churn-v2.1"),
        (["metrics"], "metrics"),
    ],
)
def test_scopes_are_checked_and_bad_ones_name_the_accepted_forms(
    metadata_store: MetadataStore, scopes: list[str], expected: str
) -> None:
    admin = KeyAdmin(metadata_store, clock=lambda: NOW)
    assert admin.create("k", scopes, actor="ana")[0].scopes == (expected,)
    for bad in (["infer:churn"], ["admin:keys"], ["predict:../x"], [], ["metrics:churn"]):
        with pytest.raises(InvalidArgumentError) as refused:
            admin.create("other", bad, actor="ana")
        assert "predict[:MODEL]" in str(refused.value) or "not a model name" in str(refused.value)
