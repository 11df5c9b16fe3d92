"""The dashboard's plumbing: sign-in, CSRF, rendering and error pages.

Every page goes through ``Web.page`` (who is asking, a signed-out session refused;
sign-in when the server checks keys) and every action through ``Web.action`` (the
same, then the CSRF token of its form, then the handler). Registry and log reads run
in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from modelport.errors import ModelportError, NotFoundError, PermissionDeniedError
from modelport.registry.service import RegistryService
from modelport.server.http.asgi import Receive, Scope, Send
from modelport.server.http.endpoint import ServerContext
from modelport.server.http.errors import status_of
from modelport.ui import charts, revocations
from modelport.ui.session import CSRF_COOKIE, SESSION_COOKIE, SESSION_S, Sessions, Viewer

logger = logging.getLogger("modelport.ui")

MAX_FORM_BYTES = 16 * 1024
SEE_OTHER = 303  # after a POST, the browser GETs the page it is sent to
T = TypeVar("T")
Handler = Callable[[Request, Viewer], Awaitable[Response]]


def environment() -> jinja2.Environment:
    """The templates, escaping everything they are given."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("modelport.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the page's test
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, num=_num, pct=_pct, ms=_ms)
    env.globals.update(metric_line=charts.metric_line, traffic_split=charts.traffic_split)
    return env


class Web:
    """What the pages share: the server context, sessions and templates."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.sessions = Sessions(context.keys)
        self.templates = environment()
        self.static_version = _static_version()

    async def viewer(self, request: Request) -> Viewer | None:
        """Who sends this request: None without a valid session, or with one signed
        out (on any instance: the metadata database says)."""
        viewer = self.sessions.viewer(request.cookies)
        if viewer is None or viewer.session is None:
            return viewer
        get = self.context.registry
        if get is None:
            return viewer
        signed_out = await asyncio.to_thread(lambda: revocations.revoked(get(), viewer))
        return None if signed_out else viewer

    async def registry(self, viewer: Viewer, call: Callable[[RegistryService], T]) -> T:
        """``call`` on the registry in a thread, acting as the viewer's key."""
        get = self.context.registry
        if get is None:
            raise ModelportError("this server has no registry")

        def run() -> T:
            registry = get()
            if viewer.principal is not None:
                registry = registry.acting_as(viewer.principal.actor)
            return call(registry)

        return await asyncio.to_thread(run)

    def render(
        self,
        request: Request,
        viewer: Viewer | None,
        template: str,
        status: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        """An HTML page (``no-store``: pages hold what a key may see)."""
        html = self.templates.get_template(template).render(
            base=request.scope.get("root_path", ""),
            static=f"{request.scope.get('root_path', '')}/static",
            static_version=self.static_version,
            viewer=viewer,
            auth=self.sessions.required,
            request_path=request.url.path,
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["cache-control"] = "no-store"
        if viewer is not None and viewer.new_csrf:
            self._cookie(request, response, CSRF_COOKIE, viewer.csrf, max_age=None)
        return response

    def error(self, request: Request, viewer: Viewer | None, exc: Exception) -> HTMLResponse:
        """The page for a refused or failed request, with the status the API gives."""
        status = status_of(exc)[0]
        if isinstance(exc, ModelportError):
            message = exc.message
        else:
            logger.exception("dashboard page %s failed", request.url.path)
            message = "Something went wrong on the server; the log has the details."
        return self.render(request, viewer, "error.html.j2", status, message=message)

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The page for a path the dashboard does not have."""
        request = Request(scope, receive)
        viewer = await self.viewer(request)
        path = request.url.path
        exc = NotFoundError(f"the dashboard has no page {path}")
        await self.error(request, viewer, exc)(scope, receive, send)

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A GET page: the viewer (or the sign-in page), then ``handler``."""

        async def endpoint(request: Request) -> Response:
            viewer = await self.viewer(request)
            if viewer is None:
                return self._to_login(request)
            try:
                return await handler(request, viewer)
            except Exception as exc:
                return self.error(request, viewer, exc)

        return endpoint

    def action(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A POST action: the viewer, the form's CSRF token, then ``handler`` (which
        reads the form with ``form``)."""

        async def endpoint(request: Request) -> Response:
            viewer = await self.viewer(request)
            if viewer is None:
                return self._to_login(request)
            try:
                form = await self.form(request)
                if not self.sessions.csrf_ok(viewer, form.get("csrf")):
                    raise PermissionDeniedError(
                        "the form's CSRF token is missing or not this session's: reload the "
                        "page and try again",
                        scope="csrf",
                    )
                request.state.form = form
                return await handler(request, viewer)
            except Exception as exc:
                return self.error(request, viewer, exc)

        return endpoint

    async def form(self, request: Request) -> dict[str, str]:
        """The posted form's fields (last value of each), at most ``MAX_FORM_BYTES``."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                from modelport.errors import PayloadTooLargeError

                raise PayloadTooLargeError(f"a form is at most {MAX_FORM_BYTES} bytes")
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[-1] for key, values in fields.items()}

    def redirect(self, request: Request, path: str) -> RedirectResponse:
        """To ``path`` under the dashboard, as a GET."""
        return RedirectResponse(request.scope.get("root_path", "") + path, SEE_OTHER)

    def sign_in(self, request: Request, response: Response, cookie: str) -> None:
        """Store the session cookie."""
        self._cookie(request, response, SESSION_COOKIE, cookie, max_age=SESSION_S)

    async def sign_out(self, request: Request, response: Response, viewer: Viewer) -> None:
        """Revoke the viewer's session in the metadata database (every instance refuses
        its cookie from now on, copies too), then drop the cookie."""
        await self.registry(viewer, lambda registry: revocations.revoke(registry, viewer))
        secure = request.url.scheme == "https"
        path = request.scope.get("root_path", "") + "/"
        response.delete_cookie(
            SESSION_COOKIE, path=path, secure=secure, httponly=True, samesite="strict"
        )

    def _cookie(
        self, request: Request, response: Response, name: str, value: str, *, max_age: int | None
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=request.scope.get("root_path", "") + "/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )

    def _to_login(self, request: Request) -> RedirectResponse:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            here = request.scope.get("root_path", "") + "/"
        return self.redirect(request, "/login?next=" + quote(here, safe=""))


def query(request: Request) -> Mapping[str, str]:
    """The query string's parameters (the last value of each)."""
    return dict(request.query_params.items())


def _static_version() -> str:
    """A short fingerprint of the static files, so their URLs change with them and the
    browser may cache them for long."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((Path(__file__).parent / "static").iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def _when(moment: Any) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, str):
        return moment.replace("T", "\N{NO-BREAK SPACE}")[:16]
    return str(moment.strftime("%Y-%m-%d\N{NO-BREAK SPACE}%H:%M"))


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):.{digits}g}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


def _ms(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1f} ms"
