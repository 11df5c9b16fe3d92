"""Time windows for monitoring queries: one parser for every ``--since`` and ``?since=``.

A window's start is either a duration back from now (``30s``, ``30m``, ``1h``, ``24h``,
``7d``, ``2w``) or an ISO-8601 timestamp (``2026-01-31``, ``2026-01-31T12:00:00Z``,
``2026-01-31T12:00:00+02:00``). Naive timestamps are read as UTC, because the prediction
log stores UTC times and a server's local zone is rarely what a caller means.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from modelport.errors import InvalidArgumentError

ACCEPTED_FORMS = (
    "a duration back from now such as 30s, 30m, 1h, 24h, 7d or 2w, "
    "or an ISO-8601 timestamp such as 2026-01-31 or 2026-01-31T12:00:00Z "
    "(naive times are UTC)"
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta | None:
    """``text`` as a duration (``30m``, ``1h``...), or None when it is not one."""
    match = _DURATION.match(text)
    if match is None:
        return None
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])


def parse_since(text: str, now: datetime | None = None, *, field: str = "since") -> datetime:
    """The aware UTC datetime ``text`` names: ``now`` minus a duration, or a timestamp.

    ``now`` defaults to the current time; a naive ``now`` is taken as UTC.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(f"{field} is empty; expected {ACCEPTED_FORMS}", field=field)
    duration = parse_duration(text)
    if duration is not None:
        return _as_utc(now if now is not None else datetime.now(UTC)) - duration
    value = text.strip()
    if value.endswith(("Z", "z")):
        # datetime.fromisoformat reads "Z" from 3.11 on; normalise anyway for clarity.
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgumentError(
            f"{field}={text!r} is neither a duration nor a timestamp; expected {ACCEPTED_FORMS}",
            field=field,
        ) from None
    return _as_utc(parsed)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
