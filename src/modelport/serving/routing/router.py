"""The target that answers a deployment: picks a live arm, copies to shadows.

One ``DeploymentRouter`` is built for every revision of a deployment a server serves;
the runtime switches the route from one to the next in one step. A request holds every
version its router may reach (``acquire``) for as long as it runs, so a version that the
next revision drops retires only after the requests that could still use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from modelport.domain.deployments import Sticky
from modelport.serving.routing.shadow import Holdable, ShadowArm, ShadowSink
from modelport.serving.routing.sticky import rendezvous, sticky_key
from modelport.serving.routing.weighted import Sampler, SmoothWeighted
from modelport.serving.target import InferenceRequest, InferenceResult, InferenceTarget


@dataclass(frozen=True, slots=True)
class LiveArm:
    """An arm that answers callers: its name, weight, target and the version it reaches."""

    name: str
    weight: float
    target: InferenceTarget
    version: Holdable
    version_label: str = ""


class DeploymentRouter:
    """Answers with one live arm (by weight, or by the sticky key when the request
    carries it) and offers shadow copies once that arm answered."""

    def __init__(
        self,
        deployment: str,
        live: Sequence[LiveArm],
        *,
        sticky: Sticky | None = None,
        shadows: Sequence[tuple[ShadowArm, float]] = (),
        queue: ShadowSink | None = None,
    ) -> None:
        if not live:
            raise ValueError(f"deployment {deployment!r} has no live arm")
        self.deployment = deployment
        self.live = tuple(live)
        self.sticky = sticky
        self._picker = SmoothWeighted([arm.weight for arm in live])
        self._weights = [(arm.name, arm.weight) for arm in live]
        self._shadows = [(arm, Sampler(sample)) for arm, sample in shadows]
        if self._shadows and queue is None:
            raise ValueError("shadow arms need a shadow queue")
        self._queue = queue
        versions: list[Holdable] = []
        for holdable in [arm.version for arm in live] + [arm.version for arm, _ in shadows]:
            if not any(holdable is known for known in versions):
                versions.append(holdable)
        self._versions = tuple(versions)
        self._only = live[0] if len(live) == 1 else None

    @property
    def shadow_arms(self) -> tuple[ShadowArm, ...]:
        """The shadow arms copies go to."""
        return tuple(arm for arm, _ in self._shadows)

    def acquire(self) -> None:
        """Hold every version a request may reach."""
        for version in self._versions:
            version.acquire()

    def release(self) -> None:
        """End an ``acquire``."""
        for version in self._versions:
            version.release()

    def pick(self, request: InferenceRequest) -> LiveArm:
        """The live arm that answers ``request``."""
        if self._only is not None:
            return self._only
        if self.sticky is not None:
            key = sticky_key(self.sticky, request)
            if key is not None:
                return self.live[rendezvous(key, self._weights)]
        return self.live[self._picker.pick()]

    async def infer(self, request: InferenceRequest) -> InferenceResult:
        """The picked arm's answer, labelled with the arm; shadows get a copy after it."""
        arm = self.pick(request)
        result = await arm.target.infer(request)
        if self._queue is not None:
            for shadow, sampler in self._shadows:
                if sampler.take():
                    self._queue.offer(shadow, request)
        # Built directly: dataclasses.replace costs three times as much on this path.
        return InferenceResult(
            result.outputs,
            result.model,
            result.version,
            result.rows,
            result.interface,
            result.inputs,
            result.warnings,
            result.ids,
            arm.name,
            self.deployment,
        )

    def for_version(self, label: str) -> DeploymentRouter | None:
        """A router answering only with the live arm serving version ``label`` (a client
        asking for a version by name), without shadows; None when no live arm serves it."""
        for arm in self.live:
            if arm.version_label == label:
                return DeploymentRouter(self.deployment, [dataclasses.replace(arm, weight=1.0)])
        return None
