"""Who a request acts as, and the admission check a rate limiter implements.

The HTTP guard (``server.http``) authenticates a request's API key to a ``Principal``,
checks the route's scope against it, then asks the server's ``Admission`` (rate limits
and quotas, ``security.rate_limits``) whether the request may go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Principal:
    """An authenticated API key: its public id, its name (the audit trail's actor),
    its scopes, and the limits stored with it (None: the server's defaults)."""

    key_id: str
    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    rate_limit: str | None = None  # "100/s", "6000/m": a token bucket for this key
    daily_quota: int | None = None  # requests per UTC day

    @property
    def actor(self) -> str:
        """The name the audit trail records for changes made with this key."""
        return f"key:{self.name}"


class Admission(Protocol):
    """Rate limits and quotas: ``admit`` returns when the request may go on and raises
    ``RateLimitedError`` (429 with ``Retry-After``) when a limit is spent.

    ``principal`` is None when the server runs without keys; ``model`` is the model the
    request names (None for routes about no model)."""

    def may_limit(self, principal: Principal | None, model: str | None) -> bool:
        """Whether some limit could apply to this request: when not, the guard skips
        ``admit`` (a coroutine per request that would find nothing to take)."""
        ...

    async def admit(self, principal: Principal | None, model: str | None) -> None:
        """Take one request from every limit that applies, or raise ``RateLimitedError``."""
        ...
