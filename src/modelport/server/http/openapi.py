"""The OpenAPI 3.1 document of every route the server has (the route inventory).

modelport's REST responses are described by their pydantic models; the V2 and MLflow
bodies follow the Open Inference Protocol's and MLflow's documents, written out here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelport import __version__
from modelport.server.http import openapi_results, rest_schemas
from modelport.server.http.openapi_deployments import deployment_paths, deployment_schemas
from modelport.server.http.openapi_registry import registry_paths, registry_schemas
from modelport.server.http.openapi_rollouts import rollout_paths, rollout_schemas
from modelport.server.http.openapi_security import SECURITY_SCHEMES, secure, security_paths


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_DATATYPES = [
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip
_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
_MLFLOW_ERROR = {
    "type": "object",
    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error_code", "message"],
}
_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": _DATATYPES},
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}
_INFER_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {
            "type": "object",
            "description": "binary_data_output, timeout (microseconds) and the other "
            "protocol parameters; any other key is an inference parameter of the model "
            "(declared ones are type-checked, undeclared ones ignored with an "
            "X-Modelport-Warning header).",
        },
        "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/RequestInput"}},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
            },
        },
    },
}
_INFER_RESPONSE = {
    "type": "object",
    "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "parameters": {
            "type": "object",
            "description": "prediction_ids: the rows' prediction ids, as in the "
            "X-Modelport-Prediction-Ids header (while the prediction log is on).",
            "properties": {"prediction_ids": {"type": "string"}},
        },
        "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/RequestInput"}},
    },
}
_METADATA = {
    "type": "object",
    "required": ["name", "platform", "inputs", "outputs"],
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/TensorInfo"}},
        "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/TensorInfo"}},
        "parameters": {
            "type": "object",
            "description": "The inference parameters the model declares (only when it "
            "declares some), by name.",
            "additionalProperties": {"$ref": "#/components/schemas/ParamInfo"},
        },
    },
}
_PARAM_INFO = {
    "type": "object",
    "required": ["type", "default", "shape"],
    "properties": {
        "type": {
            "type": "string",
            "enum": ["string", "integer", "long", "float", "double", "boolean", "datetime"],
        },
        "default": {},
        "shape": {
            "description": "null for one value, [-1] for a list",
            "anyOf": [{"type": "null"}, {"type": "array", "items": {"type": "integer"}}],
        },
    },
}
_DURATION = {
    "type": "object",
    "required": ["count", "ns"],
    "properties": {"count": {"type": "integer"}, "ns": {"type": "integer"}},
}
_CONFIG_TENSOR = {
    "type": "object",
    "required": ["name", "data_type", "dims"],
    "properties": {
        "name": {"type": "string"},
        "data_type": {"type": "string", "description": "TYPE_FP32, ..., TYPE_STRING (BYTES)"},
        "dims": {"type": "array", "items": {"type": "integer"}},
        "optional": {"type": "boolean"},
    },
}
_MODEL_CONFIG = {
    "type": "object",
    "description": "Triton's ModelConfig (model_config.proto) as JSON.",
    "required": ["name", "platform", "backend", "max_batch_size", "input", "output"],
    "properties": {
        "name": {"type": "string"},
        "platform": {"type": "string"},
        "backend": {"type": "string"},
        "version_policy": {"type": "object"},
        "max_batch_size": {"type": "integer"},
        "input": {"type": "array", "items": _ref("ConfigTensor")},
        "output": {"type": "array", "items": _ref("ConfigTensor")},
        "dynamic_batching": {"type": "object"},
        "parameters": {"type": "object"},
    },
}
_MODEL_STAT = {
    "type": "object",
    "required": ["name", "version", "last_inference", "inference_count", "execution_count",
                 "inference_stats", "batch_stats"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "last_inference": {"type": "integer", "description": "ms since the epoch; 0: none"},
        "inference_count": {"type": "integer"},
        "execution_count": {"type": "integer"},
        "inference_stats": {
            "type": "object",
            "additionalProperties": _ref("DurationStat"),
        },
        "batch_stats": {"type": "array", "items": {"type": "object"}},
    },
}  # fmt: skip
_STATISTICS = {
    "type": "object",
    "required": ["model_stats"],
    "properties": {"model_stats": {"type": "array", "items": _ref("ModelStat")}},
}
_INDEX_ENTRY = {
    "type": "object",
    "required": ["name", "state", "reason"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "state": {"type": "string", "enum": ["READY", "UNAVAILABLE", "LOADING"]},
        "reason": {"type": "string"},
    },
}
_INVOCATION = {
    "type": "object",
    "description": "Exactly one of dataframe_split, dataframe_records, instances, inputs.",
    "properties": {
        "dataframe_split": {
            "type": "object",
            "properties": {"columns": {"type": "array"}, "data": {"type": "array"}},
        },
        "dataframe_records": {"type": "array", "items": {"type": "object"}},
        "instances": {"type": "array"},
        "inputs": {},
        "params": {
            "type": "object",
            "description": "Inference parameters (MLflow's params): the ones the model's "
            "signature declares are type-checked (400 INVALID_PARAMETER_VALUE naming the "
            "parameter) and default when absent; others are ignored with an "
            "X-Modelport-Warning header.",
        },
    },
}
_WARNING_HEADER = {
    "X-Modelport-Warning": {
        "description": "What of the request was ignored (params the model does not declare).",
        "schema": {"type": "string"},
    },
    "X-Modelport-Prediction-Ids": {
        "description": "The rows' prediction ids <request id>-<row> while the prediction log "
        "is on: a comma list up to 16 rows, else <id>-0..<id>-<n-1>.",
        "schema": {"type": "string"},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int, schema: str = "Error") -> dict[str, Any]:
    return {str(code): _json(_ref(schema), "error") for code in codes}


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


_FEEDBACK_ITEM = {
    "type": "object",
    "description": "One label: model, label, and one key: prediction_id, an id column by "
    'name (customer_id: ...), or id: {"customer_id": ...}.',
    "required": ["label"],
    "properties": {
        "model": {"type": "string"},
        "prediction_id": {"type": "string"},
        "id": {"type": "object", "maxProperties": 1, "minProperties": 1},
        "label": {"type": ["string", "number", "boolean"]},
    },
    "additionalProperties": {"type": ["string", "integer"]},
}
_FEEDBACK_BODY = {
    "oneOf": [
        _FEEDBACK_ITEM,
        {"type": "array", "items": _FEEDBACK_ITEM, "minItems": 1},
        {
            "type": "object",
            "required": ["labels"],
            "properties": {
                "model": {"type": "string"},
                "labels": {"type": "array", "items": _FEEDBACK_ITEM, "minItems": 1},
            },
        },
    ]
}
_FEEDBACK_ANSWER = {
    "type": "object",
    "required": ["accepted", "unknown", "corrected", "rejected", "models", "errors"],
    "properties": {
        "accepted": {"type": "integer", "description": "Labels stored."},
        "unknown": {
            "type": "integer",
            "description": "Stored labels whose key is not (yet) in the prediction log.",
        },
        "corrected": {"type": "integer", "description": "Labels replacing an earlier one."},
        "rejected": {"type": "integer", "description": "Malformed items, not stored."},
        "models": {"type": "array", "items": {"type": "object"}},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"index": {"type": "integer"}, "error": {"type": "string"}},
            },
        },
    },
}
_ACTOR_HEADER = {
    "name": "X-Modelport-Actor",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 128},
    "description": "Who sends the labels, for the audit trail (default api:<client address>).",
}
_PERFORMANCE_QUERY = [
    _query(name, description)
    for name, description in (
        ("since", "Window start: a duration back from now (1h, 7d) or ISO 8601; default 24h."),
        ("until", "Window end, same forms; default now."),
        ("version", "One version; default all versions."),
        ("task", "classification or regression; default guessed from the log."),
    )
]
_PERFORMANCE_REPORT = {
    "type": "object",
    "required": ["model", "task", "predictions", "labeled", "coverage", "metrics"],
    "properties": {
        "model": {"type": "string"},
        "version": {"type": ["string", "null"]},
        "since": {"type": ["string", "null"]},
        "until": {"type": ["string", "null"]},
        "task": {"type": ["string", "null"], "enum": ["classification", "regression", None]},
        "predictions": {"type": "integer"},
        "labeled": {"type": "integer"},
        "coverage": {"type": "number"},
        "unmatched_labels": {"type": "integer"},
        "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
        "positive_class": {},
        "probability_rows": {"type": "integer"},
    },
}


def _model_routes(prefix: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    infer_body = {
        "required": True,
        "content": {"application/json": {"schema": _ref("InferRequest")}},
    }
    return {
        prefix: {
            "get": {
                "summary": "Model metadata",
                "parameters": params,
                "responses": {"200": _json(_ref("ModelMetadata"), "metadata"), **_errors(404, 503)},
            }
        },
        f"{prefix}/ready": {
            "get": {
                "summary": "Model readiness",
                "parameters": params,
                "responses": {"200": _json({"type": "object"}, "ready"), **_errors(404, 503)},
            }
        },
        f"{prefix}/config": {
            "get": {
                "summary": "Model configuration (Triton's extension)",
                "parameters": params,
                "responses": {"200": _json(_ref("ModelConfig"), "config"), **_errors(404, 503)},
            }
        },
        f"{prefix}/stats": {
            "get": {
                "summary": "Inference statistics (Triton's extension)",
                "parameters": params,
                "responses": {"200": _json(_ref("Statistics"), "statistics"), **_errors(404)},
            }
        },
        f"{prefix}/infer": {
            "post": {
                "summary": "Inference (JSON or binary tensor extension)",
                "parameters": params,
                "requestBody": infer_body,
                "responses": {
                    "200": {**_json(_ref("InferResponse"), "outputs"), "headers": _WARNING_HEADER},
                    **_errors(400, 404, 413, 500, 503, 504),
                },
            }
        },
    }


def _paths() -> dict[str, Any]:
    name = [_param("name")]
    ok = {"200": _json({"type": "object"}, "ok")}
    invocations = {
        "summary": "MLflow scoring: JSON (dataframe_split, dataframe_records, instances, "
        "inputs) or text/csv",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _ref("Invocation")},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        "responses": {
            "200": {
                **_json({"type": "object", "required": ["predictions"]}, "predictions"),
                "headers": _WARNING_HEADER,
            },
            **_errors(400, 404, 413, 415, 500, 503, 504, schema="MlflowError"),
        },
    }
    return {
        "/v2": {"get": {"summary": "Server metadata", "responses": ok}},
        "/v2/health/live": {"get": {"summary": "Liveness", "responses": ok}},
        "/v2/health/ready": {"get": {"summary": "Readiness", "responses": {**ok, **_errors(503)}}},
        "/v2/models": {"get": {"summary": "Served model names", "responses": ok}},
        **_model_routes("/v2/models/{name}", name),
        **_model_routes("/v2/models/{name}/versions/{version}", [*name, _param("version")]),
        "/v2/models/stats": {
            "get": {
                "summary": "Inference statistics of every model version (Triton's extension)",
                "responses": {"200": _json(_ref("Statistics"), "statistics")},
            }
        },
        "/v2/repository/index": {
            "post": {
                "summary": "Served models and the state of their versions (Triton's extension)",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"ready": {"type": "boolean"}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json({"type": "array", "items": _ref("IndexEntry")}, "index"),
                    **_errors(400, 413),
                },
            }
        },
        **{
            f"/v2/repository/models/{{name}}/{action}": {
                "post": {
                    "summary": f"Triton's model {action}: not supported, always 501 with the "
                    "reason (served models follow the registry)",
                    "parameters": name,
                    "responses": _errors(501),
                }
            }
            for action in ("load", "unload")
        },
        "/invocations": {"post": invocations},
        "/models/{name}/invocations": {"post": {**invocations, "parameters": name}},
        "/ping": {
            "get": {
                "summary": "MLflow health",
                "responses": {"200": {"description": "ok"}, **_errors(404, schema="MlflowError")},
            }
        },
        "/health": {
            "get": {
                "summary": "MLflow health",
                "responses": {"200": {"description": "ok"}, **_errors(404, schema="MlflowError")},
            }
        },
        "/version": {
            "get": {
                "summary": "Server version",
                "responses": {
                    "200": {
                        "description": "version",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/api/models": {
            "get": {
                "summary": "Served models and their state",
                "responses": {"200": _json(_ref("ModelsResponse"), "models")},
            }
        },
        "/api/models/{name}": {
            "get": {
                "summary": "One served model, with its signature",
                "parameters": name,
                "responses": {"200": _json(_ref("ModelDetail"), "model"), **_errors(404)},
            }
        },
        "/api/monitoring/{model}/drift": {
            "get": {
                "summary": "Drift of a served version over a window of the prediction log",
                "parameters": [
                    _param("model"),
                    _query("since", "Window start: 30m, 1h, 24h, 7d or ISO 8601 (default 1h)."),
                    _query("until", "Window end (same forms; default now)."),
                    _query("version", "A served version (default the current one)."),
                    _query(
                        "method.COLUMN",
                        "A column's test: ks, chisquare, z, wasserstein, jensenshannon or psi.",
                    ),
                    _query("threshold.COLUMN", "A column's threshold."),
                ],
                "responses": {
                    "200": _json(_ref("DriftResponse"), "drift"),
                    **_errors(400, 404),
                    "409": _json(
                        _ref("Error"),
                        "the version has no usable reference "
                        "statistics (modelport version stats computes them)",
                    ),
                },
            }
        },
        "/api/feedback": {
            "post": {
                "summary": "Labels (ground truth) for logged predictions: one item, a list, "
                "or {model, labels: [...]}; malformed items are reported, the rest stored",
                "parameters": [_ACTOR_HEADER],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _FEEDBACK_BODY}},
                },
                "responses": {
                    "200": _json(_FEEDBACK_ANSWER, "labels accepted, unknown and corrected"),
                    **_errors(400, 413, 415),
                },
            }
        },
        "/api/monitoring/{model}/performance": {
            "get": {
                "summary": "Live performance over a window of the prediction log",
                "parameters": [_param("model"), *_PERFORMANCE_QUERY],
                "responses": {
                    "200": _json(_PERFORMANCE_REPORT, "metrics and label coverage"),
                    **_errors(400, 404),
                },
            }
        },
        "/api/monitoring/{model}/alerts": {
            "get": {
                "summary": "A model's alert rules, their states, transitions and deliveries",
                "parameters": [
                    _param("model"),
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ],
                "responses": {"200": _json(_ref("AlertsResponse"), "alerts"), **_errors(400, 501)},
            }
        },
        **openapi_results.paths(),
        "/api/openapi.json": {"get": {"summary": "This document", "responses": ok}},
        **deployment_paths(),
        **registry_paths(),
        **rollout_paths(),
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "text exposition",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (
        rest_schemas.ModelsResponse,
        rest_schemas.ModelDetail,
        rest_schemas.DriftResponse,
        rest_schemas.AlertsResponse,
    ):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas.update(
        Error=_ERROR,
        MlflowError=_MLFLOW_ERROR,
        RequestInput=_TENSOR,
        InferRequest=_INFER_REQUEST,
        InferResponse=_INFER_RESPONSE,
        ModelMetadata=_METADATA,
        ParamInfo=_PARAM_INFO,
        Invocation=_INVOCATION,
        ConfigTensor=_CONFIG_TENSOR,
        ModelConfig=_MODEL_CONFIG,
        DurationStat=_DURATION,
        ModelStat=_MODEL_STAT,
        Statistics=_STATISTICS,
        IndexEntry=_INDEX_ENTRY,
    )
    schemas.update(deployment_schemas())
    schemas.update(registry_schemas())
    schemas.update(rollout_schemas())
    schemas.update(openapi_results.SCHEMAS)
    return schemas


def openapi_document(
    routes: Iterable[tuple[str, tuple[str, ...], object]],
    *,
    title: str = "modelport inference server",
) -> dict[str, Any]:
    """The document of an app serving ``routes`` (``app.ROUTES``, ``control.ROUTES``):
    exactly their paths and methods, no more."""
    routed: dict[str, set[str]] = {}
    every = {**_paths(), **security_paths()}
    for path, methods, endpoint in routes:
        routed.setdefault(path, set()).update(method.lower() for method in methods)
        # An endpoint may describe itself (the control plane's /health is not MLflow's).
        own = getattr(endpoint, "openapi", None)
        if isinstance(own, dict):
            every[path] = own
    paths = {
        path: {method: operation for method, operation in item.items() if method in routed[path]}
        for path, item in every.items()
        if path in routed
    }
    secure(paths)
    schemas = _schemas()
    if not any(path.startswith("/api/registry") for path in paths):
        # The serving server answers no registry route: its document has none of theirs.
        schemas = {k: v for k, v in schemas.items() if k not in registry_schemas()}
    if not any("/rollout" in path for path in paths):  # nor of the rollout routes
        schemas = {k: v for k, v in schemas.items() if k not in rollout_schemas()}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }
