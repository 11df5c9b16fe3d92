"""The limiter's choices that no store changes: which bucket a key gets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from modelport.config import RateLimitSettings
from modelport.errors import RateLimitedError
from modelport.security.buckets import Bucket, LocalLimitStore, Quota, Refusal
from modelport.security.principal import Principal
from modelport.security.rate_limits import RateLimiter


def passed(limiter: RateLimiter, principal: Principal, n: int) -> int:
    async def run() -> int:
        count = 0
        for _ in range(n):
            try:
                await limiter.admit(principal, None)
            except RateLimitedError:
                continue
            count += 1
        return count

    return asyncio.run(run())


def test_a_stored_rate_that_does_not_parse_falls_back_to_the_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    odd = Principal("k-odd", "odd", frozenset(), rate_limit="lots")
    limiter = RateLimiter(RateLimitSettings(per_key="2/h"), LocalLimitStore())
    with caplog.at_level(logging.WARNING, logger="modelport.security.rate_limits"):
        assert passed(limiter, odd, 4) == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["key 'odd' has an unusable rate_limit 'lots'"]  # once, not per request


def test_a_keys_new_rate_applies_at_its_next_request() -> None:
    # The workers re-read keys in the background: a changed limit arrives as a new Principal.
    limiter = RateLimiter(RateLimitSettings(), LocalLimitStore())
    assert passed(limiter, Principal("k1", "ci", frozenset(), rate_limit="2/h"), 3) == 2
    # The same bucket, bigger now: it does not start full again, it refills with time.
    assert passed(limiter, Principal("k1", "ci", frozenset(), rate_limit="10/h"), 3) == 0
    assert passed(limiter, Principal("k1", "ci", frozenset()), 3) == 3  # no limit at all now


class CountingStore(LocalLimitStore):
    """A local store that counts the requests it was asked to take."""

    def __init__(self) -> None:
        super().__init__()
        self.takes = 0

    def take_now(self, buckets: Sequence[Bucket], quota: Quota | None) -> Refusal | None:
        self.takes += 1
        return super().take_now(buckets, quota)


@pytest.mark.parametrize(
    "settings",
    [
        RateLimitSettings(),
        RateLimitSettings(per_key="5/s"),
        RateLimitSettings(daily_quota=10),
        RateLimitSettings.model_validate({"models": {"echo": {"rate": "5/s"}}}),
    ],
)
def test_may_limit_is_false_only_where_admit_would_take_nothing(
    settings: RateLimitSettings,
) -> None:
    # The guard skips admit when may_limit is false: it must never skip a real limit.
    principals = [
        None,
        Principal("k1", "plain", frozenset()),
        Principal("k2", "fast", frozenset(), rate_limit="9/s"),
        Principal("k3", "daily", frozenset(), daily_quota=7),
    ]
    for principal in principals:
        for model in (None, "echo", "other"):
            store = CountingStore()
            limiter = RateLimiter(settings, store)
            asyncio.run(limiter.admit(principal, model))
            assert limiter.may_limit(principal, model) == (store.takes == 1), (principal, model)
