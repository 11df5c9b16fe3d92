"""Serving registry deployments: loading their arms, and following their changes live.

A route whose source names a deployment (``ModelSource.deployment``) is answered by a
``DeploymentRouter`` over one target per arm. Every ``poll_interval_s`` the deployment
is read again; when its revision moved, the arm versions not loaded yet are loaded and
warmed in the loading threads (beside the ones serving), then the route switches to a
new router in one step on the event loop, and the versions no arm uses any more retire
once the requests that held them (and the shadow copies queued for them) are done. A
revision whose versions fail to load is not tried again: the route keeps serving the
revision it has, and says why it lags (``Route.stale``), as a followed alias does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Executor
from typing import Any

from modelport.domain.deployments import Arm, Deployment
from modelport.domain.refs import ModelRef
from modelport.errors import DeploymentNotFoundError
from modelport.serving.following import Follower
from modelport.serving.load_events import LoadEvents
from modelport.serving.route import Lag, Route
from modelport.serving.routing.router import DeploymentRouter, LiveArm
from modelport.serving.routing.shadow import ShadowArm, ShadowQueue, ShadowSink
from modelport.serving.served import ServedModel, describe_failure
from modelport.serving.sources import ModelSource
from modelport.serving.target import ArmLabel, InferenceTarget

logger = logging.getLogger("modelport.serving.runtime")

DeploymentLookup = Callable[[str], Deployment | None]
"""The deployment of a name as the registry has it now (None: there is none); called in
a loading thread (``RegistryService.find_deployment``)."""
Prepare = Callable[[ModelSource, int], ServedModel]
ArmWrapper = Callable[[ServedModel, ArmLabel], InferenceTarget]
ShadowSinkFactory = Callable[[str, Callable[[str, str], None]], ShadowSink]
"""Where a deployment's shadow copies go, given its name and the drop counter
(default: a ``ShadowQueue`` in this process)."""
VersionKey = tuple[str, int]


def arm_source(model: str) -> ModelSource:
    """The source an arm's version is loaded from: the registry model it belongs to
    (served versions are named after their model: their log rows and metrics too)."""
    return ModelSource(name=model, ref=str(ModelRef(model)))


class DeploymentFollower:
    """Loads the deployment routes at start and reconciles them with the registry."""

    def __init__(
        self,
        routes: Iterable[Route],
        lookup: DeploymentLookup | None,
        *,
        prepare: Prepare,
        start: Callable[[ServedModel, str], None],
        retire: Callable[[Route, ServedModel], Coroutine[Any, Any, None]],
        wrap: ArmWrapper,
        pool: Executor,
        events: LoadEvents,
        registry: Follower,
        on_shadow_drop: Callable[[str, str], None],
        draining: Callable[[], bool],
        refusal: Callable[[ServedModel | None, ServedModel], str | None] = lambda a, b: None,
        shadow_sink: ShadowSinkFactory = ShadowQueue,
    ) -> None:
        self._routes = [route for route in routes if route.source.deployment is not None]
        self._lookup = lookup
        self._prepare = prepare
        self._start = start
        self._retire = retire
        self._wrap = wrap
        self._pool = pool
        self._events = events
        self._registry = registry
        self._on_drop = on_shadow_drop
        self._draining = draining
        self._refusal = refusal
        self._shadow_sink = shadow_sink
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def follows(self) -> bool:
        """Whether any route serves a deployment."""
        return bool(self._routes)

    async def load(self, route: Route) -> None:
        """Load a deployment route at start-up; raises when it cannot be served."""
        deployment = await self._read(route)
        if deployment is None:
            name = route.source.deployment or route.source.name
            raise DeploymentNotFoundError(f"deployment {name!r} does not exist", deployment=name)
        await self._apply(route, deployment, "start")

    async def check_all(self) -> None:
        """Read every deployment route's deployment once; reconcile those that moved."""
        await asyncio.gather(*(self.check(route) for route in self._routes))

    async def run(self, interval_s: float) -> None:
        """Check every ``interval_s`` until the runtime drains."""
        while not self._draining():
            await asyncio.sleep(interval_s)
            if not self._draining():
                await self.check_all()

    async def check(self, route: Route) -> None:
        """Reconcile ``route`` with its deployment's current revision."""
        if route.swapping:
            return
        try:
            deployment = await self._read(route)
        except Exception as exc:  # the database is out of reach: keep serving
            self._registry.unreached(exc)
            if route.mark_stale(Lag.REGISTRY_UNREACHABLE, describe_failure(exc), None):
                self._events.followed(route)
            return
        self._registry.reached()
        if deployment is None:
            self._missing(route)
            return
        route.wanted_version = deployment.champion.version
        served = route.deployment
        if served is not None and _routes_alike(served, deployment):
            # Also a deployment deleted and created again as it was: nothing to load.
            route.deployment = deployment
            if route.mark_current():
                self._events.followed(route)
        elif deployment.revision != route.refused_revision:
            await self._apply(route, deployment, "swap")

    async def _read(self, route: Route) -> Deployment | None:
        assert self._lookup is not None, "deployment routes need a deployment lookup"
        name = route.source.deployment
        assert name is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._lookup, name)

    def _missing(self, route: Route) -> None:
        name = route.source.deployment
        detail = (
            f"deployment {name!r} no longer exists; its last revision keeps serving until "
            "the server restarts (or the deployment is created again)"
        )
        if route.mark_stale(Lag.REFERENCE_MISSING, detail, None):
            self._events.followed(route)
            logger.warning(detail, extra={"model": route.source.name})

    # ---------------------------------------------------------------- reconciling

    async def _apply(self, route: Route, deployment: Deployment, kind: str) -> None:
        route.swapping = True
        try:
            fresh = await self._load_missing(route, deployment, kind)
        finally:
            route.swapping = False
        if fresh is None:
            return
        refused = self._refused(route, deployment, fresh) if kind != "start" else None
        if self._draining() or refused is not None:
            await asyncio.gather(*(served.retire() for served in fresh.values()))
            return
        for served in fresh.values():
            self._start(served, kind)
        self._switch(route, deployment, {**route.arms, **fresh})
        logger.info(
            "serving deployment %s revision %s: %s",
            deployment.name,
            deployment.revision,
            ", ".join(f"{arm.name}={arm.ref}" for arm in deployment.arms),
            extra={"model": route.source.name},
        )

    async def _load_missing(
        self, route: Route, deployment: Deployment, kind: str
    ) -> dict[VersionKey, ServedModel] | None:
        """Load the arm versions the route does not have (None: one failed, and the
        others were released)."""
        wanted = list(dict.fromkeys((arm.model, arm.version) for arm in deployment.arms))
        missing = [key for key in wanted if key not in route.arms]
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, self._prepare, arm_source(model), version)
                for model, version in missing
            ),
            return_exceptions=True,
        )
        loaded: dict[VersionKey, ServedModel] = {}
        failures: list[tuple[VersionKey, BaseException]] = []
        for key, result in zip(missing, results, strict=True):
            if isinstance(result, BaseException):
                failures.append((key, result))
            else:
                loaded[key] = result
        if not failures:
            return loaded
        await asyncio.gather(*(served.retire() for served in loaded.values()))
        (model, version), error = failures[0]
        self._not_loaded(route, deployment, f"{model}/{version}", error, kind)
        return None

    def _refused(
        self, route: Route, deployment: Deployment, fresh: dict[VersionKey, ServedModel]
    ) -> str | None:
        """Why a new arm version would break the clients of the version serving now
        (None: none would); the revision is then refused, as a followed alias's swap."""
        for (model, version), served in fresh.items():
            why = self._refusal(route.current, served)
            if why is None:
                continue
            reason = f"arm version {model}/{version} would break current clients: {why}"
            route.refused_revision = deployment.revision
            self._events.refused(route.source, deployment.champion.version, reason)
            route.mark_stale(Lag.SWAP_REFUSED, reason, deployment.champion.version)
            self._events.followed(route)
            logger.warning(
                "revision %s of deployment %s is not served: %s. To serve it anyway, set "
                "serve.models.%s.allow_signature_change = true",
                deployment.revision, deployment.name, reason, route.source.name,
                extra={"model": route.source.name},
            )  # fmt: skip
            return reason
        return None

    def _not_loaded(
        self, route: Route, deployment: Deployment, ref: str, error: BaseException, kind: str
    ) -> None:
        reason = f"version {ref} failed to load: {describe_failure(error)}"
        self._events.failed(route.source, kind, deployment.champion.version, reason)
        if kind == "start":
            route.error = reason
            raise error
        route.refused_revision = deployment.revision
        route.mark_stale(Lag.LOAD_FAILED, reason, deployment.champion.version)
        self._events.followed(route)
        served = route.deployment.revision if route.deployment is not None else "-"
        logger.error(
            "revision %s of deployment %s is not served (%s); revision %s keeps serving",
            deployment.revision, deployment.name, reason, served,
            extra={"model": route.source.name},
        )  # fmt: skip

    def _switch(
        self, route: Route, deployment: Deployment, arms: dict[VersionKey, ServedModel]
    ) -> None:
        """Point the route at the new revision in one step; retire what it no longer uses."""
        used = {(arm.model, arm.version) for arm in deployment.arms}
        router = self._router(route, deployment, arms)
        unused = [served for key, served in arms.items() if key not in used]
        route.arms = {key: served for key, served in arms.items() if key in used}
        champion = deployment.champion
        route.deployment, route.router, route.target = deployment, router, router
        route.current = route.arms[(champion.model, champion.version)]
        route.wanted_version = champion.version
        route.error, route.refused_revision = None, None
        route.mark_current()
        self._events.followed(route)
        loop = asyncio.get_running_loop()
        for served in unused:
            route.retiring.add(served)
            task = loop.create_task(self._retire(route, served))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    def _router(
        self, route: Route, deployment: Deployment, arms: dict[VersionKey, ServedModel]
    ) -> DeploymentRouter:
        def target(arm: Arm) -> tuple[InferenceTarget, ServedModel]:
            served = arms[(arm.model, arm.version)]
            return self._wrap(served, ArmLabel(deployment.name, arm.name)), served

        live = []
        for arm in deployment.live_arms:
            inner, served = target(arm)
            live.append(LiveArm(arm.name, arm.weight, inner, served, served.version_label))
        shadows = []
        for arm in deployment.shadow_arms:
            inner, served = target(arm)
            shadows.append((ShadowArm(arm.name, inner, served), arm.sample))
        if shadows and route.shadows is None:
            route.shadows = self._shadow_sink(deployment.name, self._on_drop)
        return DeploymentRouter(
            deployment.name,
            live,
            sticky=deployment.sticky,
            shadows=shadows,
            queue=route.shadows,
        )


def _routes_alike(served: Deployment, wanted: Deployment) -> bool:
    """Whether two deployments split requests the same way (same arms, same sticky key)."""
    return served.arms == wanted.arms and served.sticky == wanted.sticky
