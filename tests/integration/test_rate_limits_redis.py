"""Rate limits in Redis: one count for every process, taken atomically, keys that
expire, and what happens while Redis cannot be reached (each ``redis_failure`` mode)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from modelport.config import RateLimitSettings
from modelport.errors import RateLimitedError, UnavailableError
from modelport.security.principal import Principal
from modelport.security.rate_limits import RateLimiter
from modelport.security.redis_limits import RedisLimitStore
from testing_proxy import CuttableProxy
from testing_redis import reachable_redis_url, redis_keys, redis_prefix

pytestmark = pytest.mark.redis

CI = Principal("k-ci", "ci", frozenset({"predict"}))


@pytest.fixture
def redis_url() -> str:
    return reachable_redis_url()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    with redis_prefix(redis_url) as chosen:
        yield chosen


async def passes(limiter: RateLimiter, principal: Principal | None, model: str | None) -> bool:
    try:
        await limiter.admit(principal, model)
    except RateLimitedError:
        return False
    return True


def test_limiters_sharing_one_redis_count_together(redis_url: str, prefix: str) -> None:
    # Two stores are what two server processes (or replicas) have.
    config = RateLimitSettings(per_key="10/h", redis_prefix=prefix)

    async def scenario() -> list[bool]:
        stores = [RedisLimitStore(redis_url, config) for _ in range(2)]
        limiters = [RateLimiter(config, store) for store in stores]
        try:
            return [await passes(limiters[i % 2], CI, None) for i in range(16)]
        finally:
            for store in stores:
                await store.aclose()

    outcomes = asyncio.run(scenario())
    assert outcomes == [True] * 10 + [False] * 6


def test_concurrent_requests_take_exactly_the_burst(redis_url: str, prefix: str) -> None:
    config = RateLimitSettings(models={"churn": {"rate": "1/h", "burst": 10}}, redis_prefix=prefix)

    async def scenario() -> list[bool]:
        stores = [RedisLimitStore(redis_url, config) for _ in range(2)]
        limiters = [RateLimiter(config, store) for store in stores]
        try:
            return await asyncio.gather(
                *(passes(limiters[i % 2], None, "churn") for i in range(40))
            )
        finally:
            for store in stores:
                await store.aclose()

    assert sum(asyncio.run(scenario())) == 10


def test_every_key_expires(redis_url: str, prefix: str) -> None:
    config = RateLimitSettings(per_key="10/s", daily_quota=100, redis_prefix=prefix)

    async def scenario() -> None:
        store = RedisLimitStore(redis_url, config)
        try:
            await RateLimiter(config, store).admit(CI, None)
        finally:
            await store.aclose()

    asyncio.run(scenario())
    keys = redis_keys(redis_url, prefix)
    bucket = [ttl for key, ttl in keys.items() if key.startswith(prefix + "k:")]
    quota = [ttl for key, ttl in keys.items() if key.startswith(prefix + "q:")]
    # A full bucket (10 tokens at 10/s: 1 s) is as good as none: gone a second after.
    assert len(bucket) == 1 and 0 < bucket[0] <= 2000
    assert len(quota) == 1 and 86400_000 < quota[0] <= 2 * 86400_000


@pytest.fixture
def proxy(redis_url: str) -> Iterator[CuttableProxy]:
    from urllib.parse import urlsplit

    split = urlsplit(redis_url)
    cuttable = CuttableProxy((split.hostname or "127.0.0.1", split.port or 6379))
    try:
        yield cuttable
    finally:
        cuttable.close()


def settings_through(proxy: CuttableProxy, prefix: str, **changes: Any) -> RateLimitSettings:
    return RateLimitSettings(
        per_key="3/h", redis_prefix=prefix, redis_timeout_ms=500, redis_retry_s=0.3, **changes
    )


def test_local_counting_while_redis_is_away_then_redis_again(
    proxy: CuttableProxy, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = settings_through(proxy, prefix, redis_failure="local")
    url = f"redis://127.0.0.1:{proxy.port}/0"

    async def scenario() -> None:
        store = RedisLimitStore(url, config)
        limiter = RateLimiter(config, store)
        try:
            assert await passes(limiter, CI, None)  # counted in Redis: 2 left there
            proxy.cut()
            # Counted in this process meanwhile: a fresh bucket of 3, then refused.
            assert [await passes(limiter, CI, None) for _ in range(4)] == [True] * 3 + [False]
            proxy.restore()
            await asyncio.sleep(0.4)  # redis_retry_s: Redis is tried again
            assert [await passes(limiter, CI, None) for _ in range(3)] == [True, True, False]
        finally:
            await store.aclose()

    with caplog.at_level(logging.WARNING, logger="modelport.security.rate_limits"):
        asyncio.run(scenario())
    messages = [record.getMessage() for record in caplog.records]
    away = [m for m in messages if "cannot be reached" in m]
    assert len(away) == 1  # once per outage, not per request
    assert f"127.0.0.1:{proxy.port}" in away[0] and "redis_failure = 'local'" in away[0]
    assert any("answers again" in m for m in messages)


def test_open_admits_everything_while_redis_is_away(proxy: CuttableProxy, prefix: str) -> None:
    config = settings_through(proxy, prefix, redis_failure="open")

    async def scenario() -> list[bool]:
        store = RedisLimitStore(f"redis://127.0.0.1:{proxy.port}/0", config)
        limiter = RateLimiter(config, store)
        try:
            proxy.cut()
            return [await passes(limiter, CI, None) for _ in range(6)]
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) == [True] * 6


def test_closed_answers_unavailable_while_redis_is_away(proxy: CuttableProxy, prefix: str) -> None:
    config = settings_through(proxy, prefix, redis_failure="closed")

    async def scenario() -> None:
        store = RedisLimitStore(f"redis://127.0.0.1:{proxy.port}/0", config)
        limiter = RateLimiter(config, store)
        try:
            await limiter.admit(CI, None)
            proxy.cut()
            with pytest.raises(UnavailableError) as refused:
                await limiter.admit(CI, None)
            assert refused.value.retry_after == 1
            assert "rate limiter cannot reach its Redis server" in str(refused.value)
        finally:
            await store.aclose()

    asyncio.run(scenario())


def test_a_silent_redis_costs_at_most_the_timeout(prefix: str) -> None:
    # A listener that accepts and never answers: the request waits redis_timeout_ms only.
    import socket
    import time

    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    config = RateLimitSettings(
        per_key="3/h", redis_prefix=prefix, redis_timeout_ms=200, redis_failure="open"
    )

    async def scenario() -> float:
        store = RedisLimitStore(f"redis://127.0.0.1:{port}/0", config)
        try:
            started = time.monotonic()
            await RateLimiter(config, store).admit(CI, None)
            return time.monotonic() - started
        finally:
            await store.aclose()

    try:
        assert asyncio.run(scenario()) < 1.0
    finally:
        silent.close()


def test_connect_opens_a_connection_before_the_first_request(redis_url: str, prefix: str) -> None:
    import redis

    config = RateLimitSettings(per_key="3/h", redis_prefix=prefix)

    async def scenario() -> list[str]:
        store = RedisLimitStore(redis_url, config)
        try:
            await RateLimiter(config, store).connect()  # what a worker does as it starts
            with redis.Redis.from_url(redis_url) as probe:
                return [client["name"] for client in probe.client_list()]
        finally:
            await store.aclose()

    assert f"{prefix}limiter" in asyncio.run(scenario())


def test_a_redis_away_at_the_start_is_logged_and_the_fallback_serves(
    proxy: CuttableProxy, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = settings_through(proxy, prefix, redis_failure="local")

    async def scenario() -> list[bool]:
        store = RedisLimitStore(f"redis://127.0.0.1:{proxy.port}/0", config)
        limiter = RateLimiter(config, store)
        try:
            proxy.cut()
            await limiter.connect()  # not fatal: the worker starts and counts locally
            return [await passes(limiter, CI, None) for _ in range(4)]
        finally:
            await store.aclose()

    with caplog.at_level(logging.WARNING, logger="modelport.security.rate_limits"):
        assert asyncio.run(scenario()) == [True] * 3 + [False]
    away = [r.getMessage() for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert len(away) == 1 and "counting in each server process meanwhile" in away[0]
