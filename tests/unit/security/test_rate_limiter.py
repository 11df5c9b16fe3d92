"""The limiter's choices that no store changes: which bucket a key gets."""

from __future__ import annotations

import asyncio
import logging

import pytest

from modelport.config import RateLimitSettings
from modelport.errors import RateLimitedError
from modelport.security.buckets import LocalLimitStore
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
