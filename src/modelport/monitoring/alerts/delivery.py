"""Delivering a notice: a signed webhook with retries, or a program run.

Every attempt is handed to ``record`` as it ends, so the delivery log shows failed
attempts even when a later one succeeds. A webhook is retried after a connection
error, a timeout, 429 or 5xx, waiting ``backoff``, then twice that, and so on; other
4xx answers are final (the receiver refused this body, sending it again will not
help). The signature is ``X-Modelport-Signature: sha256=<hex HMAC-SHA256 of the
exact body bytes>`` keyed with the configured secret, as GitHub signs its webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

SIGNATURE_HEADER = "X-Modelport-Signature"
EVENT_HEADER = "X-Modelport-Event"
_OUTPUT_TAIL = 500  # characters of a failed command's stderr kept in the log


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
    event_id: int,
    timeout: timedelta,
    retries: int,
    backoff: timedelta,
    record: Record,
    sleep: Sleep = time.sleep,
) -> bool:
    """POST ``body`` to ``url`` until it is accepted (2xx) or attempts run out."""
    headers = {"Content-Type": "application/json", EVENT_HEADER: str(event_id)}
    if secret is not None:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    with httpx.Client(timeout=timeout.total_seconds(), follow_redirects=False) as client:
        for attempt in range(1, retries + 2):
            started, clock = datetime.now(UTC), time.perf_counter()
            code, error, retry = _post_once(client, url, body, headers)
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


def run_command(
    argv: Sequence[str],
    stdin: bytes,
    environment: Mapping[str, str],
    *,
    timeout: timedelta,
    record: Record,
) -> bool:
    """Run ``argv`` (no shell) with ``stdin`` and ``environment``; True when it exits 0."""
    started, clock = datetime.now(UTC), time.perf_counter()
    try:
        done = subprocess.run(  # noqa: S603 - the program is the operator's own configuration
            list(argv),
            input=stdin,
            env=dict(environment),
            capture_output=True,
            timeout=timeout.total_seconds(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        late = f"timed out after {timeout.total_seconds():g}s and was killed"
        record(Attempt(1, False, started, None, late, time.perf_counter() - clock))
        return False
    except OSError as exc:
        record(Attempt(1, False, started, None, f"cannot run {argv[0]!r}: {exc.strerror}", 0.0))
        return False
    ok = done.returncode == 0
    error = None if ok else _failure(done.returncode, done.stderr)
    record(Attempt(1, ok, started, done.returncode, error, time.perf_counter() - clock))
    return ok


def _failure(code: int, stderr: bytes) -> str:
    tail = stderr.decode(errors="replace").strip()[-_OUTPUT_TAIL:]
    return f"exit code {code}" + (f": {tail}" if tail else "")
