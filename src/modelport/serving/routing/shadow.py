"""Copying requests to shadow arms, off the caller's path.

A router offers a copy of a request once its live arm has answered; the copy waits in
a bounded queue, and a background task hands each to its shadow arm, a bounded number
at a time. The caller never waits for a shadow: a full queue drops the copy (counted,
``modelport_shadow_dropped_total``), and a shadow's slowness, errors or exceptions end
in the shadow's own metrics and prediction log rows (its wrappers record them), never in
the caller's answer. A queued copy holds its shadow's version (``Holdable``), so a
reconciliation that removes the shadow retires that version only after the copies it
was sent.

Where the copies go is a ``ShadowSink``: ``ShadowQueue`` answers them in this process's
event loop; the server's workers hand them instead to a process of their own that runs
at idle priority (``modelport.server.process.shadow_link``), which answers them with a
``ShadowQueue`` of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from modelport.serving.target import InferenceRequest, InferenceTarget

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1024
CONCURRENCY = 64


class Holdable(Protocol):
    """A model version that retires only once nobody holds it (``ServedModel``)."""

    def acquire(self) -> None:
        """Hold it."""

    def release(self) -> None:
        """End a hold."""


@dataclass(frozen=True, slots=True)
class ShadowArm:
    """A shadow arm: its name, the target reaching its version, and that version."""

    name: str
    target: InferenceTarget
    version: Holdable


class ShadowSink(Protocol):
    """Where a router offers its shadow copies (``ShadowQueue``, or another process)."""

    def offer(self, arm: ShadowArm, request: InferenceRequest) -> bool:
        """Take a copy of ``request`` for ``arm`` without waiting; False when dropped
        (and counted)."""
        ...

    @property
    def pending(self) -> int:
        """Copies taken and not answered yet (as far as this process knows)."""
        ...

    async def close(self) -> None:
        """Stop taking copies; the ones taken are answered (or counted as dropped)."""
        ...


class ShadowQueue:
    """The copies waiting for a deployment's shadow arms, and the task sending them."""

    def __init__(
        self,
        deployment: str,
        on_drop: Callable[[str, str], None],
        *,
        size: int = QUEUE_SIZE,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._deployment = deployment
        self._on_drop = on_drop
        self._queue: asyncio.Queue[tuple[ShadowArm, InferenceRequest]] = asyncio.Queue(size)
        self._slots = asyncio.Semaphore(concurrency)
        self._drainer: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False
        self._pending = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Copies queued or being answered."""
        return self._pending

    def offer(self, arm: ShadowArm, request: InferenceRequest) -> bool:
        """Queue a copy of ``request`` for ``arm`` without waiting; False when dropped."""
        if self._closed or self._queue.full():
            self.dropped += 1
            self._on_drop(self._deployment, arm.name)
            return False
        arm.version.acquire()
        self._pending += 1
        self._queue.put_nowait((arm, request))
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(
                self._drain(), name=f"shadow-{self._deployment}"
            )
        return True

    async def _drain(self) -> None:
        while True:
            arm, request = await self._queue.get()
            await self._slots.acquire()
            task = asyncio.get_running_loop().create_task(self._send(arm, request))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _send(self, arm: ShadowArm, request: InferenceRequest) -> None:
        try:
            await arm.target.infer(_copy(request))
        except Exception:  # recorded by the arm's wrappers; never the caller's concern
            logger.debug("shadow arm %s of %s failed", arm.name, self._deployment, exc_info=True)
        finally:
            self._pending -= 1
            arm.version.release()
            self._slots.release()
            self._queue.task_done()

    async def close(self) -> None:
        """Stop taking copies and send the queued ones (each ends by its deadline)."""
        self._closed = True
        await self._queue.join()
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer


def _copy(request: InferenceRequest) -> InferenceRequest:
    """The request as the shadow gets it: same id and inputs, its own clock and as long
    a deadline as the caller's request had."""
    now = time.monotonic()
    return dataclasses.replace(
        request, received=now, deadline=now + (request.deadline - request.received)
    )
