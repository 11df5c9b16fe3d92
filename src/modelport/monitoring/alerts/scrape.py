"""Rows the prediction log dropped, read from the servers' ``/metrics``.

``modelport_prediction_log_dropped_total{model}`` is a counter per server (its workers
are summed at scrape). Its increase over a window is taken from the samples this
evaluator scraped in that window, so the first evaluation after a start has no value
yet; a counter that goes down (a server restarted) counts from zero again, as
Prometheus's ``increase`` does.

Each scrape is checked against the outgoing policy (``modelport.outgoing``), follows no
redirect, and reads at most ``MAX_SCRAPE_BYTES`` within ``_SCRAPE_TIMEOUT_S`` in all:
a page that is too large or too slow is an unavailable reading, never a partial one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from datetime import datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelport.errors import UnavailableError
from modelport.outgoing import OutgoingPolicy, UrlRefusedError
from modelport.webhooks.sending import pinned_request, redacted

DROPPED_METRIC = "modelport_prediction_log_dropped_total"
_SCRAPE_TIMEOUT_S = 5.0
MAX_SCRAPE_BYTES = 16 * 1024 * 1024


class DropCounter:
    """Scrapes the drop counter of ``urls`` and remembers the totals it saw."""

    def __init__(self, urls: Sequence[str], policy: OutgoingPolicy) -> None:
        self.urls = tuple(urls)
        self._policy = policy
        self._samples: dict[str, list[tuple[datetime, float]]] = {}

    def increase(
        self, key: str, model: str, *, since: datetime, until: datetime
    ) -> tuple[float | None, int]:
        """Rows of ``model`` dropped in ``[since, until]`` as far as the samples kept
        under ``key`` tell, and how many samples that is (fewer than 2: no value)."""
        if not self.urls:
            raise UnavailableError(
                "signal prediction_log_drops needs the servers' /metrics URLs: set "
                "monitor.metrics_urls (serve --monitor sets its own)"
            )
        samples = self._samples.setdefault(key, [])
        samples.append((until, sum(self._scrape(url, model) for url in self.urls)))
        samples[:] = [(time, total) for time, total in samples if time >= since]
        if len(samples) < 2:
            return None, len(samples)
        increase = 0.0
        for (_, before), (_, after) in itertools.pairwise(samples):
            increase += after - before if after >= before else after
        return increase, len(samples)

    def _scrape(self, url: str, model: str) -> float:
        try:
            text = self._read(url)
        except (httpx.HTTPError, UrlRefusedError, UnavailableError) as exc:
            raise UnavailableError(f"cannot read metrics from {redacted(url)}: {exc}") from None
        try:
            return dropped_total(text, model)
        except ValueError as exc:  # the parser's error for a malformed line
            message = f"cannot read metrics from {redacted(url)}: not Prometheus text ({exc})"
            raise UnavailableError(message) from None

    def _read(self, url: str) -> str:
        deadline = time.monotonic() + _SCRAPE_TIMEOUT_S
        with httpx.Client(timeout=_SCRAPE_TIMEOUT_S, follow_redirects=False) as client:
            response = client.send(pinned_request(client, "GET", url, self._policy), stream=True)
            try:
                response.raise_for_status()
                return _bounded_text(response, deadline)
            finally:
                response.close()


def _bounded_text(response: httpx.Response, deadline: float) -> str:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_SCRAPE_BYTES:
            raise UnavailableError(f"more than {MAX_SCRAPE_BYTES} bytes")
        if time.monotonic() > deadline:
            raise UnavailableError(f"not read within {_SCRAPE_TIMEOUT_S:g}s")
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def dropped_total(text: str, model: str) -> float:
    """The drop counter of ``model`` in a Prometheus text exposition (0 when absent)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == DROPPED_METRIC and sample.labels.get("model") == model:
                total += sample.value
    return total
