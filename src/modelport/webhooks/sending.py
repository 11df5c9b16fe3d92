"""Posting a signed JSON body with retries: the one sender of alert and event webhooks.

Every attempt is handed to ``record`` as it ends, so a caller can log failed attempts
even when a later one succeeds. A post is retried after a connection error, a
timeout, 429 or 5xx, waiting ``backoff``, then twice that, and so on; other 4xx
answers are final (the receiver refused this body, sending it again will not help).
The signature is ``X-Modelport-Signature: sha256=<hex HMAC-SHA256 of the exact body
bytes>`` keyed with the configured secret, as GitHub signs its webhooks.

Every attempt is checked against the outgoing policy (``modelport.outgoing``) after DNS
resolution and connects to the address that was checked. The receiver's answer is
trusted for its status only: redirects are not followed (a 3xx is a refusal), and the
body is never read, so a huge, slow or garbage body costs nothing and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from modelport.outgoing import OutgoingPolicy, UrlRefusedError

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
    policy: OutgoingPolicy,
    sleep: Sleep = time.sleep,
) -> bool:
    """POST ``body`` (JSON) with ``headers`` to ``url`` until it is accepted (2xx) or
    attempts run out; signed when there is a ``secret``. A URL ``policy`` refuses is
    one failed attempt, not retried."""
    sent = {"Content-Type": "application/json", **headers}
    if secret is not None:
        sent[SIGNATURE_HEADER] = signature(secret, body)
    with httpx.Client(timeout=timeout.total_seconds(), follow_redirects=False) as client:
        for attempt in range(1, retries + 2):
            started, clock = datetime.now(UTC), time.perf_counter()
            code, error, retry = _post_once(client, url, body, sent, policy)
            ok = error is None
            record(Attempt(attempt, ok, started, code, error, time.perf_counter() - clock))
            if ok or not retry or attempt > retries:
                return ok
            sleep(backoff.total_seconds() * 2 ** (attempt - 1))
    return False


def _post_once(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    policy: OutgoingPolicy,
) -> tuple[int | None, str | None, bool]:
    """(status, error or None, whether to retry)."""
    try:
        request = pinned_request(client, "POST", url, policy, content=body, headers=headers)
        # Sent streamed and closed unread: only the status counts.
        response = client.send(request, stream=True)
        response.close()
    except UrlRefusedError as exc:
        return None, f"refused: {exc}", False
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}", True
    status = response.status_code
    if 200 <= status < 300:
        return status, None, False
    return status, f"HTTP {status}", status == 429 or status >= 500


def pinned_request(
    client: httpx.Client, method: str, url: str, policy: OutgoingPolicy, **kwargs: Any
) -> httpx.Request:
    """A request for ``url`` addressed to the IP that ``policy`` checked, with the
    original host in ``Host`` and, for https, in the TLS server name (certificates are
    still verified against the host name)."""
    address = policy.resolve(url)
    target = httpx.URL(url)
    request = client.build_request(method, target, **kwargs)
    if address != target.host:
        request.url = target.copy_with(host=address)
        request.extensions = {**request.extensions, "sni_hostname": target.host}
    return request


def redacted(url: str) -> str:
    """``url`` without a password or query string (either may carry a token): what logs show."""
    url = re.sub(r"//[^/@]*@", "//", url)
    return url.split("?", 1)[0]
