"""What every route shares: the server context, replies, error answers and metrics.

An ``Endpoint`` is a plain ASGI callable: ``handle`` returns a ``Reply`` or raises; the
error is turned into the status and body its dialect's clients expect. An
``InferenceEndpoint`` answers with a ``Reply`` and the ``InferenceResult`` it came from,
and counts every request by the model and version that answered it (taken from the
result, or from the error, which the runtime stamps with them), protocol and status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from modelport.config import ServeSettings
from modelport.errors import ModelportError
from modelport.monitoring.drift_live import LiveDriftBook
from modelport.monitoring.live_gauges import LiveGauges
from modelport.monitoring.metrics import UNKNOWN_MODEL, ServerMetrics
from modelport.monitoring.prediction_log import PredictionLogWriter
from modelport.monitoring.prediction_log.maintenance import LogMaintenance
from modelport.monitoring.prediction_log.spool import SpoolSink
from modelport.registry.service import RegistryService
from modelport.rollout.controller import RolloutController
from modelport.security.key_checks import KeyChecks
from modelport.security.principal import Admission
from modelport.server.http.access import ADMIN_ONLY, Access
from modelport.server.http.asgi import JSON, REQUEST_ID_KEY, Headers, Receive, Scope, Send, respond
from modelport.server.http.errors import ErrorAnswer, mlflow_error, v2_error
from modelport.server.http.v2_codec import V2Limits
from modelport.serving.runtime import ModelRuntime
from modelport.serving.target import InferenceResult

logger = logging.getLogger("modelport.server")


@dataclass
class ServerContext:
    """The state the routes of one worker share."""

    runtime: ModelRuntime
    settings: ServeSettings
    metrics: ServerMetrics
    v2_limits: V2Limits
    multiprocess_dir: str | None = None
    prediction_log_uri: str | None = None  # the prediction log and its labels
    drift: LiveDriftBook | None = None  # live drift sketches (None: off)
    live_gauges: LiveGauges | None = None  # worker 0 computes the live performance gauges
    prediction_log: PredictionLogWriter | SpoolSink | None = None
    log_maintenance: LogMaintenance | None = None
    # (model, limit) -> the alert history document; None when the server keeps none.
    alerts: Callable[[str, int], dict[str, Any]] | None = None
    # (limit, readable model?) -> the alert history of every readable model, and
    # (actor or None) -> the outcomes of one round of the rules (the control plane's).
    alert_lists: Callable[[int, Callable[[str], bool]], dict[str, Any]] | None = None
    alert_rounds: Callable[[str | None], list[dict[str, Any]]] | None = None
    # The registry for the REST routes that read or change it (deployments), built at
    # their first request and shared after; call it in a thread (it opens the database).
    registry: Callable[[], RegistryService] | None = None
    # The rollout controller over a registry, for a lease owner (None: a fresh one), as
    # the CLI builds it; the control plane's rollout routes use it (None: not offered).
    rollouts: Callable[[RegistryService, str | None], RolloutController] | None = None
    # The API keys requests are checked against (None: no keys checked), and how the
    # server authenticates, as GET /api reports it: "api-keys", "off" (loopback only)
    # or "insecure-no-auth" (reachable from elsewhere without keys).
    keys: KeyChecks | None = None
    auth: str = "off"
    metrics_public: bool = False  # /metrics without a key ([security] metrics_public)
    keys_refresh_s: float = 5.0
    # Rate limits and quotas, asked after authorization (None: none).
    admission: Admission | None = None
    # The app's route table and title, as its OpenAPI document lists them (set by the app).
    routes: tuple[tuple[str, tuple[str, ...], Any], ...] = ()
    title: str = "modelport inference server"

    def deadline(self, started: float, client_timeout_s: float | None) -> float:
        """The request's deadline on ``time.monotonic``: the server's timeout, shortened
        (never lengthened) by the client's."""
        timeout = self.settings.request_timeout_s
        if client_timeout_s is not None and client_timeout_s > 0:
            timeout = min(timeout, client_timeout_s)
        return started + timeout


@dataclass(slots=True)  # not frozen: see serving.target
class Reply:
    """A complete response."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: Headers = ()

    @classmethod
    def json(cls, data: Any, *, status: int = 200, retry_after: int | None = None) -> Reply:
        """A JSON reply (with ``Retry-After`` when given)."""
        headers = ((b"retry-after", str(retry_after).encode()),) if retry_after else ()
        return cls(status, orjson.dumps(data), JSON, headers)


WARNING_HEADER = b"x-modelport-warning"
VERSION_HEADER = b"x-modelport-version"
ARM_HEADER = b"x-modelport-arm"
PREDICTION_IDS_HEADER = b"x-modelport-prediction-ids"
# Up to this many rows the header lists every id; beyond, it gives the first and last
# (``<id>-0..<id>-<n-1>``), so the line stays far below clients' limits (aiohttp: 8 KiB).
LISTED_PREDICTION_IDS = 16


def prediction_ids(request_id: str, rows: int) -> str:
    """The prediction ids of a request's rows, as the header and V2 ``parameters`` say
    them: ``<id>-0,<id>-1,...`` for a few rows, ``<id>-0..<id>-<n-1>`` for more."""
    if rows == 1:  # the common case, on every single-row request
        return request_id + "-0"
    if rows <= LISTED_PREDICTION_IDS and "," not in request_id:
        return ",".join([f"{request_id}-{row}" for row in range(rows)])
    return f"{request_id}-0..{request_id}-{rows - 1}"


def answer_headers(result: InferenceResult) -> Headers:
    """``X-Modelport-Version`` (the version that answered) and, when it answered as an
    arm of a deployment, ``X-Modelport-Arm``; then one ``X-Modelport-Warning`` per warning."""
    headers: Headers = ()
    if result.version is not None:
        headers = ((VERSION_HEADER, result.version_label.encode()),)
    if result.arm is not None:
        headers = (*headers, (ARM_HEADER, result.arm.encode()))
    if result.warnings:
        headers = (*headers, *warning_headers(result.warnings))
    return headers


def warning_headers(warnings: tuple[str, ...]) -> Headers:
    """One ``X-Modelport-Warning`` header per warning (what of the request was ignored)."""
    return tuple((WARNING_HEADER, text.encode("ascii", "backslashreplace")) for text in warnings)


class Endpoint:
    """Base of every route: ``access`` says what an API key needs to call it (admin
    only, unless the route says otherwise)."""

    dialect: ClassVar[str] = "v2"
    access: Access = ADMIN_ONLY

    def __init__(self, context: ServerContext) -> None:
        self.context = context

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        """Answer one request."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            reply = await self.handle(scope, receive)
        except Exception as exc:
            reply = self._error_reply(scope, exc)
        await respond(send, reply.status, reply.body, reply.content_type, reply.headers)

    def access_model(self, scope: Scope) -> str | None:
        """The model (or deployment) the request names, for its scope check."""
        param = self.access.param
        if param is None:
            return None
        name = scope.get("path_params", {}).get(param)
        return str(name) if name is not None else None

    def error_reply(self, scope: Scope, exc: Exception) -> Reply:
        """The answer for ``exc`` in this route's dialect."""
        return self._error_reply(scope, exc)

    def _error_reply(self, scope: Scope, exc: Exception) -> Reply:
        answer: ErrorAnswer = mlflow_error(exc) if self.dialect == "mlflow" else v2_error(exc)
        if not isinstance(exc, ModelportError):
            logger.exception(
                "unexpected error answering %s %s",
                scope.get("method"),
                scope.get("path"),
                extra={"request_id": scope.get(REQUEST_ID_KEY)},
            )
        return Reply(answer.status, answer.body, JSON, answer.headers)


class InferenceEndpoint(Endpoint):
    """A route that runs a model: counted in the request metrics."""

    protocol: ClassVar[str]

    def __init__(self, context: ServerContext) -> None:
        super().__init__(context)
        self._in_flight = context.metrics.in_flight_level
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def infer(self, scope: Scope, receive: Receive) -> tuple[Reply, InferenceResult]:
        """Answer one request with a model."""
        raise NotImplementedError

    def model_name(self, scope: Scope) -> str | None:
        """The served name the request addresses, when it names one."""
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        self._in_flight.inc()
        try:
            reply, result = await self.infer(scope, receive)
            model, version = result.model, result.version_label
        except Exception as exc:
            reply = self._error_reply(scope, exc)
            model, version = self._labels_of(scope, exc)
        finally:
            self._in_flight.dec()
        await respond(send, reply.status, reply.body, reply.content_type, reply.headers)
        requests, seconds = self._children(model, version, reply.status)
        requests.inc()
        seconds.observe(time.perf_counter() - started)

    def _labels_of(self, scope: Scope, exc: Exception) -> tuple[str, str]:
        # Only served names become labels: arbitrary names in URLs must not create series.
        name = self.model_name(scope)
        if name is None or not self.context.runtime.serves(name):
            return UNKNOWN_MODEL, ""
        stamped = exc.version if isinstance(exc, ModelportError) else None
        return name, str(stamped) if stamped is not None else ""

    def _children(self, model: str, version: str, status: int) -> tuple[Any, Any]:
        """The request counter and latency histogram of these labels, bound once."""
        key = (model, version, status)
        series = self._series.get(key)
        if series is None:
            metrics = self.context.metrics
            buffer = metrics.buffer
            series = (
                buffer.counter(metrics.requests.labels(model, version, self.protocol, str(status))),
                buffer.histogram(metrics.request_seconds.labels(model, self.protocol)),
            )
            self._series[key] = series
        return series
