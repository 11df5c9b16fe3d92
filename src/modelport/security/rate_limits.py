"""Rate limits and quotas: the server's ``Admission``.

Every request the HTTP guard lets through takes one token from each bucket that applies:

- its API key's bucket: the key's own ``rate_limit``, else ``[security.rate_limits]
  per_key`` (with ``burst``);
- its model's bucket, when ``[security.rate_limits.models.NAME]`` sets one (with or
  without keys);
- and one request from its key's quota of the UTC day: the key's own ``daily_quota``,
  else ``[security.rate_limits] daily_quota``.

All are taken or none (a refused request costs nothing). A refusal is a
``RateLimitedError``: 429 with ``Retry-After`` (whole seconds, rounded up) and a
message naming the limit. The counts live in a ``LimitStore``: this process's memory
(``LocalLimitStore``) or a shared Redis server (``RedisLimitStore``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from modelport.config import RateLimitSettings, parse_rate
from modelport.errors import RateLimitedError
from modelport.security.buckets import Bucket, LimitStore, Quota, Refusal
from modelport.security.principal import Principal

logger = logging.getLogger("modelport.security.rate_limits")

OnLimited = Callable[[str, str | None], None]
"""Called with the refusing limit (``key``, ``model``, ``quota``) and the model named."""


class RateLimiter:
    """The ``Admission`` of a server: rate limits per key and per model, daily quotas."""

    def __init__(
        self,
        settings: RateLimitSettings,
        store: LimitStore,
        *,
        on_limited: OnLimited | None = None,
    ) -> None:
        self._store = store
        self.on_limited = on_limited
        self._per_key = settings.per_key
        self._burst = settings.burst
        self._daily_quota = settings.daily_quota
        self._models = {
            name: make_bucket("model", name, f"m:{name}", limit.rate, limit.burst)
            for name, limit in settings.models.items()
        }
        # Per (key id, its limit), made at the key's first request and when it changes.
        self._keys: dict[tuple[str, str], Bucket | None] = {}
        self._quotas: dict[tuple[str, int], Quota] = {}

    @property
    def description(self) -> str:
        """Where the counts live (``GET /api`` says it)."""
        return self._store.description

    async def connect(self) -> None:
        """Connect the store, if it keeps connections (the worker's start)."""
        connect = getattr(self._store, "connect", None)
        if connect is not None:
            await connect()

    async def aclose(self) -> None:
        """Close the store's connections, if it keeps any (the server's shutdown)."""
        close = getattr(self._store, "aclose", None)
        if close is not None:
            await close()

    def may_limit(self, principal: Principal | None, model: str | None) -> bool:
        """Whether a limit could apply: a model limit for ``model``, a default per key,
        or a limit or quota stored with the key."""
        if model is not None and model in self._models:
            return True
        if principal is None:
            return False
        return (
            self._per_key is not None
            or self._daily_quota is not None
            or principal.rate_limit is not None
            or principal.daily_quota is not None
        )

    async def admit(self, principal: Principal | None, model: str | None) -> None:
        """Take one request from every limit that applies, or raise ``RateLimitedError``."""
        model_bucket = self._models.get(model) if model is not None else None
        if principal is None:
            if model_bucket is None:
                return
            buckets: tuple[Bucket, ...] = (model_bucket,)
            quota = None
        else:
            key_bucket = self._key_bucket(principal)
            if key_bucket is None:
                buckets = () if model_bucket is None else (model_bucket,)
            else:
                buckets = (key_bucket,) if model_bucket is None else (key_bucket, model_bucket)
            quota = self._quota(principal)
            if not buckets and quota is None:
                return
        refusal = await self._store.take(buckets, quota)
        if refusal is not None:
            raise self._refused(refusal, buckets, quota, model)

    def _key_bucket(self, principal: Principal) -> Bucket | None:
        rate = principal.rate_limit or self._per_key
        if rate is None:
            return None
        cache_key = (principal.key_id, rate)
        if cache_key in self._keys:
            return self._keys[cache_key]
        bucket = self._keys[cache_key] = self._new_key_bucket(principal, rate)
        return bucket

    def _new_key_bucket(self, principal: Principal, rate: str) -> Bucket | None:
        slot = f"k:{principal.key_id}"
        if principal.rate_limit is None:
            return make_bucket("key", principal.name, slot, rate, self._burst)
        try:
            return make_bucket("key", principal.name, slot, rate, None)
        except ValueError:
            # Keys are checked when they are made; a stored rate that no longer parses
            # must not fail the key's every request: the default applies.
            logger.warning("key %r has an unusable rate_limit %r", principal.name, rate)
        if self._per_key is None:
            return None
        return make_bucket("key", principal.name, slot, self._per_key, self._burst)

    def _quota(self, principal: Principal) -> Quota | None:
        requests = principal.daily_quota or self._daily_quota
        if requests is None:
            return None
        cache_key = (principal.key_id, requests)
        quota = self._quotas.get(cache_key)
        if quota is None:
            quota = self._quotas[cache_key] = Quota(
                principal.name, f"q:{principal.key_id}", requests
            )
        return quota

    def _refused(
        self,
        refusal: Refusal,
        buckets: tuple[Bucket, ...],
        quota: Quota | None,
        model: str | None,
    ) -> RateLimitedError:
        seconds = max(1, math.ceil(refusal.wait_s))
        if refusal.index < len(buckets):
            bucket = buckets[refusal.index]
            limit = bucket.limit
            message = (
                f"rate limit of {bucket.limit} '{bucket.name}' ({bucket.rate}) exceeded; "
                f"retry in {seconds} s"
            )
        else:
            assert quota is not None
            limit = "quota"
            message = (
                f"daily quota of key '{quota.name}' ({quota.requests} requests per UTC day) "
                f"spent; it renews at 00:00 UTC, in {seconds} s"
            )
        if self.on_limited is not None:
            self.on_limited(limit, model)
        return RateLimitedError(message, retry_after=seconds, limit=limit, model=model)


def make_bucket(limit: str, name: str, slot: str, rate: str, burst: int | None) -> Bucket:
    """The bucket of a rate (``100/s``): ``burst`` tokens, by default the rate's count."""
    count, period_s = parse_rate(rate)
    size = burst if burst is not None else max(1, math.ceil(count))
    return Bucket(limit, name, slot, rate, count / period_s, size)
