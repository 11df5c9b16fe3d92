"""The control plane's dashboard, served by ``modelport ui`` at ``/ui/``.

Server-rendered pages (Jinja2 templates in ``templates/``, one stylesheet in
``static/``, charts as inline SVG; nothing fetched from another site): Models (search,
versions, lineage, signature, acceleration, history), Deployments (arms, live numbers,
rollout, actions), Monitoring (drift, live metrics, alerts) and Audit. It reads through
the services the REST routes use, in the same worker, never over HTTP to itself.

``build_dashboard(context)`` returns the ASGI app ``bootstrap`` mounts;
``HARDENING`` are the security headers its answers carry instead of the API's.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles

from modelport.server.http.asgi import ASGIApp
from modelport.server.http.endpoint import ServerContext
from modelport.ui.deployments import ControllerFactory
from modelport.ui.pages import Pages
from modelport.ui.web import Web

# Pages load their own stylesheet and nothing else: no script, no other origin; forms
# post only here; no page may be framed.
HARDENING = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"referrer-policy", b"same-origin"),
)


def build_dashboard(
    context: ServerContext, *, controllers: ControllerFactory | None = None
) -> ASGIApp:
    """The dashboard over ``context`` (its registry, keys, prediction log and alert
    history); ``controllers`` builds a rollout controller over a registry, for the
    pause and resume actions (None: not offered)."""
    web = Web(context)
    pages = Pages(web, controllers)
    page, action = web.page, web.action
    static = StaticFiles(directory=Path(__file__).parent / "static")
    routes = [
        Route("/", page(pages.home)),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", action(pages.logout), methods=["POST"]),
        Route("/models", page(pages.models)),
        Route("/models/{name}", page(pages.model)),
        Route("/deployments", page(pages.deployments)),
        Route("/deployments/{name}", page(pages.deployment)),
        Route("/deployments/{name}/confirm", page(pages.confirm)),
        Route("/deployments/{name}/{action}", action(pages.act), methods=["POST"]),
        Route("/monitoring", page(pages.monitoring_index)),
        Route("/monitoring/{name}", page(pages.monitoring)),
        Route("/audit", page(pages.audit)),
        Mount("/static", app=static),
    ]
    return Router(routes=routes, redirect_slashes=False, default=web.not_found)


__all__ = ["HARDENING", "build_dashboard"]
