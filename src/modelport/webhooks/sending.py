"""Posting a signed JSON body with retries: the one sender of alert and event webhooks.

Every attempt is handed to ``record`` as it ends, so a caller can log failed attempts
even when a later one succeeds. A post is retried after a connection error, a
timeout, 429 or 5xx, waiting ``backoff``, then twice that, and so on; other 4xx
answers are final (the receiver refused this body, sending it again will not help).
The signature is ``X-Modelport-Signature: sha256=<hex HMAC-SHA256 of the exact body
bytes>`` keyed with the configured secret, as GitHub signs its webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

SIGNATURE_HEADER = "X-Modelport-Signature"
EVENT_HEADER = "X-Modelport-Event"


@dataclass(frozen=True)
class Attempt:
    """How one attempt ended."""

    attempt: int
    ok: bool
    time: datetime
    code: int | None
    error: str | None
    duration_s: float


Record = Callable[[Attempt], None]
Sleep = Callable[[float], None]


def signature(secret: str, body: bytes) -> str:
    """The value of the signature header for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def post_webhook(
    url: str,
    body: bytes,
    *,
    secret: str | None,
    headers: Mapping[str, str],
    timeout: timedelta,
    retries: int,
    backoff: timedelta,
    record: Record,
    sleep: Sleep = time.sleep,
) -> bool:
    """POST ``body`` (JSON) with ``headers`` to ``url`` until it is accepted (2xx) or
    attempts run out; signed when there is a ``secret``."""
    sent = {"Content-Type": "application/json", **headers}
    if secret is not None:
        sent[SIGNATURE_HEADER] = signature(secret, body)
    with httpx.Client(timeout=timeout.total_seconds(), follow_redirects=False) as client:
        for attempt in range(1, retries + 2):
            started, clock = datetime.now(UTC), time.perf_counter()
            code, error, retry = _post_once(client, url, body, sent)
            ok = error is None
            record(Attempt(attempt, ok, started, code, error, time.perf_counter() - clock))
            if ok or not retry or attempt > retries:
                return ok
            sleep(backoff.total_seconds() * 2 ** (attempt - 1))
    return False


def _post_once(
    client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int | None, str | None, bool]:
    """(status, error or None, whether to retry)."""
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}", True
    status = response.status_code
    if 200 <= status < 300:
        return status, None, False
    return status, f"HTTP {status}", status == 429 or status >= 500


def redacted(url: str) -> str:
    """``url`` without a password or query string (either may carry a token): what logs show."""
    url = re.sub(r"//[^/@]*@", "//", url)
    return url.split("?", 1)[0]
