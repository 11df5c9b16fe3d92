"""The OpenAPI paths and schemas of ``/api/registry`` (merged into ``openapi``)."""

from __future__ import annotations

from typing import Any

_TEXT = {"type": "string"}
_FLAG = {"type": "boolean"}
_TAGS = {"type": "object", "additionalProperties": {"type": "string"}}
_V = "/api/registry/models/{name}/versions/{version}"

_MODEL = {
    "type": "object",
    "required": ["name", "description", "created_at", "updated_at", "tags", "aliases"],
    "properties": {
        "name": _TEXT,
        "description": _TEXT,
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "tags": _TAGS,
        "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
        "latest_version": {"type": ["integer", "null"]},
    },
}
_VERSION = {
    "type": "object",
    "required": ["name", "version", "ref", "flavor", "status", "manifest_digest"],
    "properties": {
        "name": _TEXT,
        "version": {"type": "integer", "minimum": 1},
        "ref": {"type": "string", "description": "models:/NAME/VERSION"},
        "flavor": _TEXT,
        "status": {"type": "string", "enum": ["active", "archived"]},
        "aliases": {"type": "array", "items": _TEXT},
        "description": _TEXT,
        "created_by": {"type": "string", "description": "key:NAME, or the server's user"},
        "created_at": {"type": "string", "format": "date-time"},
        "tags": _TAGS,
        "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
        "params": _TAGS,
        "manifest_digest": {"type": "string", "description": "sha256 of modelport.yaml"},
        "signature": {"type": ["object", "null"]},
    },
}
_MOVE = {
    "type": "object",
    "required": ["alias", "version"],
    "properties": {
        "alias": _TEXT,
        "version": {"$ref": "#/components/schemas/RegistryVersion"},
        "previous": {"type": ["integer", "null"]},
        "restored": _FLAG,
        "archived": {"type": "array", "items": {"type": "object"}},
        "forced": {"type": "array", "items": _TEXT},
    },
}
_AUDIT = {
    "type": "object",
    "required": ["id", "timestamp", "actor", "action", "model"],
    "properties": {
        "id": {"type": "integer"},
        "timestamp": {"type": "string", "format": "date-time"},
        "actor": {"type": "string", "description": "key:NAME of the calling key"},
        "action": {"type": "string", "description": "version.create, alias.set, ..."},
        "model": _TEXT,
        "version": {"type": ["integer", "null"]},
        "target": {"type": ["string", "null"]},
        "before": {"type": ["object", "null"]},
        "after": {"type": ["object", "null"]},
    },
}
_FILES = {
    "type": "object",
    "properties": {
        "name": _TEXT,
        "version": {"type": "integer"},
        "manifest_sha256": _TEXT,
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"path": _TEXT, "sha256": _TEXT, "size": {"type": "integer"}},
            },
        },
    },
}
_ERROR = {
    "type": "object",
    "required": ["error", "code", "kind"],
    "properties": {
        "error": _TEXT,
        "code": {"type": "string", "description": "MODEL_NOT_FOUND, GATE_FAILED, ..."},
        "kind": {"type": "string", "description": "The error's class: ModelNotFoundError, ..."},
        "fields": {"type": "object", "description": "Every attribute of the error."},
        "model": _TEXT,
        "version": {"type": "integer"},
        "field": _TEXT,
    },
}


def _answer(schema: dict[str, Any] | str, description: str) -> dict[str, Any]:
    body = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _answer("RegistryError", "error") for code in codes}


def _path(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": _TEXT} for n in names]


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    found = {"name": name, "in": "query", "required": False, "schema": schema}
    return {**found, "description": description} if description else found


def _body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "required": required, "properties": properties}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, Any], *errors: int, **extra: Any) -> dict[str, Any]:
    return {"summary": summary, **extra, "responses": {"200": ok, **_errors(*errors)}}


def _listing(key: str, schema: str) -> dict[str, Any]:
    items = {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}
    return {"type": "object", "properties": {key: items}}


def registry_paths() -> dict[str, Any]:
    """Every ``/api/registry`` path."""
    name, version = _path("name"), _path("name", "version")
    deleted = _answer({"type": "object", "properties": {"deleted": {"type": "object"}}}, "deleted")
    filter_ = _query("filter", _TEXT, "e.g. name = 'churn' AND metrics.auc > 0.9")
    tags_body = _body(["tags"], {"tags": _TAGS})
    moving = {
        "force": _FLAG,
        "skip_gates": {"type": "string", "description": "the reason"},
        "archive_previous": _FLAG,
    }
    upload = {
        "summary": "Register a package (tar of its directory) as the next version",
        "parameters": [
            *name,
            {
                "name": "X-Modelport-Manifest-Sha256",
                "in": "header",
                "required": True,
                "schema": _TEXT,
            },
        ],
        "requestBody": {"required": True, "content": {"application/x-tar": {"schema": {}}}},
        "responses": {
            "201": _answer("RegistryVersion", "registered"),
            **_errors(400, 404, 409, 413, 415),
        },
    }
    stream = {"description": "the file", "content": {"application/octet-stream": {"schema": {}}}}
    return {
        "/api/registry/models": {
            "get": _op(
                "Registered models (with a version matching the filter)",
                _answer(_listing("models", "RegisteredModel"), "models"),
                400,
                parameters=[filter_],
            ),
        },
        "/api/registry/models/{name}": {
            "get": _op("One model", _answer("RegisteredModel", "model"), 404, parameters=name),
            "patch": _op(
                "Change a model's description",
                _answer("RegisteredModel", "model"),
                400,
                404,
                parameters=name,
                requestBody=_body(["description"], {"description": _TEXT}),
            ),
            "delete": _op(
                "Delete a model and its versions (409 while it has aliases)",
                deleted,
                404,
                409,
                parameters=name,
            ),
        },
        "/api/registry/models/{name}/tags": {
            "post": _op(
                "Set tags on a model",
                _answer("RegisteredModel", "model"),
                400,
                404,
                parameters=name,
                requestBody=tags_body,
            ),
        },
        "/api/registry/models/{name}/aliases/{alias}": {
            "put": _op(
                "Point an alias or stage at a version (gates run on the server)",
                _answer("AliasMove", "what moved"),
                400,
                404,
                409,
                parameters=_path("name", "alias"),
                requestBody=_body(["version"], {"version": {"type": "integer"}, **moving}),
            ),
            "delete": _op(
                "Remove an alias or stage", deleted, 404, parameters=_path("name", "alias")
            ),
        },
        "/api/registry/models/{name}/versions": {
            "get": _op(
                "Every version, newest first",
                _answer(_listing("versions", "RegistryVersion"), "versions"),
                404,
                parameters=name,
            ),
            "post": upload,
        },
        _V: {
            "get": _op(
                "One version", _answer("RegistryVersion", "version"), 404, parameters=version
            ),
            "delete": _op(
                "Delete a version and its files (409 while an alias points at it)",
                deleted,
                404,
                409,
                parameters=version,
            ),
        },
        f"{_V}/tags": {
            "post": _op(
                "Set tags on a version",
                _answer("RegistryVersion", "version"),
                400,
                404,
                parameters=version,
                requestBody=tags_body,
            ),
            "delete": _op(
                "Remove tags from a version",
                _answer("RegistryVersion", "version"),
                404,
                parameters=[*version, _query("key", _TEXT, "repeatable")],
            ),
        },
        f"{_V}/archive": {
            "post": _op(
                "Archive a version",
                _answer("AliasMove", "what it did"),
                404,
                409,
                parameters=version,
            ),
        },
        f"{_V}/promote": {
            "post": _op(
                "Move a stage to the version (gates run on the server; skip_gates "
                "needs a reason, audited)",
                _answer("AliasMove", "what moved"),
                400,
                404,
                409,
                parameters=version,
                requestBody=_body(["stage"], {"stage": _TEXT, **moving}),
            ),
        },
        f"{_V}/manifest": {
            "get": _op(
                "The version's modelport.yaml as JSON",
                _answer({"type": "object"}, "manifest"),
                404,
                409,
                parameters=version,
            ),
        },
        f"{_V}/reference-stats": {
            "get": _op(
                "The version's reference statistics and their origin (recomputed, package)",
                _answer(
                    {
                        "type": "object",
                        "properties": {
                            "stats": {"type": ["object", "null"]},
                            "origin": {"type": "string", "enum": ["recomputed", "package"]},
                        },
                    },
                    "statistics",
                ),
                404,
                409,
                parameters=version,
            ),
        },
        f"{_V}/files": {
            "get": _op(
                "The package's files with their sha256",
                _answer(_FILES, "files"),
                404,
                parameters=version,
            ),
        },
        f"{_V}/file": {
            "get": _op(
                "One file of the package, streamed (X-Modelport-Sha256)",
                stream,
                400,
                404,
                parameters=[*version, _query("path", _TEXT)],
            ),
        },
        "/api/registry/versions": {
            "get": _op(
                "Versions matching a filter",
                _answer(_listing("versions", "RegistryVersion"), "versions"),
                400,
                parameters=[filter_, _query("max_results", {"type": "integer"})],
            ),
        },
        "/api/registry/resolve": {
            "get": _op(
                "The version a reference names (churn@production, churn/3)",
                _answer("RegistryVersion", "version"),
                400,
                404,
                parameters=[_query("ref", _TEXT)],
            ),
        },
        "/api/registry/audit": {
            "get": _op(
                "The audit trail, newest first",
                _answer(_listing("entries", "AuditEntry"), "entries"),
                400,
                parameters=[
                    _query("model", _TEXT),
                    _query("since", {"type": "string", "format": "date-time"}),
                    _query("limit", {"type": "integer", "minimum": 1}),
                ],
            ),
        },
    }


def registry_schemas() -> dict[str, Any]:
    """The schemas the registry paths refer to."""
    return {
        "RegisteredModel": _MODEL,
        "RegistryVersion": _VERSION,
        "AliasMove": _MOVE,
        "AuditEntry": _AUDIT,
        "RegistryError": _ERROR,
    }
