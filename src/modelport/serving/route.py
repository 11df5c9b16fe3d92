"""One served name: the version answering it, the target reaching that version, and
whether it is the version the name's reference points at now (and why not).

A route serving a deployment also has the deployment's revision it serves, the router
answering it (``serving.routing``) and every arm version loaded for it; ``current`` is
then the champion's version (what metadata and readiness describe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from modelport.domain.deployments import Deployment
from modelport.serving.routing.router import DeploymentRouter
from modelport.serving.routing.shadow import ShadowSink
from modelport.serving.served import ServedModel
from modelport.serving.sources import ModelSource
from modelport.serving.target import InferenceTarget


class Lag(StrEnum):
    """Why a route does not serve the version its reference points at."""

    SWAP_REFUSED = "swap_refused"  # the new version would break current clients
    LOAD_FAILED = "load_failed"  # the new version did not load or answer its example
    REGISTRY_UNREACHABLE = "registry_unreachable"  # the reference cannot be checked
    REFERENCE_MISSING = "reference_missing"  # the alias (or model) no longer exists


@dataclass(frozen=True)
class Staleness:
    """A route serving another version than its reference's, and why: ``version`` is
    the version wanted (None when it cannot be known), ``since`` when it began."""

    reason: Lag
    detail: str
    version: int | None
    since: datetime

    def to_dict(self) -> dict[str, object]:
        """The JSON form ``/api/models`` shows."""
        return {
            "reason": self.reason.value,
            "detail": self.detail,
            "version": self.version,
            "since": self.since.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }


@dataclass
class Route:
    """One served name and the version answering it."""

    source: ModelSource
    current: ServedModel | None = None
    target: InferenceTarget | None = None  # reaches ``current``; switched with it
    error: str | None = None  # why the route is not ready, when it is not
    wanted_version: int | None = None  # what the reference pointed at when last checked
    stale: Staleness | None = None
    refused_version: int | None = None  # not tried again until the reference moves on
    swapping: bool = False
    retiring: set[ServedModel] = field(default_factory=set)
    failed_checks: int = 0  # checks of the reference that failed in a row
    next_check: float = 0.0  # on time.monotonic(): back-off after failed checks
    deployment: Deployment | None = None  # the revision served (deployment routes only)
    router: DeploymentRouter | None = None  # == target, for a deployment route
    arms: dict[tuple[str, int], ServedModel] = field(default_factory=dict)  # (model, version)
    shadows: ShadowSink | None = None  # where copies for shadow arms go
    refused_revision: int | None = None  # a revision that failed to load: not tried again

    @property
    def served_version(self) -> int | None:
        """The version answering now (None: not loaded, or a package directory)."""
        return self.current.version if self.current is not None else None

    def mark_stale(self, reason: Lag, detail: str, version: int | None) -> bool:
        """Record why the wanted version is not served; True when that is news (a new
        reason or version, to be logged), False when it was already known."""
        known = self.stale
        if known is not None and (known.reason, known.version) == (reason, version):
            return False
        self.stale = Staleness(reason, detail, version, datetime.now(UTC))
        return True

    def mark_current(self) -> bool:
        """The wanted version is served; True when the route was stale until now."""
        was_stale, self.stale = self.stale is not None, None
        return was_stale


class Holdable(Protocol):
    """What a request holds while it runs: a version, or a router's versions."""

    def acquire(self) -> None:
        """Hold it."""

    def release(self) -> None:
        """End a hold."""


class HeldTarget:
    """A route's target, with the version(s) it reaches held while the ``with`` block runs."""

    __slots__ = ("_served", "_target")

    def __init__(self, served: Holdable, target: InferenceTarget) -> None:
        self._served = served
        self._target = target

    def __enter__(self) -> InferenceTarget:
        self._served.acquire()
        return self._target

    def __exit__(self, *exc_info: object) -> None:
        self._served.release()
