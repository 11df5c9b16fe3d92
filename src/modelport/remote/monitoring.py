"""The monitoring calls of ``RegistryClient``: a version's report, the alert history
and one round of the alert rules, on the control plane (``/api/monitoring``); what
``modelport monitor report|alerts|run`` and ``serve --monitor`` do over
``MODELPORT_REGISTRY_URL``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from modelport.domain.refs import ModelRef

REPORT_HEADER = "x-modelport-report"


class MonitoringCalls:
    """Monitoring over HTTP; the client supplies ``_send`` (one request, its answer or
    the error it stands for) and ``_json`` (its JSON answer)."""

    _send: Callable[..., httpx.Response]
    _json: Callable[..., Any]

    def monitoring_report(
        self,
        ref: ModelRef,
        window: tuple[datetime, datetime],
        *,
        fmt: str = "html",
        methods: Mapping[str, str] | None = None,
        thresholds: Mapping[str, str] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """The report of the version ``ref`` names over ``window`` (since, until),
        rendered as ``fmt`` (html or json) by the control plane, and its summary (model,
        version, window, predictions, drift, notes)."""
        params: list[tuple[str, str]] = [
            ("since", window[0].isoformat()),
            ("until", window[1].isoformat()),
            ("format", fmt),
        ]
        if ref.version is not None:
            params.append(("version", str(ref.version)))
        elif ref.alias is not None:
            params.append(("alias", ref.alias))
        params += [("method", f"{k}={v}") for k, v in (methods or {}).items()]
        params += [("threshold", f"{k}={v}") for k, v in (thresholds or {}).items()]
        path = f"/api/monitoring/{quote(ref.name, safe='')}/report"
        answer = self._send("GET", path, params=params)
        return answer.content.decode("utf-8"), json.loads(answer.headers[REPORT_HEADER])

    def alert_history(self, model: str | None = None, *, limit: int = 50) -> dict[str, Any]:
        """The alert rules (of ``model`` when given, else of every model the key may
        read) with their states, newest transitions and deliveries."""
        path = (
            f"/api/monitoring/{quote(model, safe='')}/alerts"
            if model is not None
            else "/api/monitoring/alerts"
        )
        found: dict[str, Any] = self._json("GET", path, params={"limit": str(limit)})
        return found

    def evaluate_alerts(self) -> list[dict[str, Any]]:
        """Evaluate the control plane's alert rules once (an ``admin`` or ``deploy``
        key); each rule's outcome: rule, state, changed, notified, error, lost_race."""
        outcomes: list[dict[str, Any]] = self._json("POST", "/api/monitoring/alerts/evaluate")[
            "outcomes"
        ]
        return outcomes
