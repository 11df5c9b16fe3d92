"""What a server checks API keys with: the contract the HTTP guard, the key routes and
the dashboard's sessions rely on.

Two implementations: ``key_book.KeyBook`` (every key of the metadata database, in
memory) and ``remote.key_checks.RemoteKeyBook`` (a replica following a control plane by
its URL, asking it about the keys it has not seen within a short TTL).
``authenticate`` is the per-request call and costs a dict look-up for a key seen
before; it returns None only for a key this server must still ask about, which
``verify`` (awaited, off the event loop) then does.
"""

from __future__ import annotations

from typing import Protocol

from modelport.security.principal import Principal


class KeyChecks(Protocol):
    """The keys a server accepts."""

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal of ``Authorization: Bearer <key>``; ``AuthenticationError``
        for an unusable key; None when the key must first be ``verify``-ed."""
        ...

    async def verify(self, authorization: str | None) -> Principal:
        """The principal of a key ``authenticate`` did not know, asked where keys live."""
        ...

    def expires_at(self, key_id: str) -> float | None:
        """When a key this server knows expires (epoch seconds; None: never, unknown)."""
        ...

    def sign_for(self, key_id: str, message: bytes) -> tuple[Principal, bytes] | None:
        """``message`` signed for ``key_id`` (dashboard sessions), or None."""
        ...

    def refresh(self) -> None:
        """Forget or re-read what was checked, now (after a key changed here)."""
        ...

    def start(self) -> None:
        """Begin any background work (re-reads)."""
        ...

    def stop(self) -> None:
        """End background work and release what the checks hold."""
        ...
