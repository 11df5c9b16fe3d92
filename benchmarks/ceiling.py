"""The serving benchmark's ceiling: the least a Python server can do per request.

    MODELPORT_CEILING_GRAPH=path/to/model.onnx uvicorn ceiling:app --app-dir benchmarks \
        --workers 2 --loop uvloop --http httptools --no-access-log

A bare ASGI app that answers MLflow's ``POST /invocations`` with a ``dataframe_split``
body: orjson parses it, numpy makes the float64 matrix, onnxruntime (one thread per call,
no spinning: the options modelport's server uses) runs the graph, orjson writes
``{"predictions": [...]}``. No validation, no batching, no metrics, no request ids, no
error handling beyond what the libraries do. ``benchmarks/serve.py`` serves the same ONNX
forest with it in the same run, so modelport's requests/s read as a share of this.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson

GRAPH_ENV = "MODELPORT_CEILING_GRAPH"


def _session(path: str) -> Any:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


_SESSION = _session(os.environ[GRAPH_ENV])
_INPUT = _SESSION.get_inputs()[0].name
_LABEL = _SESSION.get_outputs()[0].name
_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The whole server."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] == "GET":  # readiness, for the benchmark's wait
        answer = b'{"ready":true}'
    else:
        data = orjson.loads(body)["dataframe_split"]["data"]
        matrix = np.asarray(data, dtype=np.float64)
        (labels,) = _SESSION.run([_LABEL], {_INPUT: matrix})
        answer = orjson.dumps({"predictions": labels}, option=orjson.OPT_SERIALIZE_NUMPY)
    headers = [*_HEADERS, (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})
