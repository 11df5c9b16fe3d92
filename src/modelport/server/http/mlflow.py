"""MLflow's scoring protocol: ``POST /invocations``, ``/ping``, ``/health``, ``/version``.

MLflow serves one model per server; here ``/invocations`` scores the only served
model, or the one named by ``?model=NAME`` (or ``/models/NAME/invocations``) when
several are served. ``params`` are resolved against the params the model's signature
declares (``serving.params``): declared ones type-checked (400, INVALID_PARAMETER_VALUE),
defaults filled in, undeclared ones ignored with an ``X-Modelport-Warning`` header.
Errors use MLflow's ``{"error_code", "message"}`` shape.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from modelport import __version__
from modelport.errors import InvalidRequestError
from modelport.server.http.access import ANY_KEY, OPEN, Access
from modelport.server.http.asgi import REQUEST_ID_KEY, Receive, Scope, header, read_body
from modelport.server.http.endpoint import (
    PREDICTION_IDS_HEADER,
    Endpoint,
    InferenceEndpoint,
    Reply,
    answer_headers,
    prediction_ids,
)
from modelport.server.http.mlflow_codec import (
    MlflowArray,
    MlflowTable,
    MlflowTensors,
    content_kind,
    decode_invocation,
)
from modelport.server.http.mlflow_predictions import encode_predictions
from modelport.serving.binding import (
    ArrayInputs,
    NamedInputs,
    RequestInputs,
    TableInputs,
    Tensor,
)
from modelport.serving.interface import PREDICTIONS
from modelport.serving.target import InferenceRequest, InferenceResult

PROTOCOL = "mlflow"
_PREDICTIONS = (PREDICTIONS,)


class Invocations(InferenceEndpoint):
    """POST /invocations and /models/{name}/invocations."""

    access = Access(("predict",), "name")

    protocol = PROTOCOL
    dialect = "mlflow"

    def access_model(self, scope: Scope) -> str | None:
        return self.model_name(scope)

    def model_name(self, scope: Scope) -> str | None:
        name = scope.get("path_params", {}).get("name") or _query_model(scope)
        if name is not None:
            return str(name)
        names = self.context.runtime.names
        return names[0] if len(names) == 1 else None

    async def infer(self, scope: Scope, receive: Receive) -> tuple[Reply, InferenceResult]:
        received = time.monotonic()
        context = self.context
        name = self._served_name(scope)
        with context.runtime.hold(name) as target:
            content_type = header(scope, b"content-type")
            content_kind(content_type)  # 415 before reading a body we cannot parse
            body = await read_body(scope, receive, context.settings.max_body_bytes)
            decoded = decode_invocation(
                body, content_type, max_elements=context.settings.max_elements
            )
            request = InferenceRequest(
                _inputs(decoded.data),
                _PREDICTIONS,
                context.deadline(received, None),
                scope[REQUEST_ID_KEY],
                PROTOCOL,
                received,
                decoded.params,
                scope["headers"],
            )
            result = await target.infer(request)
        body = encode_predictions(result.outputs[PREDICTIONS])
        headers = answer_headers(result)
        if context.prediction_log is not None:  # header only: MLflow clients parse bodies strictly
            ids = prediction_ids(request.request_id, result.rows)
            headers = ((PREDICTION_IDS_HEADER, ids.encode()), *headers)
        return Reply(200, body, headers=headers), result

    def _served_name(self, scope: Scope) -> str:
        name = self.model_name(scope)
        if name is None:
            names = ", ".join(self.context.runtime.names)
            raise InvalidRequestError(
                f"this server serves several models ({names}): use /invocations?model=NAME "
                "or /models/NAME/invocations"
            )
        return name


def _query_model(scope: Scope) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query).get("model") if query else None
    return values[0] if values else None


def _inputs(data: MlflowTable | MlflowTensors | MlflowArray) -> RequestInputs:
    if isinstance(data, MlflowTable):
        return TableInputs(data.columns, data.values)
    if isinstance(data, MlflowTensors):
        return NamedInputs({k: Tensor(v) for k, v in data.tensors.items()})
    return ArrayInputs(data.array)


class Ping(Endpoint):
    """GET /ping and /health: 200 when every model is loaded, else 404 (MLflow's rule)."""

    access = OPEN

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

    access = ANY_KEY

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        return Reply(200, __version__.encode(), b"text/plain; charset=utf-8")
