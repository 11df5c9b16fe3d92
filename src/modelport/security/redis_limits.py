"""Token buckets and daily quotas in Redis: one count for every worker and replica.

Each request runs one Lua script (atomic on the server: no other script or command
runs between its reads and writes) that refills the buckets it names by the time
passed on the Redis server's clock (replicas' clocks never matter), refuses if any
bucket has less than one token or the quota is spent, and otherwise takes from all of
them. That costs one round trip to Redis per limited request (about 0.1-0.3 ms on a
local network), against a few microseconds for the in-process store.

When Redis cannot be reached (or answers later than ``redis_timeout_ms``), the limiter
logs it once and, for ``redis_retry_s``, does what ``redis_failure`` says without
waiting for Redis again: ``local`` counts in this process (approximate, as without
Redis), ``open`` admits every request, ``closed`` answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from modelport.config import RateLimitSettings
from modelport.errors import MissingDependencyError, UnavailableError
from modelport.security.buckets import DAY_S, Bucket, LocalLimitStore, Quota, Refusal

logger = logging.getLogger("modelport.security.rate_limits")

STARTUP_TIMEOUT_S = 5.0

# KEYS: the buckets, then the quota's counter of today (when there is a quota).
# ARGV: the number of buckets, then each bucket's refill per second and size, then the
# quota's requests per day. Answers {0} (taken) or {index, seconds to wait} (refused;
# index counts from 1, the quota after the buckets). Times are kept as Redis TIME's
# seconds and microseconds, exactly (Lua's tostring keeps only 14 digits).
_SCRIPT = """
local clock = redis.call('TIME')
local buckets = tonumber(ARGV[1])
local levels = {}
local refused, wait = 0, 0
for i = 1, buckets do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 's', 'us')
  local level = burst
  if state[1] then
    local passed = (tonumber(clock[1]) - tonumber(state[2]))
      + (tonumber(clock[2]) - tonumber(state[3])) / 1000000
    level = math.min(burst, tonumber(state[1]) + math.max(0, passed) * rate)
  end
  levels[i] = level
  if level < 1 and (1 - level) / rate > wait then
    refused, wait = i, (1 - level) / rate
  end
end
local quota = KEYS[buckets + 1]
if refused == 0 and quota then
  local used = tonumber(redis.call('GET', quota) or '0')
  if used >= tonumber(ARGV[2 * buckets + 2]) then
    refused, wait = buckets + 1, 86400 - tonumber(clock[1]) % 86400
  end
end
if refused > 0 then
  return {refused, string.format('%.6f', wait)}
end
for i = 1, buckets do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  redis.call('HSET', KEYS[i], 'tokens', string.format('%.17g', levels[i] - 1),
    's', clock[1], 'us', clock[2])
  redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate * 1000) + 1000)
end
if quota then
  redis.call('INCR', quota)
  redis.call('EXPIRE', quota, 2 * 86400)
end
return {0}
"""


class RedisLimitStore:
    """Buckets and quotas in the Redis server at ``url``, shared by every process that
    uses it (used from one event loop)."""

    description = "counted in Redis, shared by every worker and replica (exact)"

    def __init__(self, url: str, settings: RateLimitSettings) -> None:
        self._prefix = settings.redis_prefix
        self._timeout_s = settings.redis_timeout_ms / 1000
        self._retry_s = settings.redis_retry_s
        self._failure = settings.redis_failure
        self._local = LocalLimitStore()
        # Built now (a missing redis-py fails the start); it connects at the first request.
        name = "".join("_" if c.isspace() else c for c in self._prefix) + "limiter"
        self._client, self._script, self._errors = _connect(url, self._timeout_s, name)
        self._down_until = 0.0  # monotonic time until which Redis is not tried
        split = urlsplit(url)  # the address only: never the password in a log line
        self._where = split.path if split.scheme == "unix" else f"{split.hostname}:{split.port}"

    async def take(self, buckets: Sequence[Bucket], quota: Quota | None) -> Refusal | None:
        """Take from every bucket and the quota in one script run, or from none."""
        if self._down_until and time.monotonic() < self._down_until:
            return self._fallback(buckets, quota)
        keys = [self._prefix + bucket.slot for bucket in buckets]
        args: list[float | int] = [len(buckets)]
        for bucket in buckets:
            args += (bucket.per_second, bucket.burst)
        if quota is not None:
            keys.append(f"{self._prefix}{quota.slot}:{int(time.time() // DAY_S)}")
            args.append(quota.requests)
        try:
            async with asyncio.timeout(self._timeout_s):
                reply = await self._script(keys=keys, args=args, client=self._client)
        except (OSError, TimeoutError, self._errors) as exc:
            self._went_down(exc)
            return self._fallback(buckets, quota)
        if self._down_until:
            self._down_until = 0.0
            logger.warning("rate limits: Redis at %s answers again", self._where)
        if int(reply[0]) == 0:
            return None
        return Refusal(int(reply[0]) - 1, float(reply[1]))

    async def connect(self) -> None:
        """Open a connection and load the script before the first request (the worker's
        start), so that no request pays for them; allowed ``STARTUP_TIMEOUT_S`` because
        a worker starting beside others may be slow. A Redis that cannot be reached is
        logged and handled as at a request (``redis_failure``), not fatal: the server
        serves meanwhile and tries Redis again after ``redis_retry_s``."""
        try:
            async with asyncio.timeout(max(self._timeout_s, STARTUP_TIMEOUT_S)):
                await self._client.script_load(_SCRIPT)
        except (OSError, TimeoutError, self._errors) as exc:
            self._went_down(exc)

    async def aclose(self) -> None:
        """Close the connections to Redis (the server's shutdown)."""
        await self._client.aclose()

    def _went_down(self, exc: BaseException) -> None:
        if not self._down_until:
            what = {
                "local": "counting in each server process meanwhile",
                "open": "admitting every request meanwhile",
                "closed": "refusing every request (503) meanwhile",
            }[self._failure]
            logger.warning(
                "rate limits: Redis at %s cannot be reached (%s: %s); %s "
                "(security.rate_limits.redis_failure = %r), trying again every %g s",
                self._where, type(exc).__name__, exc, what, self._failure, self._retry_s,
            )  # fmt: skip
        self._down_until = time.monotonic() + self._retry_s

    def _fallback(self, buckets: Sequence[Bucket], quota: Quota | None) -> Refusal | None:
        if self._failure == "local":
            return self._local.take_now(buckets, quota)
        if self._failure == "open":
            return None
        raise UnavailableError(
            "the rate limiter cannot reach its Redis server; try again later",
            retry_after=max(1, math.ceil(self._retry_s)),
        )


def _connect(url: str, timeout_s: float, name: str) -> tuple[Any, Any, type[Exception]]:
    """A redis-py asyncio client for ``url`` (not connected yet; its connections are
    named ``name`` in Redis's CLIENT LIST), the registered script, and the class of
    redis-py's errors."""
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError
    except ImportError:
        raise MissingDependencyError(
            "rate limits in Redis need redis-py; install it with: pip install 'modelport[redis]'",
            package="redis",
            extra="redis",
        ) from None
    # One immediate retry: a pooled connection that Redis closed (a restart) reconnects
    # instead of failing the request; asyncio.timeout bounds both attempts together.
    client = Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
        client_name=name,
    )
    return client, client.register_script(_SCRIPT), RedisError
