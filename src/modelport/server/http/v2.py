"""Open Inference Protocol (KServe V2) routes: server and model metadata, health, infer.

Health answers 200 with a JSON body (``{"live": true}``, ``{"ready": true}``), which
the KServe SDK parses, and 503 with ``{"error": ...}`` when not ready; tritonclient
only looks at the status. Inference accepts JSON and the binary tensor extension
(``Inference-Header-Content-Length``) and answers in kind.

The request's ``parameters`` other than the protocol's own (``RESERVED_PARAMETERS``:
tritonclient's and KServe's) are the model's inference parameters, resolved as MLflow's
``params`` are (``serving.params``): a model whose signature declares params gets them
type-checked (400) with defaults filled in; anything it does not declare is ignored,
with an ``X-Modelport-Warning`` header.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from modelport import __version__
from modelport.errors import UnsupportedMediaTypeError
from modelport.server.http.access import ANY_KEY, OPEN, Access, visible
from modelport.server.http.asgi import (
    OCTET_STREAM,
    REQUEST_ID_KEY,
    Headers,
    Receive,
    Scope,
    header,
    read_body,
)
from modelport.server.http.endpoint import (
    PREDICTION_IDS_HEADER,
    Endpoint,
    InferenceEndpoint,
    Reply,
    answer_headers,
    prediction_ids,
)
from modelport.server.http.v2_codec import (
    V2Limits,
    V2Request,
    decode_request,
)
from modelport.server.http.v2_response import EncodedOutput, datatype_of, encode_response
from modelport.serving.binding import NamedInputs, Tensor
from modelport.serving.target import InferenceRequest, InferenceResult

PREDICTION_IDS_PARAMETER = "prediction_ids"
PROTOCOL = "v2"
# Triton's extensions this server speaks (``server.http.triton``), as Triton names them.
EXTENSIONS = ("binary_tensor_data", "model_configuration", "statistics", "model_repository")
# Request parameters that belong to the protocol and its clients, never to the model:
# the binary extension's, tritonclient's (timeout, sequences, priority) and KServe's.
RESERVED_PARAMETERS = frozenset(
    {
        "binary_data_output",
        "timeout",
        "sequence_id",
        "sequence_start",
        "sequence_end",
        "priority",
        "content_type",
        "headers",
    }
)


class ServerMetadata(Endpoint):
    """GET /v2."""

    access = ANY_KEY

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        body = {"name": "modelport", "version": __version__, "extensions": list(EXTENSIONS)}
        return Reply.json(body)


class ServerLive(Endpoint):
    """GET /v2/health/live: the process answers (also while it drains)."""

    access = OPEN

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        return Reply.json({"live": True})


class ServerReady(Endpoint):
    """GET /v2/health/ready: every model loaded and warmed, and not draining."""

    access = OPEN

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        runtime = self.context.runtime
        if runtime.ready:
            return Reply.json({"ready": True})
        reason = "the server is shutting down" if runtime.draining else "models are loading"
        return Reply.json({"error": f"not ready: {reason}"}, status=503, retry_after=1)


class ModelList(Endpoint):
    """GET /v2/models: the served model names (KServe's extension)."""

    access = ANY_KEY

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        names = [route.source.name for route in self.context.runtime.routes()]
        # Only what the request's key may call or read (all of them without keys).
        return Reply.json({"models": visible(scope, ("predict", "read"), names)})


class ModelMetadata(Endpoint):
    """GET /v2/models/{name}[/versions/{version}]."""

    access = Access(("read", "predict"), "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        params = scope["path_params"]
        served = self.context.runtime.get(params["name"], params.get("version"))
        # Under the name asked for: a deployment's arms are versions of their own model.
        return Reply.json({**served.metadata(), "name": params["name"]})


class ModelReady(Endpoint):
    """GET /v2/models/{name}[/versions/{version}]/ready."""

    access = Access(("read", "predict"), "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        params = scope["path_params"]
        self.context.runtime.get(params["name"], params.get("version"))
        return Reply.json({"name": params["name"], "ready": True})


class Infer(InferenceEndpoint):
    """POST /v2/models/{name}[/versions/{version}]/infer."""

    access = Access(("predict",), "name")

    protocol = PROTOCOL

    def model_name(self, scope: Scope) -> str | None:
        return str(scope["path_params"]["name"])

    async def infer(self, scope: Scope, receive: Receive) -> tuple[Reply, InferenceResult]:
        received = time.monotonic()
        params = scope["path_params"]
        name, version = params["name"], params.get("version")
        context = self.context
        with context.runtime.hold(name, version) as target:
            _refuse_pickles(header(scope, b"content-type"))
            body = await read_body(scope, receive, context.settings.max_body_bytes)
            request = decode_request(
                body, header(scope, b"inference-header-content-length"), context.v2_limits
            )
            inputs = NamedInputs({i.name: Tensor(i.array, i.datatype) for i in request.inputs})
            wanted = None if request.outputs is None else tuple(o.name for o in request.outputs)
            deadline = context.deadline(received, request.timeout_s)
            inference = InferenceRequest(
                inputs,
                wanted,
                deadline,
                scope[REQUEST_ID_KEY],
                PROTOCOL,
                received,
                _model_params(request.parameters),
                scope["headers"],
            )
            result = await target.infer(inference)
        headers: Headers = answer_headers(result)
        parameters = None
        if context.prediction_log is not None:
            ids = prediction_ids(inference.request_id, result.rows)
            parameters = {PREDICTION_IDS_PARAMETER: ids}
            headers = ((PREDICTION_IDS_HEADER, ids.encode()), *headers)
        payload, json_length = encode_response(
            # A deployment answers under its own name, with the version of the arm that answered.
            model_name=result.deployment or result.model,
            model_version=result.version_label or None,
            request_id=request.id,
            outputs=_encoded(request, result),
            parameters=parameters,
        )
        if json_length is None:
            return Reply(200, payload, headers=headers), result
        length = str(json_length).encode()
        headers = ((b"inference-header-content-length", length), *headers)
        return Reply(200, payload, OCTET_STREAM, headers), result


def _model_params(parameters: Mapping[str, Any]) -> dict[str, Any] | None:
    """The request's parameters that are not the protocol's own (None: there are none)."""
    if not parameters:
        return None
    params = {k: v for k, v in parameters.items() if k not in RESERVED_PARAMETERS}
    return params or None


def _refuse_pickles(content_type: str | None) -> None:
    # A pickled body is code (BentoML's CVE-2025-27520): never even read one.
    if content_type is not None and "pickle" in content_type.lower():
        raise UnsupportedMediaTypeError(
            f"content type {content_type!r} is not accepted: send JSON, optionally with the "
            "binary tensor extension"
        )


def _encoded(request: V2Request, result: InferenceResult) -> list[EncodedOutput]:
    binary = {o.name: o.binary for o in request.outputs or ()}
    encoded = []
    for name, array in result.outputs.items():
        spec = result.interface.output(name)
        assert spec is not None
        wants_binary = binary.get(name)
        encoded.append(
            EncodedOutput(
                name=name,
                datatype=spec.datatype,
                array=array,
                binary=request.binary_data_output if wants_binary is None else wants_binary,
            )
        )
    if result.ids and request.outputs is None:  # the row ids sent, when all outputs are wanted
        for name, array in result.ids.items():
            encoded.append(
                EncodedOutput(name, datatype_of(array), array, request.binary_data_output)
            )
    return encoded


def limits_for(max_elements: int) -> V2Limits:
    """The V2 decoder's limits for the server's settings."""
    return V2Limits(max_elements=max_elements)


def json_body(data: object) -> bytes:
    """A JSON body (orjson)."""
    return orjson.dumps(data)
