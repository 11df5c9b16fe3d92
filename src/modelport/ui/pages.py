"""The dashboard's pages and actions: one handler per route, each reading through the
services the REST routes use and rendering one template."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from modelport.errors import (
    AuthenticationError,
    InvalidArgumentError,
    PermissionDeniedError,
    RateLimitedError,
)
from modelport.registry.service import RegistryService
from modelport.server.http.access import denied
from modelport.server.http.errors import status_of
from modelport.ui import deployments as deploy_view
from modelport.ui import models as model_view
from modelport.ui import monitoring as monitor_view
from modelport.ui.audit import AUDIT_COLUMNS, AUDIT_LIMIT, audit_rows
from modelport.ui.session import Viewer
from modelport.ui.tables import Column, paged
from modelport.ui.web import Web, query

DEPLOYMENT_COLUMNS = (
    Column("name", "Deployment", lambda d: d.name),
    Column("revision", "Revision", lambda d: d.revision),
    Column("updated", "Updated", lambda d: d.updated_at),
)


class Pages:
    """The handlers, over one ``Web``; ``controllers`` builds the rollout controller
    that pauses and resumes rollouts (None: those actions are not offered)."""

    def __init__(self, web: Web, controllers: deploy_view.ControllerFactory | None) -> None:
        self.web = web
        self.controllers = controllers

    # ------------------------------------------------------------------ sign-in

    async def login_form(self, request: Request) -> Response:
        """GET /login: the form asking for an API key."""
        web = self.web
        if not web.sessions.required:
            return web.redirect(request, "/models")
        # The login form carries a CSRF token too (double submit): no other site can
        # sign a browser in with its own key.
        anonymous = web.sessions.anonymous(request.cookies)
        return web.render(request, anonymous, "login.html.j2", next=_next(request), failure=None)

    async def login(self, request: Request) -> Response:
        """POST /login: a session for the posted key, or the form again saying why not."""
        web = self.web
        if not web.sessions.required:
            return web.redirect(request, "/models")
        anonymous = web.sessions.anonymous(request.cookies)
        form = await web.form(request)
        target = _safe_next(request, form.get("next"))
        client = request.client.host if request.client else "unknown"
        try:
            if not web.sessions.csrf_ok(anonymous, form.get("csrf")):
                raise PermissionDeniedError("The form expired: please try again.", scope="csrf")
            cookie = web.sessions.open(form.get("key", ""), client)
        except (AuthenticationError, RateLimitedError, PermissionDeniedError) as exc:
            failure = (
                "That key is not valid: it may be mistyped, revoked or expired."
                if isinstance(exc, AuthenticationError)
                else exc.message
            )
            status = status_of(exc)[0]
            return web.render(
                request, anonymous, "login.html.j2", status, next=target, failure=failure
            )
        response = web.redirect(request, target)
        web.sign_in(request, response, cookie)
        return response

    async def logout(self, request: Request, viewer: Viewer) -> Response:
        """POST /logout: revoke the session server-side and drop its cookie."""
        response = self.web.redirect(request, "/login")
        await self.web.sign_out(request, response, viewer)
        return response

    # ------------------------------------------------------------------ models

    async def home(self, request: Request, viewer: Viewer) -> Response:
        """GET /: the models."""
        return self.web.redirect(request, "/models")

    async def models(self, request: Request, viewer: Viewer) -> Response:
        """GET /models[?q=FILTER]: every model, or the versions the filter matches."""
        params = query(request)
        text = params.get("q", "").strip()

        def read(registry: RegistryService) -> Any:
            readable = lambda name: viewer.may("read", name)  # noqa: E731
            if text:
                return model_view.search_rows(registry, text, readable)
            return model_view.model_rows(registry, readable)

        failure, rows = None, []
        try:
            rows = await self.web.registry(viewer, read)
        except InvalidArgumentError as exc:  # a filter that does not parse: say why
            failure = exc.message
        columns: tuple[Column, ...] = (
            model_view.VERSION_COLUMNS if text else model_view.MODEL_COLUMNS
        )
        page = paged(rows, params, columns, default="name", keep=("q",))
        return self.web.render(
            request,
            viewer,
            "models.html.j2",
            q=text,
            page=page,
            columns=columns,
            failure=failure,
            limit=model_view.SEARCH_LIMIT,
        )

    async def model(self, request: Request, viewer: Viewer) -> Response:
        """GET /models/{name}[?version=N]: a model's versions and one version's details."""
        name = request.path_params["name"]
        _require(viewer, "read", name)
        number = _int(query(request).get("version"))
        detail = await self.web.registry(viewer, lambda r: model_view.model_detail(r, name, number))
        series = model_view.metric_series(detail.versions)
        page = paged(
            detail.versions,
            query(request),
            model_view.VERSION_COLUMNS,
            default="version",
            descending=True,
            keep=("version",),
        )
        return self.web.render(
            request,
            viewer,
            "model.html.j2",
            detail=detail,
            series=series,
            page=page,
            version_column=model_view.VERSION_COLUMNS[1],
        )

    # ------------------------------------------------------------------ deployments

    async def deployments(self, request: Request, viewer: Viewer) -> Response:
        """GET /deployments: every deployment the viewer may read."""
        rows = await self.web.registry(
            viewer,
            lambda r: deploy_view.deployment_rows(r, lambda name: viewer.may("read", name)),
        )
        page = paged(rows, query(request), DEPLOYMENT_COLUMNS, default="name")
        return self.web.render(
            request, viewer, "deployments.html.j2", page=page, columns=DEPLOYMENT_COLUMNS
        )

    async def deployment(self, request: Request, viewer: Viewer) -> Response:
        """GET /deployments/{name}[?since=1h]: arms, numbers, rollout, history, actions."""
        name = request.path_params["name"]
        _require(viewer, "read", name)
        since = query(request).get("since") or "1h"
        log_uri = self.web.context.prediction_log_uri
        view = await self.web.registry(
            viewer, lambda r: deploy_view.deployment_view(r, log_uri, name, since)
        )
        return self.web.render(
            request,
            viewer,
            "deployment.html.j2",
            view=view,
            split=[(arm.name, arm.weight) for arm in view.deployment.live_arms],
            windows=deploy_view.WINDOWS,
            can_deploy=viewer.may("deploy", name),
            rollouts=self.controllers is not None,
            message=query(request).get("done"),
        )

    async def confirm(self, request: Request, viewer: Viewer) -> Response:
        """GET /deployments/{name}/confirm?action=...: what the action will do, and the
        button that does it."""
        name = request.path_params["name"]
        _require(viewer, "deploy", name)
        params = query(request)
        action = params.get("action", "")
        if action not in deploy_view.ACTIONS:
            raise InvalidArgumentError(f"unknown action {action!r}")
        deployment = await self.web.registry(viewer, lambda r: r.get_deployment(name))
        summary = deploy_view.describe_action(deployment, action, params)
        return self.web.render(
            request,
            viewer,
            "confirm.html.j2",
            deployment=deployment,
            action=action,
            summary=summary,
            fields={k: params.get(k, "") for k in ("arm", "weight") if params.get(k)},
        )

    async def act(self, request: Request, viewer: Viewer) -> Response:
        """POST /deployments/{name}/{action}: the confirmed action, then its page."""
        name, action = request.path_params["name"], request.path_params["action"]
        _require(viewer, "deploy", name)
        form: dict[str, str] = request.state.form
        controllers = self.controllers
        done = await self.web.registry(
            viewer, lambda r: deploy_view.act(r, controllers, name, action, form)
        )
        return self.web.redirect(request, f"/deployments/{quote(name)}?done={quote(done)}")

    # ------------------------------------------------------------------ monitoring

    async def monitoring_index(self, request: Request, viewer: Viewer) -> Response:
        """GET /monitoring: the models to choose from."""
        rows = await self.web.registry(
            viewer,
            lambda r: model_view.model_rows(r, lambda name: viewer.may("read", name)),
        )
        page = paged(rows, query(request), model_view.MODEL_COLUMNS, default="name")
        return self.web.render(request, viewer, "monitoring_index.html.j2", page=page)

    async def monitoring(self, request: Request, viewer: Viewer) -> Response:
        """GET /monitoring/{name}[?version=N&since=7d]: drift, live metrics, alerts."""
        name = request.path_params["name"]
        _require(viewer, "read", name)
        params = query(request)
        since = params.get("since") or "24h"
        number = _int(params.get("version"))
        context = self.web.context
        view = await self.web.registry(
            viewer,
            lambda r: monitor_view.monitoring_view(
                r, context.prediction_log_uri, context.alerts, name, number=number, since=since
            ),
        )
        return self.web.render(
            request, viewer, "monitoring.html.j2", view=view, windows=monitor_view.WINDOWS
        )

    # ------------------------------------------------------------------ audit

    async def audit(self, request: Request, viewer: Viewer) -> Response:
        """GET /audit[?model=&action=&actor=&since=]: the audit trail, filtered, paged."""
        params = query(request)
        failure, truncated = None, False
        rows: list[Any] = []
        try:
            rows, truncated = await self.web.registry(
                viewer, lambda r: audit_rows(r, params, lambda n: viewer.may("read", n))
            )
        except InvalidArgumentError as exc:
            failure = exc.message
        page = paged(
            rows,
            params,
            AUDIT_COLUMNS,
            default="time",
            descending=True,
            keep=("model", "action", "actor", "since"),
        )
        return self.web.render(
            request,
            viewer,
            "audit.html.j2",
            page=page,
            columns=AUDIT_COLUMNS,
            failure=failure,
            filters={k: params.get(k, "") for k in ("model", "action", "actor", "since")},
            limit=AUDIT_LIMIT,
            truncated=truncated,
        )


def _require(viewer: Viewer, action: str, name: str) -> None:
    """403 naming the scope unless the viewer may ``action`` on ``name``."""
    if viewer.principal is not None and not viewer.may(action, name):
        raise denied(viewer.principal, (action,), name)


def _int(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise InvalidArgumentError(f"version {text!r} is not a whole number", field="version")
    return int(text)


def _next(request: Request) -> str:
    return _safe_next(request, request.query_params.get("next"))


def _safe_next(request: Request, target: str | None) -> str:
    """Where to go after signing in: a page of this dashboard, never another site."""
    base = request.scope.get("root_path", "")
    if target and target.startswith(base + "/") and not target.startswith("//"):
        path = target[len(base) :]
        if not path.startswith(("//", "/\\")) and "/login" not in path:
            return path
    return "/models"
