"""The micro-batcher: merging, latency of a lone request, limits, failures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping

import numpy as np
import pytest

from modelport.config import BatchingSettings
from modelport.errors import (
    DeadlineExceededError,
    ModelExecutionError,
    ModelNotReadyError,
    OverloadedError,
)
from modelport.serving.batcher import PROBE_BELOW_SECONDS, PROBE_EVERY, Batcher

OUT = frozenset({"y"})


class Recorder:
    """A 'model' doubling its input, recording the size of every call."""

    def __init__(self, delay: float = 0.0, fail_on: float | None = None) -> None:
        self.calls: list[int] = []
        self.params: list[object] = []
        self.delay = delay
        self.fail_on = fail_on
        self.threads: set[str] = set()

    def __call__(
        self,
        batch: dict[str, np.ndarray],
        outputs: frozenset[str],
        params: Mapping[str, object] | None = None,
    ) -> Mapping[str, np.ndarray]:
        x = batch["x"]
        self.calls.append(len(x))
        self.params.append(params)
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and (x == self.fail_on).any():
            raise ValueError("poisoned row")
        return {"y": x * 2}


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def deadline(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


async def submit(batcher: Batcher, value: float, rows: int = 1) -> np.ndarray:
    batch = {"x": np.full(rows, value)}
    return (await batcher.submit(batch, rows, OUT, deadline()))["y"]


def threads_per_call(
    model: Recorder,
    expected_seconds: float,
    calls: int,
    delays: Callable[[int], float] | None = None,
) -> list[str]:
    """The thread each of ``calls`` lone requests, one after another, ran the model in
    (``delays`` sets the model's delay for each call)."""

    async def scenario() -> list[str]:
        batcher = Batcher(model, BatchingSettings(), name="m", expected_seconds=expected_seconds)
        batcher.start()
        where = []
        for call in range(calls):
            if delays is not None:
                model.delay = delays(call)
            model.threads.clear()
            await submit(batcher, 1.0)
            (name,) = model.threads
            where.append(name)
        await batcher.close()
        return where

    where = run(scenario())
    assert isinstance(where, list)
    return where


def test_concurrent_requests_share_one_call_and_get_their_own_rows() -> None:
    async def scenario() -> None:
        model = Recorder(delay=0.01)
        batcher = Batcher(
            model, BatchingSettings(max_batch_size=64), name="m", expected_seconds=0.01
        )
        batcher.start()
        results = await asyncio.gather(*(submit(batcher, float(i)) for i in range(20)))
        for i, result in enumerate(results):
            assert result.tolist() == [2.0 * i]
        assert sum(model.calls) == 20
        assert len(model.calls) < 20  # merged
        assert max(model.calls) > 1
        await batcher.close()

    run(scenario())


def test_requests_with_different_params_never_share_a_call() -> None:
    async def scenario() -> None:
        model = Recorder(delay=0.02)
        settings = BatchingSettings(max_batch_size=64)
        batcher = Batcher(model, settings, name="m", expected_seconds=0.02)
        batcher.start()

        async def one(value: float, params: dict[str, int] | None) -> np.ndarray:
            batch = {"x": np.full(1, value)}
            return (await batcher.submit(batch, 1, OUT, deadline(), params))["y"]

        busy = asyncio.create_task(one(0.0, None))
        await asyncio.sleep(0.005)  # the model is now busy with the first request
        a, b = {"k": 1}, {"k": 2}
        order = [a, b, a, None, dict(b), a]  # an equal dict counts as the same params
        results = await asyncio.gather(busy, *(one(float(i), p) for i, p in enumerate(order, 1)))
        assert [r.tolist() for r in results] == [[2.0 * i] for i in range(7)]
        # One call per params, each taking every queued request with them, first come first.
        assert model.calls == [1, 3, 2, 1]
        assert model.params == [None, a, b, None]
        await batcher.close()

    run(scenario())


def test_batches_never_exceed_max_batch_size() -> None:
    async def scenario() -> None:
        model = Recorder(delay=0.005)
        batcher = Batcher(
            model, BatchingSettings(max_batch_size=8), name="m", expected_seconds=0.005
        )
        batcher.start()
        await asyncio.gather(*(submit(batcher, 1.0, rows=3) for _ in range(10)))
        assert max(model.calls) <= 8
        assert sum(model.calls) == 30
        await batcher.close()

    run(scenario())


def test_a_request_larger_than_the_batch_runs_alone() -> None:
    async def scenario() -> None:
        model = Recorder()
        batcher = Batcher(model, BatchingSettings(max_batch_size=4), name="m")
        batcher.start()
        result = await submit(batcher, 1.5, rows=10)
        assert result.shape == (10,)
        assert model.calls == [10]
        await batcher.close()

    run(scenario())


class Counts:
    """An observer keeping the batches it was told about."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int]] = []
        self.waits: list[float] = []

    def queue_depth(self, depth: int) -> None:
        pass

    def batch_done(self, rows: int, requests: int, seconds: float) -> None:
        self.batches.append((rows, requests))

    def waited(self, seconds: float) -> None:
        self.waits.append(seconds)

    def rejected(self, reason: str) -> None:
        pass


def test_a_full_batch_for_an_idle_fast_model_is_answered_and_counted() -> None:
    async def scenario() -> None:
        model, counts = Recorder(fail_on=13.0), Counts()
        batcher = Batcher(
            model,
            BatchingSettings(max_batch_size=4),
            name="m",
            observer=counts,
            expected_seconds=0.00001,
        )
        batcher.start()
        assert (await submit(batcher, 1.5, rows=4)).tolist() == [3.0] * 4
        assert counts.batches == [(4, 1)]
        assert counts.waits == [0.0]
        with pytest.raises(ModelExecutionError, match="poisoned row"):
            await submit(batcher, 13.0, rows=4)
        assert (await submit(batcher, 2.0, rows=5)).tolist() == [4.0] * 5  # still serving
        await batcher.close()

    run(scenario())


def test_a_full_batch_does_not_overtake_requests_already_queued() -> None:
    async def scenario() -> None:
        model = Recorder()
        batcher = Batcher(
            model, BatchingSettings(max_batch_size=4), name="m", expected_seconds=0.00001
        )
        batcher.start()
        first = asyncio.ensure_future(submit(batcher, 1.0))
        await asyncio.sleep(0)  # queued: the loop is letting others join it
        full = await submit(batcher, 2.0, rows=4)
        assert (await first).tolist() == [2.0]
        assert full.tolist() == [4.0] * 4
        assert model.calls[0] == 1  # the queued request ran first
        await batcher.close()

    run(scenario())


def test_a_lone_request_does_not_wait_for_company() -> None:
    async def scenario() -> None:
        model = Recorder()
        settings = BatchingSettings(max_batch_size=64, max_wait_ms=500)
        batcher = Batcher(model, settings, name="m", expected_seconds=0.00001)
        batcher.start()
        started = time.monotonic()
        await submit(batcher, 1.0)
        assert time.monotonic() - started < 0.1  # far less than max_wait_ms
        await batcher.close()

    run(scenario())


def test_a_lone_request_never_waits_on_a_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody joined while the loop read what had arrived: the batch runs without the
    timed wait (a small-share arm of a deployment would pay it on every call)."""
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded(delay: float) -> None:
        delays.append(delay)
        await real_sleep(delay)

    monkeypatch.setattr("modelport.serving.batcher.asyncio.sleep", recorded)

    async def scenario() -> None:
        model = Recorder()
        batcher = Batcher(model, BatchingSettings(), name="m", expected_seconds=0.00001)
        batcher.start()
        for value in (1.0, 2.0, 3.0):
            assert (await submit(batcher, value)).tolist() == [value * 2]
        await batcher.close()

    run(scenario())
    assert delays and set(delays) == {0}


def test_company_arriving_while_a_batch_gathers_joins_it() -> None:
    async def scenario() -> None:
        model = Recorder()
        settings = BatchingSettings(max_batch_size=1000, max_wait_ms=200)
        batcher = Batcher(model, settings, name="m", expected_seconds=0.00001)
        batcher.start()

        async def later(value: float, turns: int) -> np.ndarray:
            for _ in range(turns):
                await asyncio.sleep(0)
            return await submit(batcher, value)

        # one request now, one a turn later (while the first gathers), then more while
        # the batch waits for company
        answers = await asyncio.gather(
            submit(batcher, 1.0), later(2.0, 1), *(later(float(v), 6) for v in range(3, 9))
        )
        assert [a.tolist() for a in answers] == [[v * 2.0] for v in range(1, 9)]
        assert model.calls == [8]
        await batcher.close()

    run(scenario())


def test_waiting_for_company_is_bounded_by_max_wait() -> None:
    async def scenario() -> None:
        model = Recorder()
        settings = BatchingSettings(max_batch_size=1000, max_wait_ms=30)
        batcher = Batcher(model, settings, name="m", expected_seconds=0.00001)
        batcher.start()

        async def trickle() -> list[np.ndarray]:
            tasks = []
            for i in range(200):  # a request every ~1 ms, for longer than max_wait
                tasks.append(asyncio.create_task(submit(batcher, float(i))))
                await asyncio.sleep(0.001)
            return await asyncio.gather(*tasks)

        started = time.monotonic()
        await trickle()
        assert len(model.calls) > 1  # the first batch did not wait for all 200
        assert time.monotonic() - started < 2
        await batcher.close()

    run(scenario())


def test_a_full_queue_refuses_at_once() -> None:
    async def scenario() -> None:
        gate = threading.Event()

        def blocked(
            batch: dict[str, np.ndarray], outputs: frozenset[str], params: object
        ) -> Mapping[str, np.ndarray]:
            gate.wait(5)
            return {"y": batch["x"]}

        settings = BatchingSettings(max_batch_size=1, max_queue=2)
        batcher = Batcher(blocked, settings, name="slow", expected_seconds=1.0)
        batcher.start()
        running = asyncio.create_task(submit(batcher, 0.0))
        await asyncio.sleep(0.05)  # the first request is executing
        queued = [asyncio.create_task(submit(batcher, float(i))) for i in (1, 2)]
        await asyncio.sleep(0.01)
        with pytest.raises(OverloadedError, match="queue is full") as info:
            await submit(batcher, 3.0)
        assert info.value.retry_after == 1
        gate.set()
        assert [r.tolist() for r in await asyncio.gather(running, *queued)] == [[0.0], [1.0], [2.0]]
        await batcher.close()

    run(scenario())


def test_a_request_past_its_deadline_gets_504_and_is_skipped() -> None:
    async def scenario() -> None:
        model = Recorder(delay=0.2)
        batcher = Batcher(model, BatchingSettings(max_batch_size=1), name="m", expected_seconds=0.2)
        batcher.start()
        first = asyncio.create_task(submit(batcher, 1.0))
        await asyncio.sleep(0.01)
        with pytest.raises(DeadlineExceededError):
            await batcher.submit({"x": np.ones(1)}, 1, OUT, time.monotonic() + 0.05)
        await first
        await asyncio.sleep(0.05)
        assert model.calls == [1]  # the expired request never reached the model
        await batcher.close()

    run(scenario())


def test_a_shorter_deadline_behind_a_longer_one_still_expires_on_time() -> None:
    async def scenario() -> None:
        model = Recorder(delay=0.3)
        batcher = Batcher(model, BatchingSettings(max_batch_size=1), name="m", expected_seconds=0.3)
        batcher.start()
        busy = asyncio.create_task(submit(batcher, 1.0))  # holds the model for 0.3 s
        await asyncio.sleep(0.01)
        patient = asyncio.create_task(batcher.submit({"x": np.ones(1)}, 1, OUT, deadline(5.0)))
        await asyncio.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            await batcher.submit({"x": np.ones(1)}, 1, OUT, time.monotonic() + 0.05)
        assert time.monotonic() - started < 0.2  # not held until the model is free
        await busy
        assert (await patient)["y"].tolist() == [2.0]
        await batcher.close()

    run(scenario())


def test_a_request_whose_batch_is_running_gets_504_when_its_deadline_passes() -> None:
    async def scenario() -> None:
        model = Recorder(delay=0.4)  # slow: runs in a thread, the loop stays free
        batcher = Batcher(model, BatchingSettings(), name="m", expected_seconds=0.4)
        batcher.start()
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            await batcher.submit({"x": np.ones(1)}, 1, OUT, time.monotonic() + 0.1)
        assert time.monotonic() - started < 0.3
        assert model.calls == [1]  # it had reached the model
        await batcher.close()

    run(scenario())


def test_one_bad_request_does_not_fail_the_others_in_its_batch() -> None:
    async def scenario() -> None:
        model, counts = Recorder(delay=0.005, fail_on=13.0), Counts()
        batcher = Batcher(
            model, BatchingSettings(), name="m", observer=counts, expected_seconds=0.005
        )
        batcher.start()
        results = await asyncio.gather(
            *(submit(batcher, float(i)) for i in range(10, 16)), return_exceptions=True
        )
        # The model calls that answered are counted, retries included: every answered row
        # is in exactly one.
        assert sum(rows for rows, _ in counts.batches) == 5
        assert sum(requests for _, requests in counts.batches) == 5
        failures = [r for r in results if isinstance(r, Exception)]
        assert len(failures) == 1
        assert isinstance(failures[0], ModelExecutionError)
        assert "poisoned row" in str(failures[0])
        assert [r.tolist() for r in results if not isinstance(r, Exception)] == [
            [20.0],
            [22.0],
            [24.0],
            [28.0],
            [30.0],
        ]
        await batcher.close()

    run(scenario())


def test_a_wrong_number_of_rows_from_the_model_is_an_error() -> None:
    async def scenario() -> None:
        batcher = Batcher(lambda b, o, p: {"y": np.zeros(1)}, BatchingSettings(), name="m")
        batcher.start()
        with pytest.raises(ModelExecutionError, match="expected 3 rows"):
            await submit(batcher, 1.0, rows=3)
        await batcher.close()

    run(scenario())


def test_fast_models_run_inline_slow_ones_in_a_thread() -> None:
    async def scenario() -> None:
        fast, slow = Recorder(), Recorder(delay=0.01)
        one = Batcher(fast, BatchingSettings(), name="fast", expected_seconds=0.00001)
        two = Batcher(slow, BatchingSettings(), name="slow", expected_seconds=0.01)
        one.start()
        two.start()
        await submit(one, 1.0)
        await submit(two, 1.0)
        assert fast.threads == {threading.current_thread().name}
        assert all(name.startswith("model-slow") for name in slow.threads)
        await one.close()
        await two.close()

    run(scenario())


def test_a_fast_model_that_only_looks_slow_in_its_thread_returns_inline() -> None:
    """Threaded calls measure the GIL convoy too; an inline probe measures the model."""
    loop_thread = threading.current_thread().name

    class SlowOnlyInAThread(Recorder):
        def __call__(
            self,
            batch: dict[str, np.ndarray],
            outputs: frozenset[str],
            params: Mapping[str, object] | None = None,
        ) -> Mapping[str, np.ndarray]:
            self.delay = 0.0 if threading.current_thread().name == loop_thread else 0.003
            return super().__call__(batch, outputs, params)

    where = threads_per_call(SlowOnlyInAThread(), 0.003, PROBE_EVERY + 5)
    assert all(name.startswith("model-m") for name in where[: PROBE_EVERY - 1])
    assert where[PROBE_EVERY - 1 :] == [loop_thread] * 6


def test_one_stalled_call_does_not_move_a_fast_model_to_a_thread() -> None:
    """A call that stalls once (a stolen CPU) used to lift the estimate over the inline
    limit in one step: the next 63 calls then paid for a thread."""
    loop_thread = threading.current_thread().name

    def stalls_once(call: int) -> float:
        return 0.03 if call == 2 else 0.0

    assert threads_per_call(Recorder(), 0.0001, 10, stalls_once) == [loop_thread] * 10


def test_a_model_that_becomes_slow_reaches_its_thread_within_a_few_calls() -> None:
    loop_thread = threading.current_thread().name
    where = threads_per_call(Recorder(delay=0.02), 0.0005, 12)
    inline = where.index(next(name for name in where if name != loop_thread))
    assert 1 <= inline <= 8  # 0.5 ms grows by 1.6x a call: past 2 ms after the 3rd call
    assert all(name.startswith("model-m") for name in where[inline:])


def test_a_model_slower_than_the_probe_limit_is_never_run_inline() -> None:
    async def scenario() -> set[str]:
        model = Recorder(delay=PROBE_BELOW_SECONDS + 0.002)
        batcher = Batcher(model, BatchingSettings(), name="m", expected_seconds=0.01)
        batcher.start()
        for _ in range(PROBE_EVERY + 1):
            await submit(batcher, 1.0)
        await batcher.close()
        return model.threads

    threads = run(scenario())
    assert isinstance(threads, set)
    assert threads and all(name.startswith("model-m") for name in threads)


def test_close_finishes_queued_requests_then_refuses() -> None:
    async def scenario() -> None:
        model = Recorder(delay=0.01)
        batcher = Batcher(
            model, BatchingSettings(max_batch_size=1), name="m", expected_seconds=0.01
        )
        batcher.start()
        pending = [asyncio.create_task(submit(batcher, float(i))) for i in range(5)]
        await asyncio.sleep(0)
        await batcher.close()
        assert [p.result().tolist() for p in pending] == [[0.0], [2.0], [4.0], [6.0], [8.0]]
        with pytest.raises(ModelNotReadyError):
            await submit(batcher, 1.0)

    run(scenario())
