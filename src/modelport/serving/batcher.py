"""Adaptive micro-batching: concurrent requests to one model become one model call.

Requests wait in a bounded queue; one loop per model takes as many as fit in
``max_batch_size`` rows, runs the model once, and hands each request its slice of
the result. How long it waits for company adapts to the traffic:

* a request that arrives at an idle model runs at once (after letting requests that
  already reached the server join it), so a lone client sees no added latency;
* when one did join meanwhile, requests keep arriving: the batch keeps collecting while
  they do, but never longer than ``max_wait_ms`` after its first request arrived;
* while the model is busy, new requests queue and go together in the next batch;
* a request that fills a batch by itself, for an idle model that runs inline, skips the
  queue: nothing could join it, so it runs in its own coroutine at once.

Slow models run in a worker thread so the event loop keeps answering health checks and
reading requests; models that answer within 2 ms run inline. A thread costs more than
its hand-off (~50 us) suggests: while the model thread runs, the loop parses the next
requests and holds the GIL, and the model thread then waits for it (Python's convoy
effect). Measured here with a 0.5 ms model, inline served about 2x the requests/s of a
thread, with one worker or two.

The same convoy makes a fast model look slow once it runs in a thread: a few slow calls
(a cold start, a stolen CPU) could tip it over 2 ms, and its threaded calls then kept
measuring 4-9 ms under load. So a model whose threaded calls measure under 8 ms runs
inline once every 64 calls, and that call's time replaces the estimate.

One stalled call must not move a fast model off the loop either: on a shared machine a
call now and then takes ten times its usual time (a stolen CPU, a page fault), which
used to lift the smoothed estimate over 2 ms in one step and cost the next 64 calls the
thread's convoy. So a call counts for at most OUTLIER_FACTOR times the estimate: a model
that really became slow still reaches its thread after a few calls (the estimate grows
by up to 1.6x a call), one stall moves it by less than that.

Requests carrying inference parameters (``serving.params``) share a batch only with
requests carrying equal ones: the model gets one ``params`` per call. When some queued
request has params, a batch takes the first request and every later one with the same
params that fits; the others keep their place for the next batch. Without params (the
usual case) the queue is taken in order as it stands, with no comparison.

A full queue refuses at once (``OverloadedError``, 503); a request whose deadline
passes is answered with ``DeadlineExceededError`` (504) and skipped if it is still
queued. One timer per batcher, set for the earliest deadline of the requests it holds,
finds them: a timer per request cost ~1.5 us of a request's ~45. If a batch fails, its
requests are retried one by one, so one bad request cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.config import BatchingSettings
from modelport.errors import (
    DeadlineExceededError,
    ModelExecutionError,
    ModelNotReadyError,
    ModelportError,
    OverloadedError,
)
from modelport.serving.batch_arrays import check_result, concatenate
from modelport.serving.batch_observer import BatchObserver, NullObserver

logger = logging.getLogger(__name__)

Batch = dict[str, np.ndarray]
Outputs = dict[str, np.ndarray]
Params = Mapping[str, Any] | None
RunFn = Callable[[Batch, frozenset[str], Params], Mapping[str, np.ndarray]]

# A model call shorter than this runs on the event loop: it delays the loop's other work
# by at most this long, which a thread would cost anyway (see the module's docstring).
INLINE_SECONDS = 0.002
# A model measured below this in its thread runs inline every PROBE_EVERY calls, to measure
# it without the thread's GIL convoy; a probe blocks the loop for at most this long.
PROBE_BELOW_SECONDS = 0.008
PROBE_EVERY = 64
OUTLIER_FACTOR = 4.0  # a call counts for at most this many times the estimate
_GATHER_TURNS = 2  # event-loop turns that let already-received requests join a batch
_WAIT_STEP_SECONDS = 0.0002


@dataclass(eq=False, slots=True)
class _Pending:
    batch: Batch
    rows: int
    outputs: frozenset[str]
    enqueued: float
    deadline: float
    future: asyncio.Future[Outputs]
    params: Params


class Batcher:
    """One model's queue and batching loop; ``submit`` is the only way to reach the model."""

    def __init__(
        self,
        run: RunFn,
        settings: BatchingSettings,
        *,
        name: str,
        observer: BatchObserver | None = None,
        expected_seconds: float | None = None,
    ) -> None:
        self._run = run
        self._settings = settings
        self._name = name
        self._observer = observer or NullObserver()
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._queued_with_params = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._running: list[_Pending] = []  # the batch being computed
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at = 0.0
        self._executor: ThreadPoolExecutor | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None  # where it started
        # Smoothed seconds per model call; unknown until measured (warm-up passes it in).
        self._seconds = expected_seconds
        self._threaded_calls = 0

    @property
    def queued(self) -> int:
        """Requests waiting for a batch."""
        return len(self._queue)

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        if self._task is None:
            self._event_loop = asyncio.get_running_loop()
            self._task = self._event_loop.create_task(self._loop(), name=self._name)

    async def submit(
        self,
        batch: Batch,
        rows: int,
        outputs: frozenset[str],
        deadline: float,
        params: Params = None,
    ) -> Outputs:
        """Queue a request and wait for its slice of a batch's result.

        ``deadline`` is on ``time.monotonic()``'s clock; ``params`` go to the model with
        the batch (only requests with equal params share one).
        """
        if self._closing:
            raise ModelNotReadyError(
                f"model {self._name!r} is being replaced; retry", retry_after=1
            )
        if len(self._queue) >= self._settings.max_queue:
            self._observer.rejected("overloaded")
            raise OverloadedError(
                f"model {self._name!r} is overloaded: its queue is full "
                f"({self._settings.max_queue} requests)",
                retry_after=1,
            )
        now = time.monotonic()
        if deadline <= now:
            self._observer.rejected("deadline")
            raise _deadline_error(self._name)
        if rows >= self._settings.max_batch_size and not self._queue and self._inline():
            # A full batch for an idle model: nothing could join it, and an inline call
            # cannot overlap the loop's, so it runs here without the queue's round trip.
            return self._run_alone(batch, rows, outputs, now, params)
        # Python 3.11's get_running_loop makes a getpid system call: once, not per request.
        loop = self._event_loop or asyncio.get_running_loop()
        item = _Pending(batch, rows, outputs, now, deadline, loop.create_future(), params)
        self._queue.append(item)
        self._queued_rows += rows
        if params is not None:
            self._queued_with_params += 1
        self._observer.queue_depth(len(self._queue))
        self._wakeup.set()
        if self._expiry is None or deadline < self._expiry_at:
            self._arm_expiry(loop, deadline)
        return await item.future

    def _arm_expiry(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_at = when
        self._expiry = loop.call_at(when - time.monotonic() + loop.time(), self._expire)

    def _expire(self) -> None:
        """Answer every request held here whose deadline passed; wait for the next one."""
        self._expiry = None
        now = time.monotonic()
        earliest = None
        for item in (*self._queue, *self._running):
            if item.future.done():
                continue
            if item.deadline <= now:
                self._observer.rejected("deadline")
                item.future.set_exception(_deadline_error(self._name))
            elif earliest is None or item.deadline < earliest:
                earliest = item.deadline
        if earliest is not None:
            self._arm_expiry(asyncio.get_running_loop(), earliest)

    async def close(self) -> None:
        """Stop taking requests, finish the queued ones, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._expiry is not None:
            self._expiry.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    # ------------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._gather()
            items = self._take()
            if items:
                await self._execute(items)

    async def _gather(self) -> None:
        limit = self._settings.max_batch_size
        waiting = len(self._queue)
        for _ in range(_GATHER_TURNS):
            if self._queued_rows >= limit:
                return
            await asyncio.sleep(0)
        if len(self._queue) == waiting:
            # Nobody joined while the loop read what had reached the server: no company is
            # coming (a lone request, or an arm with a small share of a deployment's
            # traffic), so the timed wait below would cost a timer and a loop turn per call.
            return
        first = self._queue[0].enqueued
        latest = first + self._settings.max_wait_ms / 1000.0
        while self._queued_rows < limit and time.monotonic() < latest:
            before = len(self._queue)
            await asyncio.sleep(_WAIT_STEP_SECONDS)
            if len(self._queue) == before:  # nobody joined: stop waiting for company
                return

    def _take(self) -> list[_Pending]:
        if self._queued_with_params:
            items = self._take_matching()
        else:
            items = []
            rows = 0
            limit = self._settings.max_batch_size
            while self._queue and (not items or rows + self._queue[0].rows <= limit):
                item = self._queue.popleft()
                self._queued_rows -= item.rows
                if not item.future.done():  # expired requests are skipped
                    items.append(item)
                    rows += item.rows
        self._observer.queue_depth(len(self._queue))
        return items

    def _take_matching(self) -> list[_Pending]:
        """The first live request and the later ones with equal params that fit."""
        limit = self._settings.max_batch_size
        items: list[_Pending] = []
        kept: list[_Pending] = []
        rows = 0
        while self._queue and rows < limit:
            item = self._queue.popleft()
            live = not item.future.done()  # expired requests are skipped
            if live and items and (rows + item.rows > limit or not _same(item, items[0])):
                kept.append(item)
                continue
            self._queued_rows -= item.rows
            self._queued_with_params -= item.params is not None
            if live:
                items.append(item)
                rows += item.rows
        self._queue.extendleft(reversed(kept))  # the rest keep their places
        return items

    async def _execute(self, items: list[_Pending]) -> None:
        started = time.monotonic()
        for item in items:
            self._observer.waited(started - item.enqueued)
        batch = concatenate([item.batch for item in items])
        outputs = frozenset().union(*(item.outputs for item in items))
        rows = sum(item.rows for item in items)
        self._running = items  # their deadlines still run while the model computes
        try:
            result = await self._call(batch, outputs, items[0].params)
            check_result(result, outputs, rows, self._name)
        except Exception as exc:
            await self._settle_one_by_one(items, exc)
            return
        finally:
            self._running = []
        seconds = time.monotonic() - started
        self._observer.batch_done(rows, len(items), seconds)
        _split(result, items)

    def _inline(self) -> bool:
        return self._seconds is not None and self._seconds < INLINE_SECONDS

    async def _call(
        self, batch: Batch, outputs: frozenset[str], params: Params
    ) -> Mapping[str, np.ndarray]:
        if self._inline():
            return self._call_inline(batch, outputs, params)
        if self._probe_due():
            started = time.perf_counter()
            result = self._run(batch, outputs, params)
            self._seconds = time.perf_counter() - started
            return result
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"model-{self._name}")
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        result = await loop.run_in_executor(self._executor, self._run, batch, outputs, params)
        self._measured(time.perf_counter() - started)
        return result

    def _probe_due(self) -> bool:
        self._threaded_calls += 1
        return (
            self._seconds is not None
            and self._seconds < PROBE_BELOW_SECONDS
            and self._threaded_calls % PROBE_EVERY == 0
        )

    def _call_inline(
        self, batch: Batch, outputs: frozenset[str], params: Params
    ) -> Mapping[str, np.ndarray]:
        started = time.perf_counter()
        result = self._run(batch, outputs, params)
        self._measured(time.perf_counter() - started)
        return result

    def _measured(self, elapsed: float) -> None:
        estimate = self._seconds
        if estimate is None:
            self._seconds = elapsed
        else:
            self._seconds = 0.8 * estimate + 0.2 * min(elapsed, OUTLIER_FACTOR * estimate)

    def _run_alone(
        self, batch: Batch, rows: int, outputs: frozenset[str], now: float, params: Params
    ) -> Outputs:
        self._observer.waited(0.0)
        try:
            result = self._call_inline(batch, outputs, params)
            check_result(result, outputs, rows, self._name)
        except Exception as exc:
            raise _request_error(exc, self._name) from None
        self._observer.batch_done(rows, 1, time.monotonic() - now)
        return {name: result[name] for name in outputs}

    async def _settle_one_by_one(self, items: list[_Pending], batch_error: Exception) -> None:
        if len(items) == 1:
            _fail(items[0], batch_error, self._name)
            return
        for item in items:
            started = time.monotonic()
            try:
                result = await self._call(item.batch, item.outputs, item.params)
                check_result(result, item.outputs, item.rows, self._name)
            except Exception as exc:
                _fail(item, exc, self._name)
                continue
            self._observer.batch_done(item.rows, 1, time.monotonic() - started)
            _split(result, [item])


def _same(item: _Pending, first: _Pending) -> bool:
    return item.params is first.params or item.params == first.params


def _split(result: Mapping[str, np.ndarray], items: list[_Pending]) -> None:
    offset = 0
    for item in items:
        end = offset + item.rows
        if not item.future.done():
            item.future.set_result({name: result[name][offset:end] for name in item.outputs})
        offset = end


def _fail(item: _Pending, exc: Exception, name: str) -> None:
    if not item.future.done():
        item.future.set_exception(_request_error(exc, name))


def _request_error(exc: Exception, name: str) -> ModelportError:
    """What a request whose rows made the model fail is told (logged unless ours)."""
    if isinstance(exc, ModelportError):
        return exc
    logger.error(
        "model %s failed on a request: %s: %s",
        name,
        type(exc).__name__,
        exc,
        extra={"model": name},
    )
    return ModelExecutionError(f"model {name!r} failed on this input: {type(exc).__name__}: {exc}")


def _deadline_error(name: str) -> DeadlineExceededError:
    return DeadlineExceededError(f"request to model {name!r} exceeded its deadline")
