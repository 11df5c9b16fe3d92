"""The set of served models: loading at start, lookup per request, hot swap, draining.

Each served name has one route (``serving.route``): the version that answers it and the
target that reaches it (the version wrapped by ``wrap``: the per-version metrics
recorder today, routers and loggers as they come; see ``serving.target``). ``hold`` is
the call both protocol adapters make, then they await the target's ``infer``.

When a followed alias (``churn@production``) moves in the registry (``serving.following``),
the new version is loaded and warmed beside the old one in a background thread, then
the route switches to it in one step on the event loop, and the old version finishes
its queued requests before it is released. The old version keeps serving, and the new
one is not tried again until the alias moves on, when the new one:

* fails to load or to answer its input example, or its model signature does not verify
  where ``[signing] require_signed`` asks for one (``serving.loader``) (logged,
  counted); or
* would break a current client (``serving.compatibility``: an input removed or
  retyped, a new required input, an output's datatype changed, no signature): the
  swap is refused, logged once and counted, unless the model's settings allow a
  signature change.

Either way the route says why it lags (``/api/models``, metrics).

A name that serves a registry deployment is answered by a router over its arms, and
follows the deployment's revisions the same way (``serving.deployed``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from modelport.errors import (
    ModelNotFoundError,
    ModelNotReadyError,
    VersionNotFoundError,
)
from modelport.serving.batch_observer import BatchObserver
from modelport.serving.compatibility import InterfaceChange, compare_interfaces
from modelport.serving.deployed import (
    ArmWrapper,
    DeploymentFollower,
    DeploymentLookup,
    ShadowSinkFactory,
)
from modelport.serving.following import Follower
from modelport.serving.load_events import LoadEvents
from modelport.serving.loader import ModelLoader
from modelport.serving.route import HeldTarget, Lag, Route
from modelport.serving.routing.shadow import ShadowQueue
from modelport.serving.served import ServedModel, ServeOptions, describe_failure
from modelport.serving.sources import ModelSource
from modelport.serving.target import ArmLabel, InferenceRequest, InferenceTarget

logger = logging.getLogger(__name__)

ObserverFactory = Callable[[ServedModel], BatchObserver]
TargetWrapper = Callable[[ServedModel], InferenceTarget]
"""Builds the target a route calls around a newly loaded version (bootstrap wires it)."""


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
        wrap_arm: ArmWrapper | None = None,
        events: LoadEvents | None = None,
        poll_interval_s: float = 2.0,
        deployments: DeploymentLookup | None = None,
        on_shadow_drop: Callable[[str, str], None] | None = None,
        shadow_sink: ShadowSinkFactory = ShadowQueue,
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
        self._follower = Follower(
            self._routes.values(),
            loader.current_version,
            self._swap,
            pool=self._pool,
            events=self._events,
            poll_interval_s=poll_interval_s,
        )
        self._draining = False
        self._watcher: asyncio.Task[None] | None = None
        self._deployment_watcher: asyncio.Task[None] | None = None
        wrap_version = self._wrap

        def arm_target(served: ServedModel, label: ArmLabel) -> InferenceTarget:
            return wrap_version(served)

        self._deployments = DeploymentFollower(
            self._routes.values(),
            deployments,
            prepare=self._prepare,
            start=self._start_version,
            retire=self._retire,
            wrap=wrap_arm or arm_target,
            pool=self._pool,
            events=self._events,
            registry=self._follower,
            on_shadow_drop=on_shadow_drop or (lambda deployment, arm: None),
            draining=lambda: self._draining,
            refusal=_refusal,
            shadow_sink=shadow_sink,
        )
        self._on_shadow_drop = on_shadow_drop or (lambda deployment, arm: None)

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

    @property
    def registry_reachable(self) -> bool | None:
        """Whether the registry answered the last check (None: no route follows it)."""
        follows = self._follower.follows or self._deployments.follows
        return self._follower.registry_reachable if follows else None

    @property
    def registry_error(self) -> str | None:
        """Why the registry could not be reached, while it cannot."""
        return self._follower.registry_error

    @property
    def registry_unreachable_since(self) -> datetime | None:
        """Since when the registry cannot be reached."""
        return self._follower.unreachable_since

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
        router = route.router
        if router is not None:  # a deployment: hold every version its router may reach
            if version is not None:
                router = router.for_version(version) or router
            return HeldTarget(router, router)
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
        if version is not None and route.deployment is not None:
            for arm in route.deployment.live_arms:
                if str(arm.version) == version:
                    return route.arms[(arm.model, arm.version)]
            served_versions = ", ".join(str(arm.version) for arm in route.deployment.live_arms)
            raise VersionNotFoundError(
                f"deployment {name!r} has no live arm serving version {version} (its live "
                f"arms serve {served_versions})",
                model=name,
            )
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
        if self._follower.follows or self._deployments.follows:
            self._follower.reached()  # the start-up loads asked it
        loop = asyncio.get_running_loop()
        self._watcher = loop.create_task(
            self._follower.run(lambda: self._draining), name="follower"
        )
        if self._deployments.follows:
            self._deployment_watcher = loop.create_task(
                self._deployments.run(self._poll_interval), name="deployments"
            )

    async def _load_route(self, route: Route) -> None:
        if route.source.deployment is not None:
            await self._deployments.load(route)
            return
        loop = asyncio.get_running_loop()
        try:
            version = route.source.version  # pinned at start-up, or None: ask the registry
            served = await loop.run_in_executor(self._pool, self._prepare, route.source, version)
        except Exception as exc:
            route.error = describe_failure(exc)
            self._events.failed(route.source, "start", None, route.error)
            raise
        route.wanted_version = served.version
        self._activate(route, served, "start")
        self._events.followed(route)

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
        try:
            served.reference_stats = self._loader.reference_stats(source, version, loaded)
        except Exception as exc:  # drift needs them, serving does not: say so, serve
            logger.warning(
                "no reference statistics for %s version %s (drift is off for it): %s",
                source.name, version, describe_failure(exc),
            )  # fmt: skip
        return served

    def _start_version(self, served: ServedModel, kind: str) -> None:
        """Start batching for a newly loaded version."""
        served.start(self._observer_for(served))
        self._events.loaded(served, kind)

    def _activate(self, route: Route, served: ServedModel, kind: str) -> None:
        self._start_version(served, kind)
        target = self._wrap(served)
        previous, route.current = route.current, served  # the switch: one step on the loop
        route.target = target
        route.error = None
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
        """Check every followed reference and deployment once (those not backing off)
        and swap the routes whose version or revision moved."""
        await asyncio.gather(self._follower.check_all(), self._deployments.check_all())

    async def _swap(self, route: Route, version: int | None) -> None:
        route.swapping = True
        loop = asyncio.get_running_loop()
        try:
            served = await loop.run_in_executor(self._pool, self._prepare, route.source, version)
        except Exception as exc:
            self._not_loaded(route, version, describe_failure(exc))
            return
        finally:
            route.swapping = False
        if self._draining:
            await served.retire()
            return
        change = _change(route.current, served)
        if change.breaking and not served.options.allow_signature_change:
            await served.retire()
            self._refuse(route, version, change)
            return
        if change.breaking:
            logger.warning(
                "switching %s to version %s although it changes the API (allowed by the "
                "settings): %s", route.source.name, version, change.describe(),
                extra={"model": route.source.name},
            )  # fmt: skip
        route.refused_version = None
        self._activate(route, served, "swap")
        route.mark_current()
        self._events.followed(route)

    def _not_loaded(self, route: Route, version: int | None, reason: str) -> None:
        route.refused_version = version
        self._events.failed(route.source, "swap", version, reason)
        route.mark_stale(Lag.LOAD_FAILED, reason, version)
        self._events.followed(route)
        logger.error(
            "version %s of %s failed to load; version %s keeps serving: %s",
            version, route.source.name,
            route.current.version_label if route.current else "-", reason,
            extra={"model": route.source.name},
        )  # fmt: skip

    def _refuse(self, route: Route, version: int | None, change: InterfaceChange) -> None:
        route.refused_version = version
        reason = f"it would break current clients: {change.describe()}"
        self._events.refused(route.source, version, reason)
        route.mark_stale(Lag.SWAP_REFUSED, reason, version)
        self._events.followed(route)
        name = route.source.name
        logger.warning(
            "version %s of %s is not served: %s. Version %s keeps serving. To switch anyway, "
            "set serve.models.%s.allow_signature_change = true or serve with "
            "--allow-signature-change", version, name, reason,
            route.current.version_label if route.current else "-", name,
            extra={"model": name},
        )  # fmt: skip

    # ---------------------------------------------------------------- shutdown

    def take_shadow_copy(self, deployment: str, arm: str, request: InferenceRequest) -> bool:
        """Answer a copy another process made for shadow arm ``arm`` of ``deployment``
        (sampled there), through this runtime's shadow queue; False when it was dropped:
        the arm is not (or not yet) served here, or the queue is full. Both are counted."""
        for route in self._routes.values():
            router, sink = route.router, route.shadows
            if router is None or sink is None or router.deployment != deployment:
                continue
            for shadow in router.shadow_arms:
                if shadow.name == arm:
                    return sink.offer(shadow, request)
        self._on_shadow_drop(deployment, arm)
        return False

    @property
    def shadow_backlog(self) -> int:
        """Shadow copies taken and not answered yet, over every route."""
        routes = self._routes.values()
        return sum(route.shadows.pending for route in routes if route.shadows is not None)

    def begin_drain(self) -> None:
        """From now on: not ready, no new requests, no swaps."""
        self._draining = True

    async def close(self) -> None:
        """Finish queued requests and release every model."""
        self.begin_drain()
        for watcher in (self._watcher, self._deployment_watcher):
            if watcher is not None:
                watcher.cancel()
        routes = self._routes.values()
        shadows = [r.shadows for r in routes if r.shadows is not None]
        await asyncio.gather(*(queue.close() for queue in shadows), return_exceptions=True)
        models = {id(m): m for r in routes for m in (r.current, *r.arms.values()) if m is not None}
        models.update((id(m), m) for r in routes for m in r.retiring)
        await asyncio.gather(*(m.retire() for m in models.values()), return_exceptions=True)
        self._pool.shutdown(wait=False)
        self._loader.close()


def _refusal(current: ServedModel | None, new: ServedModel) -> str | None:
    """Why ``new`` may not answer the clients of ``current`` (None: it may)."""
    change = _change(current, new)
    if change.breaking and not new.options.allow_signature_change:
        return change.describe()
    return None


def _change(current: ServedModel | None, new: ServedModel) -> InterfaceChange:
    """How the new version's interface differs from the served one's."""
    if current is None:
        return InterfaceChange()
    old, fresh = current.loaded.signature, new.loaded.signature
    return compare_interfaces(
        current.io,
        new.io,
        old_signed=old is not None,
        new_signed=fresh is not None,
        old_params=old.params if old is not None else None,
        new_params=fresh.params if fresh is not None else None,
    )
