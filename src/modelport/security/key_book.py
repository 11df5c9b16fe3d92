"""The keys a server checks requests against: a snapshot, re-read in the background.

Each worker holds every unrevoked key in a dict by key id and re-reads the metadata
database every ``keys_refresh_s`` in a daemon thread, so a key created or revoked
anywhere is honoured by every worker within that interval, and a request never waits
on the database. If a re-read fails, the last snapshot stays (logged): a database
blip must not lock everyone out. A token once verified is remembered until the next
re-read, so a client's further requests cost one dict look-up instead of the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelport.domain.keys import ApiKey
from modelport.errors import AuthenticationError
from modelport.security.keys import secret_matches, split_token
from modelport.security.principal import Principal

logger = logging.getLogger("modelport.security")

_BEARER = "bearer "
MAX_VERIFIED = 10_000
_NO_HASH = "0" * 64  # matches no secret's HMAC-SHA256 (hex)
UNUSABLE = "missing, malformed, unknown, revoked or expired API key"


@dataclass(frozen=True)
class _Entry:
    """A key as checked per request: its hash, expiry (epoch seconds) and principal."""

    secret_hash: str
    expires_at: float | None
    principal: Principal


def _entry(key: ApiKey) -> _Entry:
    expires = key.expires_at.timestamp() if key.expires_at is not None else None
    principal = Principal(
        key.key_id, key.name, frozenset(key.scopes), key.rate_limit, key.daily_quota
    )
    return _Entry(key.secret_hash, expires, principal)


class KeyBook:
    """The usable keys by id, and ``authenticate`` for an ``Authorization`` header."""

    def __init__(
        self,
        load: Callable[[], Sequence[ApiKey]],
        *,
        refresh_s: float,
        close: Callable[[], None] | None = None,
    ) -> None:
        self._load = load
        self._close = close
        self._refresh_s = refresh_s
        # The keys by id, and the tokens verified against exactly those keys (presented
        # token -> entry): replaced together, in one assignment, at every re-read.
        self._state: tuple[dict[str, _Entry], dict[str, _Entry]] = ({}, {})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        """Re-read the keys; revoked ones are dropped here, expired ones per request."""
        keys = self._load()
        # One assignment: requests see the old keys or the new ones, never a mix, and
        # what was verified against the old keys is verified again.
        self._state = ({k.key_id: _entry(k) for k in keys if k.revoked_at is None}, {})

    def usable(self) -> int:
        """How many keys would be accepted now."""
        now = time.time()
        entries = self._state[0].values()
        return sum(1 for e in entries if e.expires_at is None or now < e.expires_at)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of ``Authorization: Bearer <key>``; ``AuthenticationError``
        for anything else (one message for every reason: callers learn nothing about
        which key ids exist)."""
        if authorization is None or authorization[:7].lower() != _BEARER:
            raise AuthenticationError(f"{UNUSABLE}: send Authorization: Bearer <key>")
        token = authorization[7:].strip()
        entries, verified = self._state
        entry = verified.get(token)
        if entry is None:
            entry = _verify(entries, token)
            if len(verified) >= MAX_VERIFIED:  # bounded: a flood of keys cannot grow it
                verified.clear()
            verified[token] = entry
        if entry.expires_at is not None and time.time() >= entry.expires_at:
            raise AuthenticationError(f"{UNUSABLE}: send Authorization: Bearer <key>")
        return entry.principal

    async def verify(self, authorization: str | None) -> Principal:
        """``authenticate``: every key is in the book already (``KeyChecks``)."""
        return self.authenticate(authorization)

    def expires_at(self, key_id: str) -> float | None:
        """When the key ``key_id`` expires (epoch seconds; None: never or unknown)."""
        entry = self._state[0].get(key_id)
        return entry.expires_at if entry is not None else None

    def sign_for(self, key_id: str, message: bytes) -> tuple[Principal, bytes] | None:
        """``message`` signed for the key ``key_id`` (HMAC-SHA256 under a key derived from
        its stored hash, which never leaves this book), with its principal; None when
        the key is unknown, revoked or expired.

        What the dashboard's session cookies carry: every instance over the same database
        derives the same signing key, so a session works behind a load balancer, and it
        ends when its API key does (within one re-read)."""
        entry = self._state[0].get(key_id)
        if entry is None:
            return None
        if entry.expires_at is not None and time.time() >= entry.expires_at:
            return None
        signing_key = hmac.new(
            bytes.fromhex(entry.secret_hash), b"modelport-session", hashlib.sha256
        ).digest()
        return entry.principal, hmac.new(signing_key, message, hashlib.sha256).digest()

    def start(self) -> None:
        """Re-read the keys every ``refresh_s`` in a daemon thread until ``stop``."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="key-refresh", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End the background re-reads and release the store they read."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
        if self._close is not None:
            self._close()

    def _run(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self.refresh()
            except Exception:  # keep the last snapshot; the next pass tries again
                logger.exception("cannot re-read the API keys; keeping the last ones read")


def _verify(entries: dict[str, _Entry], token: str) -> _Entry:
    """The entry ``token`` is the key of: parsed, hashed, compared in constant time."""
    parts = split_token(token)
    if parts is None:
        raise AuthenticationError(f"{UNUSABLE}: send Authorization: Bearer <key>")
    entry = entries.get(parts[0])
    # An unknown id costs the same hash and comparison as a known one: the time of the
    # answer does not tell which key ids exist.
    stored = entry.secret_hash if entry is not None else _NO_HASH
    if not secret_matches(*parts, stored) or entry is None:
        raise AuthenticationError(f"{UNUSABLE}: send Authorization: Bearer <key>")
    return entry
