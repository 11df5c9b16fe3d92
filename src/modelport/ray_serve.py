"""Serving on Ray Serve: the server's ASGI application as a Ray Serve deployment.

Each replica is one Ray actor that builds the same application a ``modelport serve``
worker builds (``bootstrap.build_server_app``) and runs it behind ``serve.ingress``:
Ray Serve runs the application's ASGI lifespan in the replica (startup loads the
models and starts following the registry; shutdown, after Ray's graceful wait for the
requests in flight, closes the runtime and writes what the prediction log still
holds). Batching happens inside each replica, as in a worker; Ray's HTTP proxy spreads
the requests over the replicas.

Only settings and model sources travel to the replicas, as JSON-ready dicts: each
replica reads the registry and the artifact store itself (so on a cluster of several
machines both must be shared: PostgreSQL and an object store), and each follows the
aliases and deployments it serves on its own, every ``serve.poll_interval_s``.

Ray is imported inside the functions that need it; a missing ``ray[serve]`` raises
``MissingDependencyError`` naming the extra ``rayserve``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelport.config import Settings
from modelport.errors import InvalidArgumentError, MissingDependencyError, UnavailableError
from modelport.serving.sources import ModelSource, check_unique, parse_source

if TYPE_CHECKING:
    from modelport.server.http.app import ServerApp

logger = logging.getLogger("modelport.server")

APP_NAME = "modelport"
DEPLOYMENT_NAME = "ModelportServer"
# Ray Serve's default (5 requests per replica) would starve modelport's batcher, which
# needs many requests waiting at once to fill a batch.
DEFAULT_MAX_ONGOING_REQUESTS = 256
EXTRA = "rayserve"


def require_serve() -> Any:
    """The ``ray.serve`` module, or ``MissingDependencyError`` naming the extra."""
    try:
        from ray import serve
    except ImportError as exc:  # ray itself, or one of serve's own dependencies
        raise MissingDependencyError(
            f"modelport ray serve needs Ray Serve ({exc}); install it with: "
            f"pip install 'modelport[{EXTRA}]'",
            package="ray[serve]",
            extra=EXTRA,
        ) from None
    return serve


def _ray() -> Any:
    """The ``ray`` module (untyped for mypy, as Ray's own annotations are partial)."""
    import ray

    return ray


class ModelportReplica:
    """One Ray Serve replica: modelport's server application, built in the replica.

    Wrapped by ``serve.ingress()`` without an app: Ray calls ``__serve_build_asgi_app__``
    after the constructor, in the replica, then runs the app's lifespan startup.
    The class has no ``__call__`` (``serve.ingress`` refuses classes that have one).
    """

    def __init__(self, settings: dict[str, Any], sources: list[dict[str, Any]]) -> None:
        self._settings = settings
        self._sources = sources
        self.server: ServerApp | None = None

    def __serve_build_asgi_app__(self) -> Any:
        """The ASGI app of this replica (``ServerApp.asgi``)."""
        from modelport.bootstrap import build_server_app

        settings = Settings.model_validate(self._settings)
        sources = [ModelSource.from_dict(source) for source in self._sources]
        index = _replica_rank()
        _log_to_stderr(index)
        self.server = build_server_app(
            settings,
            sources,
            worker_index=index,
            workers=1,  # Ray's proxy owns the connections; no recycling between workers
            on_ready=lambda: logger.info("replica %d serves %d model(s)", index, len(sources)),
            # Ray reports only that the lifespan failed: the reason goes to the replica's log.
            on_failed=lambda message: logger.error("replica %d cannot start: %s", index, message),
        )
        return self.server.asgi

    def check_health(self) -> None:
        """Ray Serve's health check: a replica whose app was not built is unhealthy."""
        if self.server is None:
            raise RuntimeError("the modelport server of this replica was not built")


def _log_to_stderr(index: int) -> None:
    """modelport's own lines (models served, swaps, failures) as the worker's JSON lines on
    the replica's stderr, which Ray keeps in its logs (and shows on the driver). Only
    the ``modelport`` logger: the rest of the process's logging is Ray's."""
    import os

    from modelport.server.process.logs import json_handler

    ours = logging.getLogger("modelport")
    if any(getattr(handler, _REPLICA_MARK, False) for handler in ours.handlers):
        return
    handler = json_handler(None, {"pid": os.getpid(), "replica": index})
    setattr(handler, _REPLICA_MARK, True)
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    ours.propagate = False  # Ray's root handlers, if any, would print each line twice


_REPLICA_MARK = "_modelport_replica"


def _replica_rank() -> int:
    """This replica's rank (0 for one of them): the one that keeps the prediction log
    compact and computes the live gauges, as worker 0 does under ``modelport serve``."""
    serve = require_serve()
    try:
        rank: Any = serve.get_replica_context().rank
    except Exception:  # outside a replica, or an older Ray without ranks
        return 0
    return int(getattr(rank, "rank", rank) or 0)


@dataclass(frozen=True)
class RayServeOptions:
    """How the deployment runs on Ray: replica count and size, requests per replica."""

    replicas: int = 1
    max_ongoing_requests: int = DEFAULT_MAX_ONGOING_REQUESTS
    replica_cpus: float = 1.0
    name: str = APP_NAME

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise InvalidArgumentError(
                f"--replicas must be at least 1, not {self.replicas}", field="replicas"
            )
        if self.max_ongoing_requests < 1:
            raise InvalidArgumentError(
                f"--max-ongoing-requests must be at least 1, not {self.max_ongoing_requests}",
                field="max_ongoing_requests",
            )
        if self.replica_cpus < 0:
            raise InvalidArgumentError(
                f"--replica-cpus must be 0 or more, not {self.replica_cpus}",
                field="replica_cpus",
            )


def plan_sources(settings: Settings, models: Sequence[str]) -> list[ModelSource]:
    """The sources the replicas serve, checked here on the driver first: a reference
    that names nothing fails now, with its message, not in every replica.

    The replicas get the references unpinned (each resolves and follows them on its
    own, from the shared registry); a bare name that is a deployment serves it.
    """
    from modelport.bootstrap import resolve_sources

    if not models:
        raise InvalidArgumentError("nothing to serve: name at least one model", field="model")
    sources = check_unique(parse_source(model) for model in models)
    resolved = resolve_sources(settings, sources)
    return [
        found if found.deployment is not None else source
        for found, source in zip(resolved, sources, strict=True)
    ]


def build_application(
    settings: Settings, sources: Sequence[ModelSource], options: RayServeOptions
) -> Any:
    """The Ray Serve application (``Deployment.bind(...)``) serving ``sources``."""
    serve = require_serve()
    ingress = serve.ingress()(ModelportReplica)
    deployment = serve.deployment(
        ingress,
        name=DEPLOYMENT_NAME,
        num_replicas=options.replicas,
        max_ongoing_requests=options.max_ongoing_requests,
        ray_actor_options={"num_cpus": options.replica_cpus},
        # Ray waits this long for the requests in flight before it stops a replica.
        graceful_shutdown_timeout_s=settings.serve.drain_timeout_s,
    )
    return deployment.bind(
        settings.model_dump(mode="json"), [source.to_dict() for source in sources]
    )


@dataclass
class RayServeRun:
    """A running deployment: ``url`` answers; ``stop`` removes what ``start`` made."""

    url: str
    name: str
    started_ray: bool
    models: list[str] = field(default_factory=list)
    _stopped: bool = False

    def stop(self) -> None:
        """Delete the application; shut Serve and Ray down when ``start`` started Ray
        (on a cluster it joined, other applications keep running)."""
        if self._stopped:
            return
        self._stopped = True
        ray, serve = _ray(), require_serve()
        try:
            if self.started_ray:
                serve.shutdown()
            else:
                serve.delete(self.name)
        finally:
            if self.started_ray:
                ray.shutdown()


def start(
    settings: Settings,
    models: Sequence[str],
    options: RayServeOptions,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    warn: Callable[[str], None] = logger.warning,
) -> RayServeRun:
    """Deploy ``models`` on Ray Serve and return once every replica serves.

    Joins the Ray at ``address`` (``ray://head:10001``, ``auto``), or the Ray this
    process already joined, or else starts a local one (which ``stop`` shuts down).
    Ray Serve's HTTP proxy binds ``serve.host`` and ``serve.port`` (where Serve runs
    already, on a cluster joined, its proxy keeps the address it has). ``num_cpus``
    sizes a local Ray (default: every core). ``warn`` receives the warning of a server
    that other machines reach without API keys.
    """
    serve, ray = require_serve(), _ray()
    host, port = settings.serve.host, settings.serve.port
    if port == 0:
        raise InvalidArgumentError(
            "Ray Serve needs a fixed port: give --port (0, any free port, is not supported)",
            field="serve.port",
        )
    warning = check_auth(settings)
    if warning is not None:
        warn(warning)
    sources = plan_sources(settings, models)
    app = build_application(settings, sources, options)
    started_ray = False
    if not ray.is_initialized():
        # "local" starts a Ray of our own even where RAY_ADDRESS names a cluster.
        ray.init(address=address or "local", num_cpus=num_cpus if address is None else None)
        started_ray = address is None
    run = RayServeRun(
        url=_url(host, port),
        name=options.name,
        started_ray=started_ray,
        models=[source.name for source in sources],
    )
    # Ray's access log (a line per request from the proxy and the replica, tailed to the
    # driver) costs more than the request itself: on only with --access-log, as for serve.
    logging = {"enable_access_log": settings.serve.access_log}
    try:
        serve.start(http_options={"host": host, "port": port}, logging_config=logging)
        serve.run(app, name=options.name, route_prefix="/", logging_config=logging)
    except RuntimeError as exc:  # Ray gave up on replicas that failed at their start
        run.stop()
        raise UnavailableError(
            f"the Ray Serve replicas of {options.name!r} could not start ({exc}); each "
            "logged why, in a line 'replica N cannot start: ...' (shown above unless Ray's "
            "logs go elsewhere)"
        ) from None
    except BaseException:
        run.stop()
        raise
    return run


def check_auth(settings: Settings) -> str | None:
    """Refuse, before any replica starts, a proxy address that requires API keys when
    none is usable (``[security] auth = "auto"`` requires them off loopback, as for
    ``modelport serve``); the warning of one serving other machines without keys."""
    from modelport.bootstrap import build_server_auth

    auth = build_server_auth(settings)
    if auth.keys is not None:
        auth.keys.stop()  # each replica reads the keys itself
    return auth.warning


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104 (display only)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"
