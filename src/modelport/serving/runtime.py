"""The set of served models: loading at start, lookup per request, hot swap, draining.

Each served name has one route: the version that answers it and the target that
reaches it (the version wrapped by ``wrap``: the per-version metrics recorder today,
routers and loggers as they come; see ``serving.target``). ``hold`` is the one call
both protocol adapters make (``hold``, then the target's ``infer``). When a
followed alias (``churn@production``) moves in the registry, the new version is
loaded and warmed beside the old one in a background thread, then the route switches
to it in one step on the event loop, and the old version finishes its queued requests
before it is released. A version that fails to load or warm never replaces a working
one: the old one keeps serving, the failure is logged and counted, and that version
is not tried again until the alias moves on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from modelport.errors import (
    ModelNotFoundError,
    ModelNotReadyError,
    VersionNotFoundError,
)
from modelport.serving.batcher import BatchObserver
from modelport.serving.loader import ModelLoader
from modelport.serving.served import ServedModel, ServeOptions, describe_failure
from modelport.serving.sources import ModelSource
from modelport.serving.target import InferenceTarget

logger = logging.getLogger(__name__)

ObserverFactory = Callable[[ServedModel], BatchObserver]
TargetWrapper = Callable[[ServedModel], InferenceTarget]
"""Builds the target a route calls around a newly loaded version (bootstrap wires it)."""


class LoadEvents:
    """Where the runtime reports loads and swaps (metrics); the default records nothing."""

    def loaded(self, served: ServedModel, kind: str) -> None:
        """``served`` is ready after a ``start`` or ``swap`` load."""

    def failed(self, source: ModelSource, kind: str, version: int | None, reason: str) -> None:
        """Loading ``version`` of ``source`` failed."""

    def retired(self, served: ServedModel) -> None:
        """``served`` no longer serves."""


class HeldTarget:
    """A route's target, with the version it reaches held while the ``with`` block runs."""

    __slots__ = ("_served", "_target")

    def __init__(self, served: ServedModel, target: InferenceTarget) -> None:
        self._served = served
        self._target = target

    def __enter__(self) -> InferenceTarget:
        self._served.acquire()
        return self._target

    def __exit__(self, *exc_info: object) -> None:
        self._served.release()


@dataclass
class Route:
    """One served name and the version answering it."""

    source: ModelSource
    current: ServedModel | None = None
    target: InferenceTarget | None = None  # reaches ``current``; switched with it
    error: str | None = None
    failed_version: int | None = None
    swapping: bool = False
    retiring: set[ServedModel] = field(default_factory=set)


class ModelRuntime:
    """All served models of one worker process."""

    def __init__(
        self,
        sources: Iterable[ModelSource],
        loader: ModelLoader,
        options_for: Callable[[str], ServeOptions],
        *,
        observer_for: ObserverFactory,
        wrap: TargetWrapper | None = None,
        events: LoadEvents | None = None,
        poll_interval_s: float = 2.0,
    ) -> None:
        self._routes = {source.name: Route(source) for source in sources}
        self._names = sorted(self._routes)
        self._loader = loader
        self._options_for = options_for
        self._observer_for = observer_for
        self._wrap: TargetWrapper = wrap or (lambda served: served)
        self._events = events or LoadEvents()
        self._poll_interval = poll_interval_s
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="model-loader")
        self._draining = False
        self._watcher: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- lookups

    @property
    def ready(self) -> bool:
        """Every model is loaded and the server is not draining."""
        return not self._draining and all(r.current is not None for r in self._routes.values())

    @property
    def draining(self) -> bool:
        """Whether shutdown has begun."""
        return self._draining

    @property
    def names(self) -> list[str]:
        """Every served name, sorted."""
        return self._names

    def routes(self) -> list[Route]:
        """Every route, sorted by name."""
        return [self._routes[name] for name in self._names]

    def serves(self, name: str) -> bool:
        """Whether ``name`` is one of the served names."""
        return name in self._routes

    def hold(self, name: str, version: str | None = None) -> HeldTarget:
        """The target answering ``name`` (and ``version``, when the client asked for one),
        for a ``with`` block: the call both protocol adapters make as a request arrives,
        reading and decoding its body inside the block, then awaiting the target's
        ``infer``. A swap that happens meanwhile retires the version picked here only once
        the block is over. Unknown names and versions, and routes not ready, raise here."""
        route = self._routes.get(name)
        if route is None:
            raise ModelNotFoundError(f"model {name!r} is not served here", model=name)
        served = self._current(route, name, version)
        target = route.target
        assert target is not None  # set together with ``current``
        return HeldTarget(served, target)

    def get(self, name: str, version: str | None = None) -> ServedModel:
        """The model answering ``name`` (and ``version``, when given)."""
        route = self._routes.get(name)
        if route is None:
            raise ModelNotFoundError(f"model {name!r} is not served here", model=name)
        return self._current(route, name, version)

    def _current(self, route: Route, name: str, version: str | None) -> ServedModel:
        # While draining, requests that still arrive (on open connections, or during the
        # drain delay) are served: the models stay loaded until the server stops.
        served = route.current
        if served is None:
            reason = f": {route.error}" if route.error else ""
            raise ModelNotReadyError(f"model {name!r} is not ready{reason}", model=name)
        if version is not None and version != served.version_label:
            raise VersionNotFoundError(
                f"model {name!r} version {version} is not served here (serving version "
                f"{served.version_label or 'unversioned'})",
                model=name,
            )
        return served

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load every model; raise the first failure (the server cannot start without them)."""
        await asyncio.gather(*(self._load_route(route) for route in self._routes.values()))
        self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="watcher")

    async def _load_route(self, route: Route) -> None:
        loop = asyncio.get_running_loop()
        try:
            version = route.source.version  # pinned at start-up, or None: ask the registry
            served = await loop.run_in_executor(self._pool, self._prepare, route.source, version)
        except Exception as exc:
            route.error = describe_failure(exc)
            self._events.failed(route.source, "start", None, route.error)
            raise
        self._activate(route, served, "start")

    def _prepare(self, source: ModelSource, version: int | None) -> ServedModel:
        """Resolve, load, verify and warm one version (in a loading thread)."""
        if version is None:
            version = self._loader.current_version(source)
        loaded = self._loader.load(source, version)
        try:
            served = ServedModel(source, loaded, version, self._options_for(source.name))
            served.warm()
        except BaseException:
            loaded.close()
            raise
        return served

    def _activate(self, route: Route, served: ServedModel, kind: str) -> None:
        served.start(self._observer_for(served))
        target = self._wrap(served)
        previous, route.current = route.current, served  # the switch: one step on the loop
        route.target = target
        route.error = None
        self._events.loaded(served, kind)
        logger.info(
            "serving %s version %s (%s)",
            served.name,
            served.version_label or "-",
            served.runtime,
            extra={"model": served.name, "version": served.version_label},
        )
        if previous is not None:
            route.retiring.add(previous)
            asyncio.get_running_loop().create_task(self._retire(route, previous))

    async def _retire(self, route: Route, served: ServedModel) -> None:
        try:
            await served.retire()
        finally:
            route.retiring.discard(served)
            self._events.retired(served)

    # ---------------------------------------------------------------- hot swap

    async def refresh(self) -> None:
        """Check every followed alias once and swap the routes whose version moved."""
        await asyncio.gather(
            *(self._refresh_route(r) for r in self._routes.values() if r.source.follows_registry)
        )

    async def _refresh_route(self, route: Route) -> None:
        if route.swapping or self._draining:
            return
        loop = asyncio.get_running_loop()
        try:
            version = await loop.run_in_executor(
                self._pool, self._loader.current_version, route.source
            )
        except Exception as exc:  # the registry is down or the alias was removed
            logger.warning(
                "cannot check %s: %s", route.source.describe(), describe_failure(exc),
                extra={"model": route.source.name},
            )  # fmt: skip
            return
        current = route.current.version if route.current is not None else None
        if version in (current, route.failed_version):
            return
        await self._swap(route, version)

    async def _swap(self, route: Route, version: int | None) -> None:
        route.swapping = True
        loop = asyncio.get_running_loop()
        try:
            served = await loop.run_in_executor(self._pool, self._prepare, route.source, version)
        except Exception as exc:
            route.failed_version = version
            reason = describe_failure(exc)
            self._events.failed(route.source, "swap", version, reason)
            logger.error(
                "version %s of %s failed to load; version %s keeps serving: %s",
                version, route.source.name,
                route.current.version_label if route.current else "-", reason,
                extra={"model": route.source.name},
            )  # fmt: skip
            return
        finally:
            route.swapping = False
        route.failed_version = None
        if self._draining:
            await served.retire()
            return
        self._activate(route, served, "swap")

    async def _watch(self) -> None:
        while not self._draining:
            await asyncio.sleep(self._poll_interval)
            await self.refresh()

    # ---------------------------------------------------------------- shutdown

    def begin_drain(self) -> None:
        """From now on: not ready, no new requests, no swaps."""
        self._draining = True

    async def close(self) -> None:
        """Finish queued requests and release every model."""
        self.begin_drain()
        if self._watcher is not None:
            self._watcher.cancel()
        models = [r.current for r in self._routes.values() if r.current is not None]
        models += [m for r in self._routes.values() for m in r.retiring]
        await asyncio.gather(*(m.retire() for m in models), return_exceptions=True)
        self._pool.shutdown(wait=False)
        self._loader.close()
