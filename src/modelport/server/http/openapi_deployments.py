"""The OpenAPI paths and schemas of ``/api/deployments`` (merged into ``openapi``)."""

from __future__ import annotations

from typing import Any

_NUMBER = {"type": "number"}
_TEXT = {"type": "string"}
_VERSION = {"type": "integer", "minimum": 1}
_REASON = {"type": "string", "description": "Why: recorded in the audit trail and history."}
_MODEL = {
    "type": "string",
    "description": "The registered model whose version this is (default: the deployment name).",
}

_ARM = {
    "type": "object",
    "required": ["name", "model", "version", "role", "weight", "sample"],
    "properties": {
        "name": {"type": "string", "description": "champion, canary, ... or role-version"},
        "model": _TEXT,
        "version": _VERSION,
        "role": {"type": "string", "enum": ["champion", "canary", "challenger", "shadow"]},
        "weight": {**_NUMBER, "description": "Percent of the live traffic (0 for shadows)."},
        "sample": {**_NUMBER, "description": "Share of requests copied to a shadow (1 live)."},
    },
}
_DEPLOYMENT = {
    "type": "object",
    "required": ["name", "revision", "arms"],
    "properties": {
        "name": _TEXT,
        "revision": {"type": "integer", "description": "One higher at every change."},
        "arms": {"type": "array", "items": {"$ref": "#/components/schemas/DeploymentArm"}},
        "sticky": {"type": ["string", "null"], "description": "header:NAME or field:NAME"},
        "previous_champion": {
            "type": ["object", "null"],
            "description": "Where rollback goes when there is no candidate to drop.",
            "properties": {"model": _TEXT, "version": _VERSION},
        },
        "created_at": {"type": ["string", "null"], "format": "date-time"},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "updated_by": {"type": ["string", "null"]},
    },
}
_EVENT = {
    "type": "object",
    "required": ["id", "deployment", "revision", "action", "actor", "timestamp", "spec"],
    "properties": {
        "id": {"type": "integer"},
        "deployment": _TEXT,
        "revision": {"type": "integer"},
        "action": {"type": "string", "description": "deployment.create, deployment.canary, ..."},
        "actor": _TEXT,
        "reason": {"type": ["string", "null"]},
        "timestamp": {"type": "string", "format": "date-time"},
        "spec": {"type": "object", "description": "arms, sticky, previous_champion after it"},
        "details": {"type": "object", "description": "gate report, arm, rollout numbers"},
    },
}
_ERROR = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": _TEXT,
        "code": {"type": "string", "description": "DEPLOYMENT_NOT_FOUND, STALE_DEPLOYMENT, ..."},
        "deployment": _TEXT,
        "expected_revision": {"type": "integer"},
        "revision": {"type": "integer"},
        "report": {"type": "object", "description": "The gates' report (GATE_FAILED)."},
        "field": _TEXT,
    },
}


def _body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": {**properties, "reason": _REASON},
    }
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


def _answer(schema: str, description: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _answer("DeploymentError", "error") for code in codes}


def _path(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": _TEXT} for n in names]


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _change(summary: str, body: dict[str, Any], *errors: int) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": _path("name"),
            "requestBody": body,
            "responses": {
                "200": _answer("Deployment", "the deployment after the change"),
                **_errors(400, 404, 409, 415, *errors),
            },
        }
    }


def deployment_paths() -> dict[str, Any]:
    """Every ``/api/deployments`` path."""
    listing = {"type": "object", "properties": {"deployments": {"type": "array"}}}
    history = {"type": "object", "properties": {"deployment": _TEXT, "events": {"type": "array"}}}
    deleted = {"type": "object", "properties": {"deleted": {"type": "object"}}}
    return {
        "/api/deployments": {
            "get": {
                "summary": "Every deployment, by name",
                "responses": {
                    "200": {
                        "description": "deployments (items: Deployment)",
                        "content": {"application/json": {"schema": listing}},
                    },
                    **_errors(501),
                },
            }
        },
        "/api/deployments/{name}": {
            "get": {
                "summary": "One deployment: its arms, weights and sticky key",
                "parameters": _path("name"),
                "responses": {"200": _answer("Deployment", "deployment"), **_errors(404)},
            },
            "put": {
                "summary": "Create a deployment answered by one version (409 if it exists)",
                "parameters": _path("name"),
                "requestBody": _body(["version"], {"version": _VERSION, "model": _MODEL}),
                "responses": {
                    "201": _answer("Deployment", "created"),
                    **_errors(400, 404, 409, 415),
                },
            },
            "delete": {
                "summary": "Delete a deployment (its history stays)",
                "parameters": [*_path("name"), _query("reason", _TEXT)],
                "responses": {
                    "200": {
                        "description": "deleted",
                        "content": {"application/json": {"schema": deleted}},
                    },
                    **_errors(404),
                },
            },
        },
        "/api/deployments/{name}/history": {
            "get": {
                "summary": "A deployment's changes, newest first (items: DeploymentEvent)",
                "parameters": [
                    *_path("name"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
                "responses": {
                    "200": {
                        "description": "history",
                        "content": {"application/json": {"schema": history}},
                    },
                    **_errors(400, 404),
                },
            }
        },
        "/api/deployments/{name}/canary": _change(
            "Put a version on a share of the traffic as the canary",
            _body(["version", "weight"], {"version": _VERSION, "weight": _NUMBER, "model": _MODEL}),
        ),
        "/api/deployments/{name}/ab": _change(
            "Split the traffic between versions by weight, optionally sticky",
            _body(
                ["arms"],
                {
                    "arms": {
                        "description": "[{version, weight}, ...] or '3:50,4:50'",
                        "oneOf": [
                            {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["version", "weight"],
                                    "properties": {"version": _VERSION, "weight": _NUMBER},
                                },
                            },
                            _TEXT,
                        ],
                    },
                    "sticky": {"type": "string", "description": "header:X-User-ID, field:id"},
                    "model": _MODEL,
                },
            ),
        ),
        "/api/deployments/{name}/shadow": _change(
            "Copy a share of the requests to a version (answers logged, never returned)",
            _body(["version", "sample"], {"version": _VERSION, "sample": _NUMBER, "model": _MODEL}),
        ),
        "/api/deployments/{name}/weights": _change(
            "Set a live arm's weight; the champion takes up the difference",
            _body(["arm", "weight"], {"arm": _TEXT, "weight": _NUMBER}),
        ),
        "/api/deployments/{name}/promote": _change(
            "Make the candidate the champion, after the production gates pass",
            _body([], {"arm": _TEXT, "skip_gates": {"type": "string", "description": "Reason"}}),
        ),
        "/api/deployments/{name}/rollback": _change(
            "Back to the last good champion", _body([], {})
        ),
        "/api/deployments/{name}/arms/{arm}": {
            "delete": {
                "summary": "Remove a candidate or shadow arm; its weight goes to the champion",
                "parameters": [*_path("name", "arm"), _query("reason", _TEXT)],
                "responses": {
                    "200": _answer("Deployment", "the deployment after the change"),
                    **_errors(400, 404, 409),
                },
            }
        },
    }


def deployment_schemas() -> dict[str, Any]:
    """The schemas the deployment paths refer to."""
    return {
        "Deployment": _DEPLOYMENT,
        "DeploymentArm": _ARM,
        "DeploymentEvent": _EVENT,
        "DeploymentError": _ERROR,
    }
