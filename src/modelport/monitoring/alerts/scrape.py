"""Rows the prediction log dropped, read from the servers' ``/metrics``.

``modelport_prediction_log_dropped_total{model}`` is a counter per server (its workers
are summed at scrape). Its increase over a window is taken from the samples this
evaluator scraped in that window, so the first evaluation after a start has no value
yet; a counter that goes down (a server restarted) counts from zero again, as
Prometheus's ``increase`` does.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelport.errors import UnavailableError

DROPPED_METRIC = "modelport_prediction_log_dropped_total"
_SCRAPE_TIMEOUT_S = 5.0


class DropCounter:
    """Scrapes the drop counter of ``urls`` and remembers the totals it saw."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = tuple(urls)
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
            response = httpx.get(url, timeout=_SCRAPE_TIMEOUT_S)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise UnavailableError(f"cannot read metrics from {url}: {exc}") from None
        return dropped_total(response.text, model)


def dropped_total(text: str, model: str) -> float:
    """The drop counter of ``model`` in a Prometheus text exposition (0 when absent)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == DROPPED_METRIC and sample.labels.get("model") == model:
                total += sample.value
    return total
