"""MLflow's scoring protocol: ``POST /invocations``, ``/ping``, ``/health``, ``/version``.

MLflow serves one model per server; here ``/invocations`` scores the only served
model, or the one named by ``?model=NAME`` (or ``/models/NAME/invocations``) when
several are served. ``params`` are accepted and ignored: no modelport flavor takes
inference parameters. Errors use MLflow's ``{"error_code", "message"}`` shape.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from modelport import __version__
from modelport.errors import InvalidRequestError
from modelport.server.http.asgi import Receive, Scope, header, read_body
from modelport.server.http.endpoint import Endpoint, Reply
from modelport.server.http.mlflow_codec import (
    MlflowArray,
    MlflowTable,
    MlflowTensors,
    content_kind,
    decode_invocation,
    encode_predictions,
)
from modelport.serving.binding import Bound, Tensor
from modelport.serving.interface import PREDICTIONS
from modelport.serving.served import ServedModel

PROTOCOL = "mlflow"
_PREDICTIONS = frozenset({PREDICTIONS})


class Invocations(Endpoint):
    """POST /invocations and /models/{name}/invocations."""

    protocol = PROTOCOL
    dialect = "mlflow"

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        started = time.monotonic()
        served = self._model(scope)
        with served.held():
            scope["modelport.model"] = served
            content_type = header(scope, b"content-type")
            content_kind(content_type)  # 415 before reading a body we cannot parse
            body = await read_body(scope, receive, self.context.settings.max_body_bytes)
            request = decode_invocation(
                body, content_type, max_elements=self.context.settings.max_elements
            )
            bound = _bind(served, request.data)
            deadline = self.context.deadline(started, None)
            result = await served.infer(bound, _PREDICTIONS, deadline)
        scope["modelport.rows"] = bound.rows
        return Reply(200, encode_predictions(result[PREDICTIONS]))

    def _model(self, scope: Scope) -> ServedModel:
        runtime = self.context.runtime
        name = scope.get("path_params", {}).get("name") or _query_model(scope)
        if name is not None:
            return runtime.get(name)
        routes = runtime.routes()
        if len(routes) != 1:
            names = ", ".join(route.source.name for route in routes)
            raise InvalidRequestError(
                f"this server serves several models ({names}): use /invocations?model=NAME "
                "or /models/NAME/invocations"
            )
        return runtime.get(routes[0].source.name)


def _query_model(scope: Scope) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query).get("model") if query else None
    return values[0] if values else None


def _bind(served: ServedModel, data: MlflowTable | MlflowTensors | MlflowArray) -> Bound:
    if isinstance(data, MlflowTable):
        return served.binder.bind_table(data.columns, data.values)
    if isinstance(data, MlflowTensors):
        return served.binder.bind_named({k: Tensor(v) for k, v in data.tensors.items()})
    return served.binder.bind_array(data.array)


class Ping(Endpoint):
    """GET /ping and /health: 200 when every model is loaded, else 404 (MLflow's rule)."""

    dialect = "mlflow"

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        if self.context.runtime.ready:
            return Reply(200, b"\n")
        return Reply.json(
            {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "models are not loaded"},
            status=404,
        )


class Version(Endpoint):
    """GET /version: the server's version as text."""

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        return Reply(200, __version__.encode(), b"text/plain; charset=utf-8")
