"""API keys as stored, and the scopes they carry.

A key is presented as ``mp_<key_id>_<secret>``; the store keeps its public ``key_id``,
a ``name`` (what the audit trail and the logs show), its scopes and limits, and a keyed
hash of the secret, never the secret itself (``security.keys`` makes and checks them).

Scopes are ``ACTION`` or ``ACTION:MODEL``: ``predict``, ``feedback``, ``read`` and
``deploy`` may name one model (or deployment); ``admin`` (manages keys, implies every
scope), ``metrics`` and ``verify`` (a serving replica checking its callers' keys
through the control plane, ``POST /api/keys/verify``) name none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from modelport.domain.names import MODEL_NAME_PATTERN
from modelport.errors import InvalidArgumentError

ADMIN = "admin"
METRICS = "metrics"
VERIFY = "verify"
MODEL_ACTIONS = ("predict", "feedback", "read", "deploy")
PLAIN_ACTIONS = (ADMIN, METRICS, VERIFY)
ACCEPTED_SCOPES = (
    "predict[:MODEL], feedback[:MODEL], read[:MODEL], deploy[:MODEL], admin, metrics, verify"
)
KEY_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class ApiKey:
    """One stored API key (``secret_hash`` is the keyed hash of its secret)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    secret_hash: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    rate_limit: str | None = None  # "100/s": this key's token bucket (None: the default)
    daily_quota: int | None = None  # requests per UTC day (None: the default)

    def usable_at(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at

    def to_dict(self) -> dict[str, object]:
        """The key's public description (never its hash)."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": _iso(self.created_at),
            "created_by": self.created_by,
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "rate_limit": self.rate_limit,
            "daily_quota": self.daily_quota,
        }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_scope(text: str) -> str:
    """``text`` checked against the scope grammar, returned in its canonical form;
    ``InvalidArgumentError`` naming the accepted forms otherwise."""
    scope = text.strip()
    action, colon, model = scope.partition(":")
    if action in PLAIN_ACTIONS and not colon:
        return action
    if action in MODEL_ACTIONS:
        if not colon:
            return action
        if MODEL_NAME_PATTERN.fullmatch(model) and ".." not in model:
            return f"{action}:{model}"
        raise InvalidArgumentError(
            f"scope {text!r}: {model!r} is not a model name (letters, digits, '.', '_', '-')",
            field="scope",
        )
    raise InvalidArgumentError(
        f"scope {text!r} is not one of the accepted forms: {ACCEPTED_SCOPES}", field="scope"
    )


def parse_scopes(texts: Iterable[str]) -> tuple[str, ...]:
    """Every scope checked (``parse_scope``), duplicates dropped, in the order given;
    at least one."""
    scopes = tuple(dict.fromkeys(parse_scope(text) for text in texts))
    if not scopes:
        raise InvalidArgumentError(
            f"a key needs at least one scope: {ACCEPTED_SCOPES}", field="scope"
        )
    return scopes


def validate_key_name(name: str) -> str:
    """A key's name: letters, digits, '.', '_' or '-', at most 64 characters."""
    if not KEY_NAME_PATTERN.fullmatch(name):
        raise InvalidArgumentError(
            f"key name {name!r}: use letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (at most 64 characters)",
            field="name",
        )
    return name
