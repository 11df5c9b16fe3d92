"""The API key calls of ``RegistryClient``: ``/api/keys`` (an ``admin`` key), what
``modelport key create|list|revoke`` do against a control plane."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from modelport.domain import wire
from modelport.domain.keys import ApiKey


class KeyCalls:
    """API keys over HTTP; the client supplies ``_json`` (one request, its JSON answer
    or the error it stands for). The audit trail records the calling key."""

    _json: Callable[..., Any]

    def create_key(
        self,
        name: str,
        scopes: Sequence[str],
        *,
        expires: str | None = None,
        rate_limit: str | None = None,
        daily_quota: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its token (shown this once); ``expires`` as ``90d``, ``12h``."""
        body: dict[str, Any] = {"name": name, "scopes": list(scopes)}
        optional = {"expires": expires, "rate_limit": rate_limit, "daily_quota": daily_quota}
        body.update({key: value for key, value in optional.items() if value is not None})
        found = self._json("POST", "/api/keys", json=body)
        return wire.key_from_wire(found), str(found["key"])

    def list_keys(self) -> list[ApiKey]:
        """Every key (never a secret)."""
        return [wire.key_from_wire(k) for k in self._json("GET", "/api/keys")["keys"]]

    def verify_key(self, token: str) -> dict[str, Any]:
        """The control plane's verdict on ``token`` (``POST /api/keys/verify``, with a
        ``verify`` or ``admin`` key): ``{"valid", "ttl_s", "key_id", "name", "scopes",
        "rate_limit", "daily_quota", "expires_at"}``; what a replica following it asks."""
        found: dict[str, Any] = self._json("POST", "/api/keys/verify", json={"key": token})
        return found

    def revoke_key(self, name_or_id: str) -> ApiKey:
        """Revoke a key by its id, or by its name when one unrevoked key has it."""
        found = self._json("DELETE", f"/api/keys/{quote(name_or_id, safe='')}")
        return wire.key_from_wire(found)
