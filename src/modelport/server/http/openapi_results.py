"""The OpenAPI paths and schemas of a deployment's results (``deployment_results``),
merged into the server's document by ``openapi``."""

from __future__ import annotations

from typing import Any

_NUMBER = {"type": ["number", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _answer(schema: str, description: str) -> dict[str, Any]:
    errors = {
        str(code): {
            "description": "error",
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        for code in (400, 404, 501)
    }
    content = {"application/json": {"schema": _ref(schema)}}
    return {"200": {"description": description, "content": content}, **errors}


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_UNTIL = _query("until", "Window end, same forms; default now.")
_ARM = {
    "type": "object",
    "description": "The arm as stored (name, model, version, role, weight, sample) and what "
    "it did in the window.",
    "required": ["name", "model", "version", "role", "weight", "requests", "errors"],
    "properties": {
        "name": {"type": "string"},
        "model": {"type": "string"},
        "version": {"type": "integer"},
        "role": {"type": "string", "enum": ["champion", "canary", "challenger", "shadow"]},
        "weight": {"type": "number"},
        "sample": {"type": "number"},
        "traffic_share": _NUMBER,
        "requests": {"type": "integer"},
        "errors": {"type": "integer", "description": "requests that ended in a 5xx"},
        "error_rate": _NUMBER,
        "latency_p50_ms": _NUMBER,
        "latency_p99_ms": _NUMBER,
        "labelled": {"type": "integer"},
        "correct": {"type": "integer"},
        "accuracy": _NUMBER,
        "score_column": {"type": ["string", "null"]},
        "mean_score": _NUMBER,
        "score_std": _NUMBER,
        "scored": {"type": "integer"},
    },
}
_COMPARISON = {
    "type": "object",
    "description": "One metric of an arm against the champion: candidate minus baseline, "
    "rates in percentage points, latency in ms.",
    "required": ["metric", "test", "difference", "ci", "p_value", "verdict"],
    "properties": {
        "metric": {"type": "string"},
        "test": {"type": "string", "enum": ["two-proportion z", "welch t", "mann-whitney u"]},
        "baseline": {"type": "string"},
        "candidate": {"type": "string"},
        "baseline_value": {"type": "number"},
        "candidate_value": {"type": "number"},
        "difference": {"type": "number"},
        "ci": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "confidence": {"type": "number"},
        "p_value": {"type": "number"},
        "statistic": {"type": "number"},
        "n": {"type": "array", "items": {"type": "integer"}},
        "needed_per_arm": {"type": ["integer", "null"]},
        "more_needed": {"type": ["integer", "null"]},
        "power": {"type": "number"},
        "unit": {"type": "string"},
        "better": {"type": "string", "enum": ["higher", "lower", "neutral"]},
        "significant": {"type": "boolean"},
        "verdict": {"type": "string"},
    },
}
_STATUS = {
    "type": "object",
    "required": ["deployment", "revision", "since", "arms", "comparisons", "verdicts"],
    "properties": {
        "deployment": {"type": "string"},
        "revision": {"type": "integer"},
        "since": {"type": "string"},
        "until": {"type": ["string", "null"]},
        "arms": {"type": "array", "items": _ref("DeploymentArmStats")},
        "comparisons": {"type": "array", "items": _ref("ArmComparison")},
        "verdicts": {"type": "array", "items": {"type": "string"}},
    },
}
_SHADOW = {
    "type": "object",
    "required": ["deployment", "champion", "shadow", "rows", "agreement_rate"],
    "properties": {
        "deployment": {"type": "string"},
        "champion": {"type": "string"},
        "shadow": {"type": "string"},
        "rows": {"type": "integer"},
        "shadow_rows": {"type": "integer"},
        "shadow_errors": {"type": "integer"},
        "agreeing": {"type": "integer"},
        "agreement_rate": _NUMBER,
        "scored_rows": {"type": "integer"},
        "mean_abs_diff": _NUMBER,
        "max_abs_diff": _NUMBER,
        "worst": {"type": "array", "items": {"type": "object"}},
        "champion_latency_p50_ms": _NUMBER,
        "champion_latency_p99_ms": _NUMBER,
        "shadow_latency_p50_ms": _NUMBER,
        "shadow_latency_p99_ms": _NUMBER,
    },
}
_SHADOWS = {
    "type": "object",
    "required": ["deployment", "shadows"],
    "properties": {
        "deployment": {"type": "string"},
        "shadows": {"type": "array", "items": _ref("ShadowComparison")},
    },
}

SCHEMAS: dict[str, Any] = {
    "DeploymentArmStats": _ARM,
    "ArmComparison": _COMPARISON,
    "DeploymentStatus": _STATUS,
    "ShadowComparison": _SHADOW,
    "ShadowComparisons": _SHADOWS,
}


def paths() -> dict[str, Any]:
    """``/api/deployments/{name}/status``, ``/results`` and ``/compare``."""
    since = "Window start: a duration back from now (1h, 7d) or ISO 8601; default "
    return {
        "/api/deployments/{name}/status": {
            "get": {
                "summary": "A deployment's arms and what each did: traffic, errors, latency, "
                "live accuracy",
                "parameters": [_NAME, _query("since", since + "1h."), _UNTIL],
                "responses": _answer("DeploymentStatus", "the arms and their numbers"),
            }
        },
        "/api/deployments/{name}/results": {
            "get": {
                "summary": "A/B results: each arm against the champion with a test, an "
                "interval, a p-value, the rows still needed and a verdict",
                "parameters": [
                    _NAME,
                    _query("since", since + "24h."),
                    _UNTIL,
                    _query("confidence", "Confidence of the intervals; default 0.95."),
                    _query("power", "Power for the rows still needed; default 0.8."),
                    _query("score", "A logged numeric column whose means are compared."),
                ],
                "responses": _answer("DeploymentStatus", "the arms, comparisons and verdicts"),
            }
        },
        "/api/deployments/{name}/compare": {
            "get": {
                "summary": "Each shadow against the champion on the same requests",
                "parameters": [
                    _NAME,
                    _query("since", since + "24h."),
                    _UNTIL,
                    _query("shadow", "One shadow arm; default every shadow."),
                    _query("top", "Rows where they differ most to list (0-1000); default 10."),
                ],
                "responses": _answer("ShadowComparisons", "agreement and differences"),
            }
        },
    }
