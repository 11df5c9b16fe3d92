"""``POST /api/registry/models/{name}/versions/{version}/validate?to=production``: run
the control plane's promotion gates for a version without moving it (what ``modelport
version validate`` does over the database).

The gates are the control plane's ``[gates]``, as promotions through it run them: the
versions load from its store, the shadow and latency numbers come from its prediction
log. A labelled holdout may be uploaded as the body (``?format=csv|parquet&label=y``,
at most ``[serve] max_upload_bytes``; ``holdout=`` its path on the client, which the
report names it by); without one, its own ``[gates] holdout`` is used.
The answer is the report (200 whatever the gates decided): every gate's outcome and
numbers, and ``exit_code`` 0 (passed), 1 (a gate failed) or 2 (a gate could not be
evaluated). Needs ``deploy`` on the model: the gates run the model's code on uploaded
data, as a promotion would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from modelport.domain.gates import GateReport
from modelport.errors import InvalidRequestError, UnsupportedOperationError
from modelport.registry.service import RegistryService
from modelport.rollout.gates import Gates
from modelport.server.http.access import Access
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Reply
from modelport.server.http.registry_endpoint import RegistryEndpoint, last, query, version_param
from modelport.server.http.registry_models import CHANGE
from modelport.server.http.registry_openapi_parts import (
    TEXT,
    answer,
    data_upload,
    errors,
    path_params,
    query_param,
)
from modelport.server.http.registry_uploads import data_format, uploaded_file

HOLDOUT_FORMATS = ("csv", "parquet")
_UPLOAD = data_upload("the labelled holdout", HOLDOUT_FORMATS, required=False)
_REPORT = {
    "type": "object",
    "required": ["model", "version", "target", "passed", "exit_code", "results"],
    "properties": {
        "model": TEXT,
        "version": {"type": "integer"},
        "target": TEXT,
        "baseline": {"type": ["integer", "null"]},
        "passed": {"type": "boolean"},
        "exit_code": {"type": "integer", "enum": [0, 1, 2]},
        "results": {"type": "array", "items": {"type": "object", "properties": {
            "gate": TEXT, "outcome": {"enum": ["passed", "failed", "skipped", "error"]},
            "message": TEXT, "details": {"type": "object"}}}},
    },
}  # fmt: skip


class ApiRegistryValidate(RegistryEndpoint):
    """POST .../validate: the gates' report for the version going to ``to``."""

    access = Access(CHANGE, "name")
    openapi: ClassVar[dict[str, Any]] = {
        "post": {
            "summary": "Run the promotion gates for the version going to a stage or alias, "
            "without moving it",
            "parameters": [
                *path_params("name", "version"),
                query_param("to", TEXT, "the stage or alias (default production)"),
                query_param("label", TEXT, "the label column of the uploaded holdout"),
                query_param("holdout", TEXT, "the holdout's name on the client, for the report"),
                _UPLOAD["parameter"],
            ],
            "requestBody": _UPLOAD["body"],
            "responses": {
                "200": answer(_REPORT, "the gates' report"),
                **errors(400, 403, 404, 413, 415, 501),
            },
        }
    }

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, number = scope["path_params"]["name"], version_param(scope)
        params = query(scope, ("to", "label", "format", "holdout"))
        target, label = last(params, "to") or "production", last(params, "label")
        await self.call(scope, lambda r: r.get_version(name, number))  # 404 before the upload
        if "format" not in params:
            if label is not None:
                raise InvalidRequestError(
                    "label names a column of an uploaded holdout (format: its format)",
                    field="label",
                )
            report = await self.call(scope, lambda r: _evaluate(r, name, number, target))
            return Reply.json(report.to_dict())
        suffix = data_format(params, HOLDOUT_FORMATS)
        async with uploaded_file(self, scope, receive, suffix, "the holdout") as path:
            if path is None:
                raise InvalidRequestError("the body must carry the holdout file", field="body")
            holdout = path
            report = await self.call(
                scope, lambda r: _evaluate(r, name, number, target, holdout=holdout, label=label)
            )
        named = last(params, "holdout") or f"the uploaded holdout.{suffix}"
        return Reply.json(_naming(report, str(holdout), named))


def _evaluate(
    registry: RegistryService,
    name: str,
    number: int,
    target: str,
    *,
    holdout: Path | None = None,
    label: str | None = None,
) -> GateReport:
    gates = registry.gates
    if not isinstance(gates, Gates):
        raise UnsupportedOperationError("this server's registry runs no promotion gates")
    candidate = registry.get_version(name, number)
    if holdout is None:
        return gates.check(candidate, target)  # with [gates] holdout, if configured
    return gates.evaluate(candidate, target, holdout=holdout, label=label)


def _naming(report: GateReport, scratch: str, name: str) -> dict[str, Any]:
    """The report as JSON, naming the holdout as the client does (``?holdout=``, its
    path there), never by this server's scratch copy."""
    document = report.to_dict()
    for result in document["results"]:
        result["message"] = result["message"].replace(scratch, name)
        details = result["details"]
        for key, value in details.items():
            if value == scratch:
                details[key] = name
    return document
