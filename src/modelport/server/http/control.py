"""The control plane's routes (``modelport ui``): what the registry server answers.

The control plane runs the same worker app as ``modelport serve`` (the same keys,
scopes, rate limits, TLS and drain) with no models and this route table: the
deployment, monitoring, feedback and key routes the serving server has too, and the
registry's own routes. The served-model routes (``/api/models``, ``/v2``, MLflow's) are
the serving server's alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from modelport.server.http import alert_rounds, monitoring_report
from modelport.server.http.access import OPEN
from modelport.server.http.app import GET, ROUTES, RouteTable
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Endpoint, Reply
from modelport.server.http.key_verify import KeyVerify
from modelport.server.http.registry_routes import REGISTRY_ROUTES
from modelport.server.http.rollouts import ROLLOUT_ROUTES

TITLE = "modelport control plane"
_SERVING_ONLY = frozenset({"/api/models", "/api/models/{name}"})


class ControlHealth(Endpoint):
    """GET /health: 200 while the control plane takes requests, 503 once it drains
    (what a load balancer in front of several instances asks)."""

    access = OPEN
    # The OpenAPI operation, in place of the serving server's (MLflow's health check).
    openapi: ClassVar[dict[str, Any]] = {
        "get": {
            "summary": "Control plane health: 200 while it takes requests, 503 once it drains",
            "responses": {"200": {"description": "ok"}, "503": {"description": "draining"}},
        }
    }

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        if self.context.runtime.draining:
            return Reply.json({"status": "draining", "error": "shutting down"}, status=503)
        return Reply.json({"status": "ok"})


_SHARED: RouteTable = tuple(
    route
    for route in ROUTES
    if (route[0].startswith("/api") and route[0] not in _SERVING_ONLY) or route[0] == "/metrics"
)

# What the CLI's monitoring commands call when MODELPORT_REGISTRY_URL points them here.
_MONITORING: RouteTable = (
    ("/api/monitoring/alerts", GET, alert_rounds.ApiAlertList),
    ("/api/monitoring/alerts/evaluate", ("POST",), alert_rounds.ApiAlertRound),
    ("/api/monitoring/{model}/report", GET, monitoring_report.ApiMonitoringReport),
)

CONTROL_ROUTES: RouteTable = (
    ("/health", GET, ControlHealth),
    # Before /api/keys/{key_id}: replicas following this control plane check keys here.
    ("/api/keys/verify", ("POST",), KeyVerify),
    *_SHARED,
    *_MONITORING,
    *REGISTRY_ROUTES,
    *ROLLOUT_ROUTES,
)
