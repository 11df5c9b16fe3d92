"""The OpenAPI paths and schemas of the control plane's rollout routes (``rollouts``)."""

from __future__ import annotations

from typing import Any

_TEXT = {"type": "string"}
_REASON = {"type": "string", "description": "Why: recorded in the audit trail and history."}
_OWNER = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "description": "The caller's controller name; its leases are held under the key's name.",
}
_PLAN = {
    "type": "object",
    "required": ["steps", "interval", "bake", "min_requests", "max_failures", "max_wait"],
    "properties": {
        "steps": {"type": "array", "items": {"type": "number"}, "description": "Weights, %"},
        "interval": {"type": "string", "description": "Time between checks, e.g. 60s"},
        "bake": {"type": "string", "description": "Least time a step runs, e.g. 60s"},
        "min_requests": {"type": "integer", "minimum": 1},
        "max_failures": {"type": "integer", "minimum": 1},
        "max_wait": {"type": "string", "description": "Longest wait for data, e.g. 30m"},
        "thresholds": {"type": "object", "description": "Limits of the checks"},
    },
}
_STATE = {
    "type": "object",
    "required": ["deployment", "model", "version", "plan", "status", "step", "weight"],
    "properties": {
        "deployment": _TEXT,
        "model": _TEXT,
        "version": {"type": "integer"},
        "plan": {"$ref": "#/components/schemas/RolloutPlan"},
        "status": {
            "type": "string",
            "enum": ["running", "paused", "promoted", "rolled_back", "aborted"],
        },
        "step": {"type": "integer"},
        "weight": {"type": "number"},
        "step_started_at": {"type": "string", "format": "date-time"},
        "next_check_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": "string", "format": "date-time"},
        "champion": {"type": "object"},
        "failures": {"type": "integer"},
        "message": _TEXT,
        "decisions": {"type": "array", "items": {"type": "object"}},
        "applied": {"type": "boolean"},
    },
}
_OUTCOMES = {
    "type": "object",
    "properties": {
        "outcomes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "outcome": {
                        "type": "object",
                        "description": "deployment, status, weight, message, decision, note",
                    },
                    "state": {
                        "oneOf": [{"$ref": "#/components/schemas/RolloutState"}, {"type": "null"}]
                    },
                },
            },
        }
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _state(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/RolloutState"}, description)


def _errors(*codes: int) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/DeploymentError"}
    return {str(code): _json(ref, "error") for code in codes}


def _body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


def _post(summary: str, body: dict[str, Any], answer: dict[str, Any], *, name: bool) -> Any:
    parameters = [{"name": "name", "in": "path", "required": True, "schema": _TEXT}]
    return {
        "post": {
            "summary": summary,
            **({"parameters": parameters} if name else {}),
            "requestBody": body,
            "responses": {"200": answer, **_errors(400, 404, 409, 415)},
        }
    }


def rollout_paths() -> dict[str, Any]:
    """Every rollout path."""
    name = [{"name": "name", "in": "path", "required": True, "schema": _TEXT}]
    reason = _body([], {"reason": _REASON})
    owner = _body(["owner"], {"owner": _OWNER})
    ticks = _json(_OUTCOMES, "what each tick did")
    released = _json({"type": "object", "properties": {"released": _TEXT}}, "released")
    base = "/api/deployments/{name}/rollout"
    return {
        base: {
            "get": {
                "summary": "A deployment's progressive rollout: status, step, decisions",
                "parameters": name,
                "responses": {"200": _state("the rollout"), **_errors(404)},
            },
            "post": {
                "summary": "Start a progressive rollout of a version (deploy scope)",
                "parameters": name,
                "requestBody": _body(
                    ["version", "plan"],
                    {
                        "version": {"type": "integer", "minimum": 1},
                        "model": _TEXT,
                        "plan": {"$ref": "#/components/schemas/RolloutPlan"},
                        "reason": _REASON,
                    },
                ),
                "responses": {"201": _state("started"), **_errors(400, 404, 409, 415)},
            },
        },
        f"{base}/pause": _post("Hold a running rollout", reason, _state("after"), name=True),
        f"{base}/resume": _post("Resume a paused rollout", reason, _state("after"), name=True),
        f"{base}/abort": _post(
            "Stop a rollout; all traffic back to the champion", reason, _state("after"), name=True
        ),
        f"{base}/tick": _post(
            "One controller tick of this rollout, under the caller's lease",
            owner,
            ticks,
            name=True,
        ),
        f"{base}/release": _post(
            "Give up the caller's lease on this rollout", owner, released, name=True
        ),
        "/api/rollouts/tick": _post(
            "One controller tick of every rollout, under the caller's leases",
            owner,
            ticks,
            name=False,
        ),
        "/api/rollouts/release": _post(
            "Give up every lease the caller holds", owner, released, name=False
        ),
    }


def rollout_schemas() -> dict[str, Any]:
    """The schemas the rollout paths refer to."""
    return {"RolloutPlan": _PLAN, "RolloutState": _STATE}
