"""Deployment routers: the weighted split, sticky keys, and shadows kept off the caller's path."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import numpy as np
import pytest

from modelport.domain.deployments import parse_sticky
from modelport.serving.binding import Bound, NamedInputs, TableInputs, Tensor
from modelport.serving.interface import IOSpec, Layout, ModelIO
from modelport.serving.routing.router import DeploymentRouter, LiveArm
from modelport.serving.routing.shadow import ShadowArm, ShadowQueue
from modelport.serving.routing.sticky import rendezvous, sticky_key
from modelport.serving.routing.weighted import HELD_PER_TURN, Sampler, SmoothWeighted
from modelport.serving.target import InferenceRequest, InferenceResult

IO = ModelIO(Layout.TENSORS, (IOSpec("x", "FP64", (-1,)),), (IOSpec("y", "FP64", (-1,)),))


class Version:
    """A Holdable that counts its holds."""

    def __init__(self) -> None:
        self.holders = 0

    def acquire(self) -> None:
        self.holders += 1

    def release(self) -> None:
        self.holders -= 1


class Answering:
    """A target answering with its version number, after ``delay`` seconds, or failing."""

    def __init__(self, version: int, delay: float = 0.0, error: Exception | None = None) -> None:
        self.version = version
        self.delay = delay
        self.error = error
        self.seen: list[str] = []

    async def infer(self, request: InferenceRequest) -> InferenceResult:
        self.seen.append(request.request_id)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        y = np.full(1, float(self.version))
        return InferenceResult({"y": y}, "churn", self.version, 1, IO, Bound({"x": y}, 1))


def request(
    request_id: str = "r",
    headers: tuple[tuple[bytes, bytes], ...] = (),
    inputs: NamedInputs | TableInputs | None = None,
) -> InferenceRequest:
    now = time.monotonic()
    inputs = inputs or NamedInputs({"x": Tensor(np.ones(1))})
    return InferenceRequest(inputs, None, now + 5, request_id, "test", now, None, headers)


def live(name: str, weight: float, version: int, target: Answering | None = None) -> LiveArm:
    return LiveArm(name, weight, target or Answering(version), Version(), str(version))


@pytest.mark.parametrize(
    "weights", [(90.0, 10.0), (50.0, 50.0), (33.0, 33.0, 34.0), (87.5, 12.5), (99.0, 1.0)]
)
def test_weighted_split_is_within_one_point_over_10000_requests(weights: tuple[float]) -> None:
    picker = SmoothWeighted(weights)
    counts = Counter(picker.pick() for _ in range(10_000))
    for index, weight in enumerate(weights):
        assert abs(counts[index] / 100 - weight) <= 1.0


def test_weighted_split_spreads_a_small_arm_evenly() -> None:
    picker = SmoothWeighted([90.0, 10.0])
    picks = [picker.pick() for _ in range(100)]
    assert picks.count(1) == 10
    # Never two canary requests in a row: the canary's share is spread, not bunched.
    assert all(not (a == b == 1) for a, b in itertools.pairwise(picks))


def test_an_arm_of_weight_zero_gets_no_request() -> None:
    picker = SmoothWeighted([100.0, 0.0])
    assert {picker.pick() for _ in range(1000)} == {0}


def test_a_sampler_takes_its_share_evenly() -> None:
    sampler = Sampler(0.25)
    taken = [sampler.take() for _ in range(1000)]
    assert sum(taken) == 250
    assert Sampler(1.0).take()


async def one_per_turn(router: DeploymentRouter, call: InferenceRequest) -> InferenceResult:
    """``call`` answered alone in its event loop turn, as under light load."""
    await asyncio.sleep(0)
    return await router.infer(call)


async def in_turns(router: DeploymentRouter, requests: int, per_turn: int) -> list[list[str]]:
    """The arms that answered ``requests`` requests arriving ``per_turn`` at a time (a
    worker reading that many at once), turn by turn."""
    turns = []
    for start in range(0, requests, per_turn):
        calls = [request(str(i)) for i in range(start, min(start + per_turn, requests))]
        results = await asyncio.gather(*(router.infer(call) for call in calls))
        turns.append([result.arm or "" for result in results])
        await asyncio.sleep(0)
    return turns


def test_requests_read_together_go_to_one_arm_and_the_split_holds() -> None:
    router = DeploymentRouter("churn", [live("champion", 90, 3), live("canary", 10, 4)])
    turns = asyncio.run(in_turns(router, 10_000, 27))
    # every turn's requests answered by one arm: each arm's model batches them together
    assert all(len(set(arms)) == 1 for arms in turns)
    counts = Counter(arm for arms in turns for arm in arms)
    assert abs(counts["canary"] / 100 - 10.0) <= 1.0
    assert abs(counts["champion"] / 100 - 90.0) <= 1.0


def test_a_router_outliving_its_event_loop_keeps_its_split_in_the_next_one() -> None:
    """A loop that stops mid-turn never lets its held pick go; the next loop's turns
    are split again all the same."""
    router = DeploymentRouter("churn", [live("champion", 90, 3), live("canary", 10, 4)])
    dead = asyncio.new_event_loop()
    asyncio.events._set_running_loop(dead)  # a pick inside it, then it closes unrun
    try:
        assert router.pick(request("first")).name == "champion"  # held until its let-go
    finally:
        asyncio.events._set_running_loop(None)
        dead.close()
    turns = asyncio.run(in_turns(router, 10_000, 27))
    counts = Counter(arm for arms in turns for arm in arms)
    assert abs(counts["canary"] / 100 - 10.0) <= 1.0
    assert sum(len(set(arms)) == 1 for arms in turns) >= len(turns) - 3


def test_a_turn_holds_its_arm_for_at_most_a_bounded_number_of_requests() -> None:
    router = DeploymentRouter("churn", [live("champion", 50, 3), live("canary", 50, 4)])

    async def run() -> Counter[str | None]:
        # one caller awaiting request after request without yielding: one long turn
        return Counter([(await router.infer(request(str(i)))).arm for i in range(1000)])

    arms = asyncio.run(run())
    assert abs(arms["canary"] - 500) <= HELD_PER_TURN


def test_router_splits_requests_by_weight_and_labels_the_arm() -> None:
    router = DeploymentRouter("churn", [live("champion", 90, 3), live("canary", 10, 4)])

    async def run() -> list[InferenceResult]:
        return [await one_per_turn(router, request(str(i))) for i in range(1000)]

    results = asyncio.run(run())
    arms = Counter(result.arm for result in results)
    assert arms == {"champion": 900, "canary": 100}
    assert {(r.arm, r.version) for r in results} == {("champion", 3), ("canary", 4)}
    assert {r.deployment for r in results} == {"churn"}


def keys(n: int) -> list[str]:
    return [f"user-{i}" for i in range(n)]


def test_sticky_keys_keep_their_arm_and_share_by_weight() -> None:
    arms = [("champion", 50.0), ("challenger", 50.0)]
    first = [rendezvous(key, arms) for key in keys(10_000)]
    again = [rendezvous(key, arms) for key in keys(10_000)]
    assert first == again
    assert abs(first.count(1) / 100 - 50.0) <= 2.0


def test_changing_weights_moves_only_the_keys_the_change_requires() -> None:
    before = [rendezvous(k, [("champion", 50.0), ("challenger", 50.0)]) for k in keys(10_000)]
    after = [rendezvous(k, [("champion", 70.0), ("challenger", 30.0)]) for k in keys(10_000)]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    # Only keys of the arm that shrank move, all to the arm that grew...
    assert {pair for pair in moved} == {(1, 0)}
    # ... and only about the 20% of keys the change requires (a re-shuffle moves ~50%).
    assert 1700 <= len(moved) <= 2300
    assert abs(after.count(1) / 100 - 30.0) <= 2.0


def test_adding_an_arm_takes_keys_only_from_the_others_in_proportion() -> None:
    before = [rendezvous(k, [("a", 50.0), ("b", 50.0)]) for k in keys(10_000)]
    after = [rendezvous(k, [("a", 40.0), ("b", 40.0), ("c", 20.0)]) for k in keys(10_000)]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert {a for _, a in moved} == {2}  # every key that moves goes to the new arm
    assert 1700 <= len(moved) <= 2300


def test_sticky_key_from_a_header_or_a_field() -> None:
    header = parse_sticky("header:X-User-ID")
    assert sticky_key(header, request(headers=((b"x-user-id", b"u-42"),))) == "u-42"
    assert sticky_key(header, request()) is None
    field = parse_sticky("field:customer")
    table = TableInputs(["age", "customer"], np.array([[31, "c-7"], [40, "c-8"]], dtype=object))
    assert sticky_key(field, request(inputs=table)) == "c-7"
    named = NamedInputs({"customer": Tensor(np.array([1234, 5]))})
    assert sticky_key(field, request(inputs=named)) == "1234"
    assert sticky_key(field, request()) is None


def test_sticky_router_gives_one_caller_one_arm_and_falls_back_to_weights() -> None:
    router = DeploymentRouter(
        "churn",
        [live("champion", 50, 3), live("challenger", 50, 4)],
        sticky=parse_sticky("header:X-User-ID"),
    )

    async def run() -> tuple[set[str | None], Counter[str | None]]:
        pinned = request(headers=((b"x-user-id", b"alice"),))
        same = {(await router.infer(pinned)).arm for _ in range(50)}
        keyless = Counter([(await one_per_turn(router, request())).arm for _ in range(100)])
        return same, keyless

    same, keyless = asyncio.run(run())
    assert len(same) == 1
    assert keyless == {"champion": 50, "challenger": 50}


def shadow_router(shadow: Answering, queue: ShadowQueue, sample: float = 1.0) -> DeploymentRouter:
    version = Version()
    return DeploymentRouter(
        "churn",
        [live("champion", 100, 3)],
        shadows=[(ShadowArm("shadow", shadow, version), sample)],
        queue=queue,
    )


def test_a_failing_or_slow_shadow_never_reaches_the_caller() -> None:
    failing = Answering(5, error=RuntimeError("shadow crashed"))
    slow = Answering(6, delay=0.2)

    async def run() -> tuple[list[InferenceResult], list[str], list[str]]:
        drops: list[tuple[str, str]] = []
        queue = ShadowQueue("churn", lambda d, a: drops.append((d, a)))
        version = Version()
        router = DeploymentRouter(
            "churn",
            [live("champion", 100, 3)],
            shadows=[
                (ShadowArm("shadow-5", failing, version), 1.0),
                (ShadowArm("shadow-6", slow, version), 1.0),
            ],
            queue=queue,
        )
        results = [await router.infer(request(f"r{i}")) for i in range(5)]
        # Every caller was answered before the slow shadow answered any copy.
        assert slow.seen == [] or len(slow.seen) <= 5
        await queue.close()  # waits for the copies being sent
        assert version.holders == 0
        assert drops == []
        return results, failing.seen, slow.seen

    results, failed_copies, slow_copies = asyncio.run(run())
    assert [(r.arm, r.version) for r in results] == [("champion", 3)] * 5
    assert failed_copies == [f"r{i}" for i in range(5)]  # same request ids as the callers'
    assert slow_copies == [f"r{i}" for i in range(5)]


def test_a_full_shadow_queue_drops_copies_and_counts_them() -> None:
    slow = Answering(5, delay=0.05)

    async def run() -> tuple[list[InferenceResult], list[tuple[str, str]], ShadowQueue]:
        drops: list[tuple[str, str]] = []
        queue = ShadowQueue("churn", lambda d, a: drops.append((d, a)), size=2, concurrency=1)
        router = shadow_router(slow, queue)
        results = [await router.infer(request(f"r{i}")) for i in range(10)]
        await queue.close()
        return results, drops, queue

    results, drops, queue = asyncio.run(run())
    assert len(results) == 10
    assert queue.dropped == len(drops) == 8  # two queued; the rest dropped at once
    assert set(drops) == {("churn", "shadow")}


def test_a_shadow_gets_its_sample_of_the_requests() -> None:
    shadow = Answering(5)

    async def run() -> None:
        queue = ShadowQueue("churn", lambda d, a: None)
        router = shadow_router(shadow, queue, sample=0.5)
        for i in range(100):
            await router.infer(request(f"r{i}"))
        await asyncio.sleep(0.05)
        await queue.close()

    asyncio.run(run())
    assert len(shadow.seen) == 50


def test_router_holds_every_version_it_may_reach() -> None:
    champion, canary = live("champion", 90, 3), live("canary", 10, 4)
    router = DeploymentRouter("churn", [champion, canary])
    router.acquire()
    assert isinstance(champion.version, Version) and isinstance(canary.version, Version)
    assert (champion.version.holders, canary.version.holders) == (1, 1)
    router.release()
    assert (champion.version.holders, canary.version.holders) == (0, 0)


def test_a_version_asked_for_by_number_gets_only_its_arm() -> None:
    router = DeploymentRouter("churn", [live("champion", 90, 3), live("canary", 10, 4)])
    only = router.for_version("4")
    assert only is not None and router.for_version("7") is None

    async def run() -> set[str | None]:
        return {(await only.infer(request())).arm for _ in range(20)}

    assert asyncio.run(run()) == {"canary"}
