"""Rate limits and quotas (``RateLimiter``) on each limit store: in this process's memory
and in the real Redis server (a key prefix per test, deleted after)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from modelport.config import RateLimitSettings
from modelport.errors import RateLimitedError
from modelport.security.buckets import LocalLimitStore
from modelport.security.principal import Principal
from modelport.security.rate_limits import RateLimiter
from modelport.security.redis_limits import RedisLimitStore
from testing_redis import reachable_redis_url, redis_prefix

CI = Principal("k-ci", "ci", frozenset({"predict"}))
NIGHTLY = Principal("k-nightly", "nightly", frozenset({"predict"}))

Limits = Callable[..., AbstractAsyncContextManager[RateLimiter]]


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def limits(request: pytest.FixtureRequest) -> Iterator[Limits]:
    """``async with limits(per_key="2/h", ...) as limiter``: a limiter with those
    settings on the back end of the parameter (closed at the end of the block)."""
    if request.param == "local":

        @asynccontextmanager
        async def local(**settings: Any) -> AsyncIterator[RateLimiter]:
            yield RateLimiter(RateLimitSettings(**settings), LocalLimitStore())

        yield local
        return
    url = reachable_redis_url()
    with redis_prefix(url) as prefix:

        @asynccontextmanager
        async def shared(**settings: Any) -> AsyncIterator[RateLimiter]:
            config = RateLimitSettings(redis_prefix=prefix, **settings)
            store = RedisLimitStore(url, config)
            try:
                yield RateLimiter(config, store)
            finally:
                await store.aclose()

        yield shared


async def admitted(
    limiter: RateLimiter, principal: Principal | None, model: str | None, n: int
) -> int:
    """How many of ``n`` requests in a row pass."""
    passed = 0
    for _ in range(n):
        try:
            await limiter.admit(principal, model)
        except RateLimitedError:
            continue
        passed += 1
    return passed


async def refusal(
    limiter: RateLimiter, principal: Principal | None, model: str | None
) -> RateLimitedError:
    with pytest.raises(RateLimitedError) as refused:
        await limiter.admit(principal, model)
    return refused.value


def test_a_key_gets_its_burst_then_429_naming_the_limit(limits: Limits) -> None:
    async def scenario() -> None:
        async with limits(per_key="3/h") as limiter:
            assert await admitted(limiter, CI, "churn", 3) == 3
            refused = await refusal(limiter, CI, "churn")
            assert refused.limit == "key" and refused.model == "churn"
            # One token per 1200 s: the next one is that far away, rounded up.
            assert 1195 <= refused.retry_after <= 1200
            assert "rate limit of key 'ci' (3/h) exceeded" in str(refused)
            # Another key has its own bucket.
            assert await admitted(limiter, NIGHTLY, "churn", 3) == 3

    asyncio.run(scenario())


def test_tokens_come_back_at_the_rate(limits: Limits) -> None:
    async def scenario() -> None:
        async with limits(per_key="4/s", burst=1) as limiter:
            await limiter.admit(CI, None)
            assert (await refusal(limiter, CI, None)).retry_after == 1  # 0.25 s, rounded up
            await asyncio.sleep(0.3)
            await limiter.admit(CI, None)

    asyncio.run(scenario())


def test_burst_sets_the_bucket_size(limits: Limits) -> None:
    async def scenario() -> None:
        async with limits(per_key="1/h", burst=5) as limiter:
            assert await admitted(limiter, CI, None, 8) == 5

    asyncio.run(scenario())


def test_a_keys_own_limits_override_the_defaults(limits: Limits) -> None:
    own = Principal("k-own", "own", frozenset(), rate_limit="2/h", daily_quota=4)

    async def scenario() -> None:
        async with limits(per_key="100/s", daily_quota=50) as limiter:
            assert await admitted(limiter, own, None, 5) == 2
            assert (await refusal(limiter, own, None)).limit == "key"
            assert await admitted(limiter, CI, None, 20) == 20

    asyncio.run(scenario())


def test_a_model_limit_applies_without_keys_and_to_that_model_only(limits: Limits) -> None:
    async def scenario() -> None:
        async with limits(models={"churn": {"rate": "2/h"}}) as limiter:
            assert await admitted(limiter, None, "churn", 2) == 2
            refused = await refusal(limiter, None, "churn")
            assert refused.limit == "model" and refused.model == "churn"
            assert "rate limit of model 'churn' (2/h) exceeded" in str(refused)
            assert await admitted(limiter, None, "forest", 10) == 10
            assert await admitted(limiter, None, None, 10) == 10
            # Keys share the model's bucket: it is empty for them too.
            assert (await refusal(limiter, CI, "churn")).limit == "model"

    asyncio.run(scenario())


def test_a_refused_request_takes_from_no_limit(limits: Limits) -> None:
    async def scenario() -> None:
        async with limits(per_key="2/h", models={"churn": {"rate": "1/h"}}) as limiter:
            await limiter.admit(CI, "churn")  # ci: 1 token left; churn: none
            assert (await refusal(limiter, CI, "churn")).limit == "model"
            await limiter.admit(CI, "forest")  # the refusal did not take ci's last token
            assert (await refusal(limiter, CI, "forest")).limit == "key"

    asyncio.run(scenario())


def test_the_longest_wait_is_the_one_reported(limits: Limits) -> None:
    async def scenario() -> None:
        async with limits(per_key="1/h", models={"churn": {"rate": "1/m"}}) as limiter:
            await limiter.admit(CI, "churn")
            refused = await refusal(limiter, CI, "churn")  # both empty: the key's is longer
            assert refused.limit == "key" and refused.retry_after > 3000

    asyncio.run(scenario())


def test_a_daily_quota_is_spent_until_midnight_utc(limits: Limits) -> None:
    async def scenario() -> None:
        async with limits(daily_quota=3) as limiter:
            assert await admitted(limiter, CI, "churn", 3) == 3
            refused = await refusal(limiter, CI, "forest")
            midnight = 86400 - time.time() % 86400
            assert refused.limit == "quota"
            assert midnight - 5 <= refused.retry_after <= midnight + 5
            assert "daily quota of key 'ci' (3 requests per UTC day) spent" in str(refused)
            assert await admitted(limiter, NIGHTLY, "churn", 3) == 3
            # Requests without a key have no quota.
            assert await admitted(limiter, None, "churn", 5) == 5

    asyncio.run(scenario())


def test_refusals_are_reported_by_limit_and_model(limits: Limits) -> None:
    seen: list[tuple[str, str | None]] = []

    async def scenario() -> None:
        async with limits(per_key="1/h", models={"churn": {"rate": "1/h"}}) as limiter:
            limiter.on_limited = lambda limit, model: seen.append((limit, model))
            await limiter.admit(CI, None)
            await refusal(limiter, CI, None)
            await limiter.admit(NIGHTLY, "churn")
            await refusal(limiter, None, "churn")

    asyncio.run(scenario())
    assert seen == [("key", None), ("model", "churn")]
