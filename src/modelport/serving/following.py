"""Following the references that served routes name (``churn@production``, a bare
``churn`` for its latest version): checking what they point at, and saying why a route
does not serve it.

Every ``poll_interval_s`` each followed route asks the registry which version its
reference names; when that moved, the runtime swaps (``ModelRuntime``). A check that
fails is retried with back-off (doubling, up to ``MAX_BACKOFF_S``), and is logged
once, not at every retry:

* the alias (or the model) no longer exists: the served version keeps serving, and a
  warning says how to fix it;
* the registry cannot be reached: the served versions keep serving and the server
  stays ready (pulling healthy replicas out of a load balancer because the registry is
  down would turn an outage of the control plane into one of the service); a warning
  says so once, and an info line when the registry answers again.

Each route records what it wants and why it lags (``Route.stale``); ``LoadEvents``
hears of every change (the metrics) and of the registry's reachability.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from datetime import UTC, datetime

from modelport.domain.refs import parse_ref
from modelport.errors import NotFoundError
from modelport.serving.load_events import LoadEvents
from modelport.serving.route import Lag, Route
from modelport.serving.served import describe_failure
from modelport.serving.sources import ModelSource

logger = logging.getLogger("modelport.serving.runtime")

MAX_BACKOFF_S = 30.0

SwapFn = Callable[[Route, int | None], Awaitable[None]]


class Follower:
    """Checks the followed routes' references and triggers swaps."""

    def __init__(
        self,
        routes: Iterable[Route],
        current_version: Callable[[ModelSource], int | None],
        swap: SwapFn,
        *,
        pool: Executor,
        events: LoadEvents,
        poll_interval_s: float,
    ) -> None:
        self._routes = [route for route in routes if route.source.follows_registry]
        self._current_version = current_version
        self._swap = swap
        self._pool = pool
        self._events = events
        self._poll_interval = poll_interval_s
        self._reachable: bool | None = None  # unknown until the first check
        self._unreachable_since: datetime | None = None
        self._registry_error: str | None = None

    @property
    def follows(self) -> bool:
        """Whether any route follows the registry."""
        return bool(self._routes)

    @property
    def registry_reachable(self) -> bool | None:
        """Whether the last check reached the registry (None: nothing follows it, or not
        checked yet)."""
        return self._reachable

    @property
    def registry_error(self) -> str | None:
        """Why the registry could not be reached at the last check (None: it could)."""
        return self._registry_error

    @property
    def unreachable_since(self) -> datetime | None:
        """Since when the registry cannot be reached (None: it can)."""
        return self._unreachable_since

    async def check_all(self) -> None:
        """Check every followed route that is due, at once."""
        await asyncio.gather(*(self.check(route) for route in self._routes))

    async def run(self, stopping: Callable[[], bool]) -> None:
        """Check every ``poll_interval_s`` until ``stopping()``."""
        while not stopping():
            await asyncio.sleep(self._poll_interval)
            if not stopping():
                await self.check_all()

    async def check(self, route: Route) -> None:
        """Ask what the route's reference names now; swap when it moved."""
        if route.swapping or time.monotonic() < route.next_check:
            return
        loop = asyncio.get_running_loop()
        try:
            version = await loop.run_in_executor(self._pool, self._current_version, route.source)
        except NotFoundError as exc:
            self.reached()
            self._failed_check(route, Lag.REFERENCE_MISSING, _missing(route, exc), None)
            return
        except Exception as exc:  # the database or artifact store is out of reach
            self.unreached(exc)
            since = self._unreachable_since or datetime.now(UTC)
            detail = f"the registry cannot be reached since {since:%Y-%m-%dT%H:%M:%SZ}"
            # Logged once for every route, by unreached.
            self._failed_check(route, Lag.REGISTRY_UNREACHABLE, detail, route.wanted_version)
            return
        self.reached()
        route.failed_checks, route.next_check = 0, 0.0
        await self._follow(route, version)

    async def _follow(self, route: Route, version: int | None) -> None:
        moved = version != route.wanted_version
        route.wanted_version = version
        if version == route.served_version:
            if route.mark_current() or moved:
                self._events.followed(route)
        elif version == route.refused_version:
            if moved:
                self._events.followed(route)  # back to a version already refused
        else:
            await self._swap(route, version)

    def _failed_check(self, route: Route, reason: Lag, detail: str, version: int | None) -> None:
        route.failed_checks += 1
        delay = min(self._poll_interval * 2**route.failed_checks, MAX_BACKOFF_S)
        route.next_check = time.monotonic() + delay
        if route.mark_stale(reason, detail, version):
            self._events.followed(route)
            if reason is not Lag.REGISTRY_UNREACHABLE:
                logger.warning(
                    "%s; version %s keeps serving (checked again with back-off, up to every "
                    "%.0f s)", detail, route.current.version_label if route.current else "-",
                    MAX_BACKOFF_S, extra={"model": route.source.name},
                )  # fmt: skip

    def unreached(self, exc: BaseException) -> None:
        """The registry did not answer a check (logged once, until it answers again)."""
        self._registry_error = describe_failure(exc)
        if self._reachable is False:
            return
        self._reachable = False
        self._unreachable_since = datetime.now(UTC)
        self._events.registry(False)
        logger.warning(
            "cannot reach the registry to follow the served aliases: %s; the models keep "
            "serving their current versions and the server stays ready (checked again with "
            "back-off, up to every %.0f s)", self._registry_error, MAX_BACKOFF_S,
        )  # fmt: skip

    def reached(self) -> None:
        """The registry answered (a check, or the loads at start-up)."""
        if self._reachable:
            return
        if self._unreachable_since is not None:
            outage = (datetime.now(UTC) - self._unreachable_since).total_seconds()
            logger.info("the registry answers again after %.0f s", outage)
        self._reachable = True
        self._unreachable_since, self._registry_error = None, None
        self._events.registry(True)


def _missing(route: Route, exc: BaseException) -> str:
    """What no longer exists, and how to serve again what is served now."""
    source = route.source
    ref = parse_ref(source.ref or "")
    served = route.current.version_label if route.current is not None else "N"
    if ref.alias is not None:
        fix = (
            f"point it at a version again (modelport alias set {ref.name} {ref.alias} "
            f"{served}) or serve a pinned version ({ref.name}/{served})"
        )
        return f"{source.ref} cannot be followed: {describe_failure(exc)}; to fix, {fix}"
    return f"{source.ref} cannot be followed: {describe_failure(exc)}"
