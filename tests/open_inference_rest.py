"""The Open Inference Protocol's HTTP/REST API (KServe V2) as an OpenAPI 3.0 document,
for fuzzing the server against the protocol rather than against our own description.

Written from the protocol's text, ``specification/protocol/inference_rest.md`` of
https://github.com/kserve/open-inference-protocol (Apache License 2.0): the six APIs of
its table, each path with and without ``/versions/{version}`` (its ``[...]`` parts), and
the JSON objects of its "Payload Contents", field for field (``#optional`` fields are not
required). Deliberate readings of the text, each noted where it is written:

* a failed request's body is the protocol's error object ``{"error": $string}``, whatever
  the status (the text says "typically 400"), so every 4xx answer is checked against it;
* server metadata is ``GET v2`` (the table's path), not ``v2/``;
* tensor data is any JSON array, nested or flat, of numbers, strings or booleans.
"""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
TENSOR_DATA: dict[str, Any] = {
    "type": "array",
    "items": {
        "anyOf": [
            {"$ref": "#/components/schemas/tensor_data"},
            {"type": "number"},
            {"type": "string"},
            {"type": "boolean"},
        ]
    },
}
PARAMETERS = {"type": "object"}
SCHEMAS: dict[str, Any] = {
    "error": ERROR,
    "parameters": PARAMETERS,
    "tensor_data": TENSOR_DATA,
    "metadata_server_response": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "version", "extensions"],
    },
    "metadata_tensor": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["name", "datatype", "shape"],
    },
    "metadata_model_response": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/metadata_tensor"}},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/metadata_tensor"}},
        },
        "required": ["name", "platform", "inputs", "outputs"],
    },
    "ready_model_response": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
        "required": ["name", "ready"],
    },
    "request_input": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "parameters": {"$ref": "#/components/schemas/parameters"},
            "data": {"$ref": "#/components/schemas/tensor_data"},
        },
        "required": ["name", "shape", "datatype", "data"],
    },
    "request_output": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "parameters": {"$ref": "#/components/schemas/parameters"},
        },
        "required": ["name"],
    },
    "inference_request": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "parameters": {"$ref": "#/components/schemas/parameters"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/request_input"}},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/request_output"}},
        },
        "required": ["inputs"],
    },
    "response_output": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "parameters": {"$ref": "#/components/schemas/parameters"},
            "data": {"$ref": "#/components/schemas/tensor_data"},
        },
        "required": ["name", "shape", "datatype", "data"],
    },
    "inference_response": {
        "type": "object",
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"$ref": "#/components/schemas/parameters"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/response_output"}},
        },
        "required": ["model_name", "outputs"],
    },
}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _get(ok: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": "OK"}
    if ok is not None:
        answer["content"] = _json(ok)
    responses = {"200": answer, "4XX": {"description": "Error", "content": _json("error")}}
    return {"get": {"responses": responses}}


def _infer() -> dict[str, Any]:
    return {
        "post": {
            "requestBody": {"required": True, "content": _json("inference_request")},
            "responses": {
                "200": {"description": "OK", "content": _json("inference_response")},
                "4XX": {"description": "Error", "content": _json("error")},
            },
        }
    }


def _model_paths(suffix: str, item: dict[str, Any]) -> dict[str, Any]:
    plain = {**item, "parameters": [NAME]}
    versioned = {**item, "parameters": [NAME, VERSION]}
    return {
        f"/v2/models/{{name}}{suffix}": plain,
        f"/v2/models/{{name}}/versions/{{version}}{suffix}": versioned,
    }


def open_inference_rest() -> dict[str, Any]:
    """The document (OpenAPI 3.0.3)."""
    paths = {
        "/v2/health/live": _get(None),
        "/v2/health/ready": _get(None),
        "/v2": _get("metadata_server_response"),
        **_model_paths("", _get("metadata_model_response")),
        **_model_paths("/ready", _get("ready_model_response")),
        **_model_paths("/infer", _infer()),
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Open Inference Protocol, HTTP/REST", "version": "2"},
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
