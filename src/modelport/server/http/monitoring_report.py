"""``GET /api/monitoring/{model}/report``: the monitoring report of one version, built
on the server that holds the prediction log and the database (the control plane), as
``modelport monitor report`` builds it locally; the CLI uses it when
``MODELPORT_REGISTRY_URL`` is set.

The body is the report itself (one self-contained HTML page, or its JSON twin); the
``X-Modelport-Report`` header carries the summary the CLI prints (JSON, ASCII).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from modelport.domain.refs import ModelRef
from modelport.errors import InvalidRequestError, UnsupportedOperationError
from modelport.server.http.access import Access
from modelport.server.http.asgi import JSON, Receive, Scope
from modelport.server.http.endpoint import Reply
from modelport.server.http.registry_endpoint import RegistryEndpoint, last, query

REPORT_HEADER = b"x-modelport-report"
HTML = b"text/html; charset=utf-8"
_ACCEPTED = ("version", "alias", "since", "until", "format", "method", "threshold")
_TEXT = {"type": "string"}


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": _TEXT}  # fmt: skip


class ApiMonitoringReport(RegistryEndpoint):
    """GET /api/monitoring/{model}/report?version=|alias=&since=&until=&format=html|json
    &method=COLUMN=METHOD&threshold=COLUMN=VALUE."""

    access = Access(("read",), "model")
    openapi: ClassVar[dict[str, Any]] = {
        "get": {
            "summary": "A version's monitoring report (what `modelport monitor report` writes)",
            "parameters": [
                {"name": "model", "in": "path", "required": True, "schema": _TEXT},
                _query("version", "The version number (default: the latest version)."),
                _query("alias", "An alias or stage instead of a number: production."),
                _query(
                    "since",
                    "Start: a duration back from now (30d) or an ISO-8601 time (default 7d).",
                ),
                _query("until", "End, in the same forms (default: now)."),
                _query("format", "html (default) or json."),
                _query("method", "COLUMN=METHOD, a column's drift test (repeatable)."),
                _query("threshold", "COLUMN=VALUE, a column's drift threshold (repeatable)."),
            ],
            "responses": {
                "200": {
                    "description": "the report; the X-Modelport-Report header has its summary",
                    "content": {"text/html": {"schema": _TEXT}, "application/json": {}},
                },
                **{
                    str(code): {
                        "description": "error",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    }
                    for code in (400, 404, 501)
                },
            },
        }
    }

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        from modelport.monitoring.drift.selection import parse_options
        from modelport.monitoring.report import render
        from modelport.monitoring.report.versions import report_summary, version_report
        from modelport.monitoring.windows import parse_since

        log_uri = self.context.prediction_log_uri
        if log_uri is None:
            raise UnsupportedOperationError("this server reads no prediction log")
        params = query(scope, _ACCEPTED)
        ref = _ref(str(scope["path_params"]["model"]), params)
        fmt = last(params, "format") or "html"
        if fmt not in ("html", "json"):
            raise InvalidRequestError(f"format must be html or json, not {fmt!r}", field="format")
        options = parse_options(_pairs(params, "method"), _pairs(params, "threshold"))
        now = datetime.now(UTC)
        until_text = last(params, "until")
        window = (
            parse_since(last(params, "since") or "7d", now, field="since"),
            parse_since(until_text, now, field="until") if until_text else now,
        )
        built = await self.call(
            scope,
            lambda registry: version_report(
                registry, log_uri, ref, window, drift_options=options, now=now
            ),
        )
        summary = json.dumps(report_summary(built), ensure_ascii=True, separators=(",", ":"))
        return Reply(
            200,
            render(built, fmt).encode("utf-8"),
            JSON if fmt == "json" else HTML,
            ((REPORT_HEADER, summary.encode("ascii")),),
        )


def _ref(model: str, params: Mapping[str, list[str]]) -> ModelRef:
    version, alias = last(params, "version"), last(params, "alias")
    if version is not None and alias is not None:
        raise InvalidRequestError("give version or alias, not both", field="alias")
    if version is None:
        return ModelRef(model, alias=alias or None)
    if not version.isdigit() or int(version) < 1:
        raise InvalidRequestError(
            f"version must be a positive whole number, not {version!r}", field="version"
        )
    return ModelRef(model, version=int(version))


def _pairs(params: Mapping[str, list[str]], name: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in params.get(name, []):
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise InvalidRequestError(f"{name} must be COLUMN=VALUE, not {value!r}", field=name)
        pairs[key] = rest
    return pairs
