from datetime import UTC, datetime, timedelta

import pytest

from modelport.errors import InvalidArgumentError
from modelport.monitoring.windows import parse_since

NOW = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("30s", timedelta(seconds=30)),
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
        (" 1H ", timedelta(hours=1)),
    ],
)
def test_durations_count_back_from_now(text: str, delta: timedelta) -> None:
    assert parse_since(text, now=NOW) == NOW - delta


def test_naive_now_is_utc() -> None:
    assert parse_since("1h", now=datetime(2026, 3, 10, 12)) == NOW - timedelta(hours=1)


def test_default_now_is_current_time() -> None:
    before = datetime.now(UTC)
    value = parse_since("1h")
    after = datetime.now(UTC)
    assert before - timedelta(hours=1) <= value <= after - timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31T12:30:00", datetime(2026, 1, 31, 12, 30, tzinfo=UTC)),
        ("2026-01-31T12:30:00Z", datetime(2026, 1, 31, 12, 30, tzinfo=UTC)),
        ("2026-01-31T14:30:00+02:00", datetime(2026, 1, 31, 12, 30, tzinfo=UTC)),
    ],
)
def test_timestamps(text: str, expected: datetime) -> None:
    value = parse_since(text, now=NOW)
    assert value == expected
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)


def test_offset_timestamp_is_converted_to_utc() -> None:
    value = parse_since("2026-01-31T00:00:00-05:00")
    assert value.tzinfo == UTC
    assert value == datetime(2026, 1, 31, 5, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "  ", "1y", "h", "yesterday", "-1h", "2026-13-01"])
def test_bad_input_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_since(text, now=NOW)
    assert "30m" in caught.value.message and "ISO-8601" in caught.value.message
    assert caught.value.field == "since"


def test_field_name_is_reported() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_since("soon", now=NOW, field="until")
    assert caught.value.field == "until" and "until=" in caught.value.message
