"""Rates as the config writes them, and the rate limit settings' checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelport.config import RateLimitSettings, Settings, parse_rate
from modelport.security.rate_limits import make_bucket


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/s", (100.0, 1.0)),
        ("6000/m", (6000.0, 60.0)),
        ("1000/h", (1000.0, 3600.0)),
        ("50000/d", (50000.0, 86400.0)),
        (" 2.5 / s ", (2.5, 1.0)),
    ],
)
def test_rates_parse(text: str, expected: tuple[float, float]) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["100", "100/sec", "0/s", "-1/s", "/s", "100/w", "many/s", 100])
def test_a_bad_rate_is_refused_naming_the_accepted_forms(text: object) -> None:
    with pytest.raises(ValueError, match=r"not a rate: .* unit \(s, m, h, d\), e\.g\. '100/s'"):
        parse_rate(text)


def test_the_settings_refuse_a_bad_rate_where_it_is_written() -> None:
    with pytest.raises(ValidationError, match=r"per_key[\s\S]*'100 per second' is not a rate"):
        RateLimitSettings(per_key="100 per second")
    with pytest.raises(ValidationError, match=r"models\.churn\.rate[\s\S]*is not a rate"):
        RateLimitSettings(models={"churn": {"rate": "fast"}})


def test_a_bucket_holds_one_period_of_its_rate_unless_burst_says_otherwise() -> None:
    bucket = make_bucket("key", "ci", "k:1", "6000/m", None)
    assert (bucket.per_second, bucket.burst) == (100.0, 6000)
    assert make_bucket("key", "ci", "k:1", "6000/m", 50).burst == 50
    assert make_bucket("model", "churn", "m:churn", "0.5/s", None).burst == 1


def test_the_redis_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_RATE_LIMIT_URL", "redis://127.0.0.1:6379/0")
    assert Settings().rate_limit_url == "redis://127.0.0.1:6379/0"
    monkeypatch.setenv("MODELPORT_RATE_LIMIT_URL", "http://127.0.0.1:6379")
    with pytest.raises(ValidationError, match="rate_limit_url must be a Redis URL"):
        Settings()
