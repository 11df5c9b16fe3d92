"""Creating, listing and revoking API keys, each change audited.

``KeyAdmin`` is what ``modelport key ...`` and the ``/api/keys`` routes call. A
change and its audit entry are one metadata transaction; the entry names the key
(``key:<name>``) and never its secret or hash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from modelport.config import parse_rate
from modelport.domain.entities import NewAuditEntry
from modelport.domain.keys import KEY_NAME_PATTERN, ApiKey, parse_scopes, validate_key_name
from modelport.errors import ConflictError, InvalidArgumentError, NotFoundError
from modelport.metadata.store import MetadataSession, MetadataStore
from modelport.registry.context import Clock, utc_now
from modelport.security.keys import issue_key

_DURATION = re.compile(r"([1-9][0-9]{0,5})([mhd])")
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
MAX_QUOTA = 2_000_000_000  # fits the database's 32-bit integer column


def parse_expiry(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``: how long a new key lives."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidArgumentError(
            f"expiry {text!r}: use a number and a unit, e.g. 90d, 12h or 30m", field="expires"
        )
    return int(match[1]) * _UNIT[match[2]]


def check_rate(text: str | None) -> str | None:
    """A key's rate limit, read as the server's limiter reads rates (``config.parse_rate``:
    ``100/s``, ``6000/m``, ``1000/h``, ``50000/d``); None: the server's default."""
    if text is None:
        return None
    try:
        parse_rate(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"rate limit {exc}", field="rate_limit") from None
    return text.replace(" ", "")


def check_quota(quota: int | None) -> int | None:
    """A key's daily quota: 1 to 2,000,000,000 requests (None: the server's default)."""
    if quota is not None and not 1 <= quota <= MAX_QUOTA:
        raise InvalidArgumentError(
            f"daily quota {quota}: give a number of requests from 1 to {MAX_QUOTA}",
            field="daily_quota",
        )
    return quota


class KeyAdmin:
    """The keys of one metadata store."""

    def __init__(self, metadata: MetadataStore, *, clock: Clock = utc_now) -> None:
        self.metadata = metadata
        self._clock = clock

    def create(
        self,
        name: str,
        scopes: Iterable[str],
        *,
        actor: str,
        expires_in: timedelta | None = None,
        rate_limit: str | None = None,
        daily_quota: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its token (shown once: only its hash is stored)."""
        name, checked = validate_key_name(name), parse_scopes(scopes)
        rate, quota = check_rate(rate_limit), check_quota(daily_quota)
        now = self._clock()
        issued = issue_key()
        key = ApiKey(
            issued.key_id,
            name,
            checked,
            issued.secret_hash,
            now,
            actor,
            expires_at=now + expires_in if expires_in is not None else None,
            rate_limit=rate,
            daily_quota=quota,
        )
        with self.metadata.transaction() as tx:
            if any(k.name == name and k.usable_at(now) for k in tx.list_keys()):
                raise ConflictError(
                    f"a usable key named {name!r} exists: revoke it first "
                    f"(modelport key revoke {name}) or pick another name"
                )
            tx.add_key(key)
            _audit(tx, "key.created", key, actor, now)
        return key, issued.token

    def list(self) -> list[ApiKey]:
        """Every key, oldest first (revoked and expired ones included)."""
        with self.metadata.reader() as tx:
            return tx.list_keys()

    def revoke(self, name_or_id: str, *, actor: str) -> ApiKey:
        """Revoke the key with this id, or the one unrevoked key with this name."""
        now = self._clock()
        with self.metadata.transaction() as tx:
            key = _find(tx, name_or_id)
            revoked = tx.revoke_key(key.key_id, now=now, actor=actor)
            assert revoked is not None  # found in this transaction
            if key.revoked_at is None:
                _audit(tx, "key.revoked", revoked, actor, now)
            return revoked


def _find(tx: MetadataSession, name_or_id: str) -> ApiKey:
    if not KEY_NAME_PATTERN.fullmatch(name_or_id):  # ids match it too; nothing else exists
        raise NotFoundError(f"no unrevoked API key has the name or id {name_or_id!r}")
    found = tx.get_key(name_or_id)
    if found is not None:
        return found
    named = [k for k in tx.list_keys() if k.name == name_or_id and k.revoked_at is None]
    if not named:
        raise NotFoundError(f"no unrevoked API key has the name or id {name_or_id!r}")
    if len(named) > 1:
        ids = ", ".join(k.key_id for k in named)
        raise ConflictError(f"several keys are named {name_or_id!r}: revoke one by id ({ids})")
    return named[0]


def _audit(tx: MetadataSession, action: str, key: ApiKey, actor: str, now: datetime) -> None:
    tx.add_audit(
        NewAuditEntry(
            actor=actor,
            action=action,
            model="",  # keys belong to no model; ``target`` names the key
            timestamp=now,
            target=f"key:{key.name}",
            after=key.to_dict(),
        )
    )
