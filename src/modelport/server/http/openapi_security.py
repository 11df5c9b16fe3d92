"""The OpenAPI side of API keys (merged into ``openapi``): ``GET /api``, ``/api/keys``,
the bearer security scheme, and the 401/403/429 answers of every route that checks
keys (all but the health probes).
"""

from __future__ import annotations

from typing import Any

from modelport.domain.keys import ACCEPTED_SCOPES

# The routes that never ask for a key: probes must work without one.
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health"})
SCHEME = "apiKey"
SECURITY_SCHEMES = {
    SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "mp_<key_id>_<secret>",
        "description": "An API key from `modelport key create`, required when the server "
        "checks keys (by default when it binds a non-loopback address). Scopes: "
        f"{ACCEPTED_SCOPES}.",
    }
}
_TEXT = {"type": "string"}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_ERROR = {"$ref": "#/components/schemas/Error"}
_MLFLOW_ERROR = {"$ref": "#/components/schemas/MlflowError"}
_KEY: dict[str, Any] = {
    "type": "object",
    "required": ["key_id", "name", "scopes", "created_at", "created_by"],
    "properties": {
        "key_id": _TEXT,
        "name": _TEXT,
        "scopes": {"type": "array", "items": _TEXT},
        "created_at": _TEXT,
        "created_by": _TEXT,
        "expires_at": _NULLABLE_TEXT,
        "revoked_at": _NULLABLE_TEXT,
        "revoked_by": _NULLABLE_TEXT,
        "rate_limit": _NULLABLE_TEXT,
        "daily_quota": {"type": ["integer", "null"]},
    },
}
_NEW_KEY = {
    "type": "object",
    "required": ["name", "scopes"],
    "additionalProperties": False,
    "properties": {
        "name": {**_TEXT, "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
        "scopes": {"type": "array", "items": _TEXT, "minItems": 1},
        "expires": {**_TEXT, "description": "Lifetime: 90d, 12h, 30m."},
        "rate_limit": {**_TEXT, "description": "100/s, 6000/m, 1000/h."},
        "daily_quota": {"type": "integer", "minimum": 1, "maximum": 2_000_000_000},
    },
}
_SERVER_INFO = {
    "type": "object",
    "required": ["name", "version", "auth", "tls"],
    "properties": {
        "name": _TEXT,
        "version": _TEXT,
        "auth": {"type": "string", "enum": ["api-keys", "off", "insecure-no-auth"]},
        "keys": _NULLABLE_TEXT,
        "tls": {"type": "boolean"},
        "warning": _NULLABLE_TEXT,
        "rate_limits": {
            **_NULLABLE_TEXT,
            "description": "How rate limits and quotas are counted; null: none.",
        },
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json(_ERROR, "error") for code in codes}


def security_paths() -> dict[str, Any]:
    """``GET /api`` and the key routes."""
    key_id = {"name": "key_id", "in": "path", "required": True, "schema": _TEXT}
    listing = {"type": "object", "properties": {"keys": {"type": "array", "items": _KEY}}}
    created = {**_KEY, "properties": {**_KEY["properties"], "key": _TEXT}}
    return {
        "/api": {
            "get": {
                "summary": "This server: version, whether and how API keys are checked, TLS",
                "responses": {"200": _json(_SERVER_INFO, "server information")},
            }
        },
        "/api/keys": {
            "get": {
                "summary": "Every API key (never a secret); admin",
                "responses": {"200": _json(listing, "keys"), **_errors(501)},
            },
            "post": {
                "summary": "Create an API key; the answer's `key` is its only showing; admin",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _NEW_KEY}},
                },
                "responses": {
                    "201": _json(created, "the new key, with its token"),
                    **_errors(400, 409, 415, 501),
                },
            },
        },
        "/api/keys/{key_id}": {
            "delete": {
                "summary": "Revoke an API key (every server refuses it within "
                "keys_refresh_s); admin",
                "parameters": [key_id],
                "responses": {"200": _json(_KEY, "the revoked key"), **_errors(404, 409, 501)},
            }
        },
    }


def secure(paths: dict[str, Any]) -> None:
    """Mark every operation but the probes as taking an API key, with its 401 (no usable
    key), 403 (missing scope) and 429 (rate limit, quota, or too many failed keys)."""
    for path, item in paths.items():
        if path in OPEN_PATHS:
            continue
        for operation in item.values():
            operation["security"] = [{SCHEME: []}]
            responses = operation.setdefault("responses", {})
            # MLflow's routes answer errors in MLflow's shape, the others in ours.
            error = _MLFLOW_ERROR if "MlflowError" in str(responses) else _ERROR
            for code, meaning in (
                ("401", "no usable API key (WWW-Authenticate: Bearer)"),
                ("403", "the API key lacks the scope this needs"),
                ("429", "a rate limit or quota is spent (Retry-After)"),
            ):
                responses.setdefault(code, _json(error, meaning))
