"""The rollout controller over each metadata back end (memory, SQLite, real PostgreSQL):
steps advance, a worse canary rolls back, a rollout without data pauses for a person,
every decision is audited with its numbers and emitted, a restarted controller resumes,
a lease keeps a second controller out."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelport.config import RolloutWebhook
from modelport.domain.deployments import Arm
from modelport.domain.entities import ModelVersion
from modelport.domain.gates import GateOutcome, GateReport, GateResult
from modelport.domain.rollout_plan import RolloutPlan, RolloutStatus
from modelport.errors import (
    ConflictError,
    DeploymentNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    VersionNotFoundError,
)
from modelport.registry.service import RegistryService
from modelport.rollout.commands import abort_rollout, resume_rollout, start_rollout
from modelport.rollout.controller import EVENT, RolloutController, StepOutcome
from modelport.rollout.decision import ArmNumbers, decide
from modelport.rollout.notify import DecisionNotifier
from modelport.rollout.transitions import transition
from modelport.webhooks.sending import SIGNATURE_HEADER, signature
from testing_webhook import LOOPBACK, webhook_receiver

from .test_deployments import add_versions

START = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
PLAN = RolloutPlan(
    steps=(5, 25, 50, 100),
    interval=MINUTE,
    bake=MINUTE,
    min_requests=100,
    max_failures=2,
    max_wait=timedelta(minutes=10),
)


@dataclass
class Clock:
    """A clock the test moves."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta = MINUTE) -> None:
        self.now += by


@dataclass
class Numbers:
    """Arm numbers as the test sets them, per version; every window asked is kept."""

    by_version: dict[int, ArmNumbers] = field(default_factory=dict)
    asked: list[tuple[str, tuple[str, ...], datetime, datetime]] = field(default_factory=list)

    def __call__(
        self, deployment: str, arms: Sequence[Arm], *, since: datetime, until: datetime
    ) -> Mapping[str, ArmNumbers]:
        self.asked.append((deployment, tuple(a.name for a in arms), since, until))
        return {a.name: replace(self.by_version[a.version], arm=a.name) for a in arms}


def good(version: int, requests: int = 1000) -> ArmNumbers:
    return ArmNumbers("", version, requests=requests, errors=1, latency_p99_ms=20.0)


def bad(version: int) -> ArmNumbers:
    return ArmNumbers("", version, requests=1000, errors=100, latency_p99_ms=20.0)


@dataclass
class Setup:
    registry: RegistryService
    clock: Clock
    numbers: Numbers
    events: list[tuple[str, Mapping[str, Any]]]

    def controller(self, owner: str = "one") -> RolloutController:
        return RolloutController(
            self.registry, self.numbers, owner=owner, clock=self.clock, lease_ttl=MINUTE / 2
        )

    def arms(self) -> list[tuple[str, int, float]]:
        found = self.registry.get_deployment("churn")
        return [(a.name, a.version, a.weight) for a in found.arms]

    def actions(self) -> list[str]:
        return [e.action for e in reversed(self.registry.deployment_history("churn"))]


@pytest.fixture
def setup(registry: RegistryService) -> Setup:
    clock = Clock()
    heard: list[tuple[str, Mapping[str, Any]]] = []
    registry.context.clock = clock
    registry.context.on_event = lambda event, payload: heard.append((event, payload))
    add_versions(registry, "churn", 4)
    registry.create_deployment("churn", 3)
    numbers = Numbers({3: good(3, 20_000), 4: good(4)})
    return Setup(registry, clock, numbers, heard)


def decided(setup: Setup) -> list[Mapping[str, Any]]:
    return [payload for event, payload in setup.events if event == EVENT]


def test_a_good_canary_goes_step_by_step_to_champion(setup: Setup) -> None:
    controller = setup.controller()
    started = start_rollout(controller, "churn", 4, PLAN, reason="new features")
    assert started.status is RolloutStatus.RUNNING
    assert setup.arms() == [("champion", 3, 95.0), ("canary", 4, 5.0)]

    outcome = controller.tick("churn")  # the first check is one interval away
    assert outcome.decision is None and "next check" in outcome.note
    weights = []
    for _ in range(3):
        setup.clock.advance()
        outcome = controller.tick("churn")
        assert outcome.decision is not None and outcome.decision.verdict.value == "advance"
        weights.append(setup.arms())
    assert weights[:2] == [
        [("champion", 3, 75.0), ("canary", 4, 25.0)],
        [("champion", 3, 50.0), ("canary", 4, 50.0)],
    ]
    assert setup.arms() == [("champion", 4, 100.0)]
    state = controller.state("churn")
    assert state is not None and state.status is RolloutStatus.PROMOTED and state.applied
    assert setup.actions() == [
        "deployment.create", "rollout.start", "rollout.advance", "rollout.advance",
        "rollout.promote", "deployment.promote",
    ]  # fmt: skip
    # each step's numbers cover that step only, from its start to the check
    assert [(since, until) for *_, since, until in setup.numbers.asked] == [
        (START, START + MINUTE), (START + MINUTE, START + 2 * MINUTE),
        (START + 2 * MINUTE, START + 3 * MINUTE),
    ]  # fmt: skip
    verdicts = [(p["decision"] or {}).get("verdict") for p in decided(setup)]
    assert verdicts == [None, "advance", "advance", "advance"]  # start, then three checks
    assert decided(setup)[-1]["status"] == "promoted"


def test_each_decision_is_audited_with_its_numbers(setup: Setup) -> None:
    controller = setup.controller()
    start_rollout(controller, "churn", 4, PLAN)
    setup.clock.advance()
    controller.tick("churn")
    advance = setup.registry.deployment_history("churn")[0]
    assert advance.action == "rollout.advance"
    decision = advance.details["decision"]
    assert decision["canary"]["requests"] == 1000 and decision["champion"]["requests"] == 20_000
    assert {c["name"]: c["outcome"] for c in decision["checks"]}["error_rate"] == "passed"
    audit = setup.registry.get_audit_log(limit=1)[0]
    assert audit.action == "rollout.advance" and audit.target == "deployment:churn"


def test_a_worse_canary_holds_once_then_rolls_back(setup: Setup) -> None:
    setup.numbers.by_version[4] = bad(4)  # 10% errors against 0.005%
    controller = setup.controller()
    start_rollout(controller, "churn", 4, PLAN)
    setup.clock.advance()
    held = controller.tick("churn")
    assert held.state is not None and held.state.failures == 1
    assert setup.arms() == [("champion", 3, 95.0), ("canary", 4, 5.0)]
    setup.clock.advance()
    rolled = controller.tick("churn")
    assert rolled.state is not None and rolled.state.status is RolloutStatus.ROLLED_BACK
    assert setup.arms() == [("champion", 3, 100.0)]  # the last good champion, alone
    assert setup.actions()[-2:] == ["rollout.hold", "rollout.rollback"]
    rollback = setup.registry.deployment_history("churn")[0]
    assert "error rate 10.00%" in rollback.details["decision"]["reason"]
    assert decided(setup)[-1]["status"] == "rolled_back"


def test_without_enough_data_it_waits_then_pauses_for_a_person(setup: Setup) -> None:
    setup.numbers.by_version[4] = good(4, requests=3)
    controller = setup.controller()
    start_rollout(controller, "churn", 4, PLAN)
    for _ in range(9):
        setup.clock.advance()
        outcome = controller.tick("churn")
        assert outcome.state is not None and outcome.state.status is RolloutStatus.RUNNING
    assert setup.actions() == ["deployment.create", "rollout.start"]  # waits are not audited
    setup.clock.advance()
    paused = controller.tick("churn")
    assert paused.state is not None and paused.state.status is RolloutStatus.PAUSED
    assert "3 of the 100 requests" in paused.state.message
    assert setup.actions()[-1] == "rollout.pause"
    assert setup.arms() == [("champion", 3, 95.0), ("canary", 4, 5.0)]  # kept for a person

    setup.numbers.by_version[4] = good(4)
    resumed = resume_rollout(controller, "churn", reason="traffic is back")
    assert resumed.status is RolloutStatus.RUNNING and resumed.failures == 0
    setup.clock.advance()
    assert controller.tick("churn").state.weight == 25.0  # type: ignore[union-attr]
    assert setup.actions()[-2:] == ["rollout.resume", "rollout.advance"]


def test_abort_sends_everything_back_to_the_champion(setup: Setup) -> None:
    controller = setup.controller()
    start_rollout(controller, "churn", 4, PLAN)
    setup.clock.advance()
    controller.tick("churn")
    aborted = abort_rollout(controller, "churn", reason="business says no")
    assert aborted.status is RolloutStatus.ABORTED and aborted.applied
    assert setup.arms() == [("champion", 3, 100.0)]
    assert setup.actions()[-1] == "rollout.abort"
    assert decided(setup)[-1]["message"] == "aborted by alice: business says no"
    with pytest.raises(ConflictError, match="already ended: aborted"):
        abort_rollout(controller, "churn")
    with pytest.raises(ConflictError, match="nothing to resume"):
        resume_rollout(controller, "churn")
    assert controller.tick("churn").note == "the rollout is aborted"
    assert controller.tick_all() == []  # a finished rollout needs no controller


def test_a_restarted_controller_resumes_where_the_last_stopped(setup: Setup) -> None:
    first = setup.controller("first")
    start_rollout(first, "churn", 4, PLAN)
    setup.clock.advance()
    first.tick("churn")
    assert setup.arms()[1] == ("canary", 4, 25.0)
    # the first controller dies holding its lease; the next waits for it to lapse
    second = setup.controller("second")
    setup.clock.advance(timedelta(seconds=10))
    assert second.tick("churn").note == "another controller holds this rollout's lease"
    setup.clock.advance(timedelta(seconds=50))  # the lease (30 s) lapsed; the check is due
    outcome = second.tick("churn")
    assert outcome.decision is not None and outcome.state is not None
    assert outcome.state.weight == 50.0 and setup.arms()[1] == ("canary", 4, 50.0)


def test_a_decision_stored_but_not_applied_is_finished_by_the_next_controller(
    setup: Setup,
) -> None:
    first = setup.controller("first")
    start_rollout(first, "churn", 4, replace(PLAN, steps=(5, 100)))
    setup.clock.advance()
    # the first controller stored "promote" and died before the deployment followed
    loaded = first.records.load("churn")
    assert loaded is not None
    state, revision = loaded
    made = decide(state.plan, good(4), good(3, 20_000), in_step=MINUTE)
    first.records.save(transition(state, made, setup.clock()).state, expected_revision=revision)
    first.records.release("churn", "first")
    assert setup.arms()[0] == ("champion", 3, 95.0)
    outcome = setup.controller("second").tick("churn")
    assert outcome.state is not None and outcome.state.status is RolloutStatus.PROMOTED
    assert setup.arms() == [("champion", 4, 100.0)]


@dataclass
class RefusingGates:
    def guards(self, target: str) -> bool:
        return target == "production"

    def check(self, candidate: ModelVersion, target: str) -> GateReport:
        result = GateResult("holdout_metric", GateOutcome.FAILED, "accuracy 0.80 < 0.90", {})
        return GateReport(candidate.name, candidate.version, target, (result,), baseline=3)


def test_gates_refusing_the_promotion_pause_the_rollout(setup: Setup) -> None:
    setup.registry.context.gates = RefusingGates()
    controller = setup.controller()
    start_rollout(controller, "churn", 4, replace(PLAN, steps=(10, 100)))
    setup.clock.advance()
    outcome = controller.tick("churn")
    assert outcome.state is not None and outcome.state.status is RolloutStatus.PAUSED
    assert "promotion gates refused churn/4" in outcome.state.message
    assert setup.arms() == [("champion", 3, 90.0), ("canary", 4, 10.0)]
    assert setup.actions()[-2:] == ["rollout.promote", "rollout.pause"]
    last = decided(setup)[-1]  # one announcement: the decision, and where it ended
    assert last["status"] == "paused" and last["decision"]["verdict"] == "advance"
    assert [p["status"] for p in decided(setup)] == ["running", "paused"]


def test_a_canary_removed_by_hand_ends_the_rollout(setup: Setup) -> None:
    controller = setup.controller()
    start_rollout(controller, "churn", 4, PLAN)
    setup.registry.remove_arm("churn", "canary", reason="by hand")
    outcome = controller.tick("churn")
    assert outcome.state is not None and outcome.state.status is RolloutStatus.ABORTED
    assert "left deployment 'churn' outside the rollout" in outcome.state.message


def test_starting_checks_what_it_is_asked(setup: Setup) -> None:
    controller = setup.controller()
    with pytest.raises(DeploymentNotFoundError):
        start_rollout(controller, "nope", 4, PLAN)
    with pytest.raises(VersionNotFoundError):
        start_rollout(controller, "churn", 9, PLAN)
    with pytest.raises(InvalidArgumentError, match="already is the champion"):
        start_rollout(controller, "churn", 3, PLAN)
    with pytest.raises(NotFoundError, match="has no rollout"):
        resume_rollout(controller, "churn")
    start_rollout(controller, "churn", 4, PLAN)
    with pytest.raises(ConflictError, match="already has a candidate arm"):
        start_rollout(controller, "churn", 2, PLAN)


def test_a_new_rollout_may_follow_a_finished_one(setup: Setup) -> None:
    controller = setup.controller()
    start_rollout(controller, "churn", 4, PLAN)
    abort_rollout(controller, "churn")
    again = start_rollout(controller, "churn", 2, PLAN)
    assert again.version == 2 and setup.arms()[1] == ("canary", 2, 5.0)


def test_decisions_are_posted_signed_to_the_rollout_webhooks(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLLOUT_SECRET", "s3cret")
    with webhook_receiver(statuses=[503]) as receiver:
        hook = RolloutWebhook(url=receiver.url, secret_env="ROLLOUT_SECRET")
        controller = RolloutController(
            setup.registry,
            setup.numbers,
            notifier=DecisionNotifier([hook], policy=LOOPBACK, sleep=lambda _: None),
            clock=setup.clock,
        )
        start_rollout(controller, "churn", 4, PLAN)
        setup.clock.advance()
        controller.tick("churn")
        controller.close()
    assert len(receiver.requests) == 3  # the start (refused once, then accepted), the advance
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert [b["event"] for b in bodies] == [EVENT] * 3
    assert bodies[0] == bodies[1] and bodies[2]["decision"]["verdict"] == "advance"
    assert bodies[2]["weight"] == 25.0 and bodies[2]["decision"]["canary"]["requests"] == 1000
    for request in receiver.requests:
        assert request.headers[SIGNATURE_HEADER] == signature("s3cret", request.body)
    assert controller.notifier.delivered == 2 and controller.notifier.failed == 0


def test_the_long_running_controller_drives_a_rollout_to_the_end(setup: Setup) -> None:
    def real_time() -> datetime:
        return datetime.now(UTC)

    quick = replace(PLAN, interval=timedelta(milliseconds=10), bake=timedelta(0))
    controller = RolloutController(
        setup.registry, setup.numbers, owner="daemon", clock=real_time, lease_ttl=MINUTE
    )
    start_rollout(controller, "churn", 4, quick)
    stop = threading.Event()
    seen: list[StepOutcome] = []

    def report(outcome: StepOutcome) -> None:
        seen.append(outcome)
        if outcome.state is not None and not outcome.state.status.active:
            stop.set()

    runner = threading.Thread(
        target=controller.run, args=(stop,), kwargs={"poll": timedelta(milliseconds=5),
                                                     "report": report},
    )  # fmt: skip
    runner.start()
    runner.join()
    assert setup.arms() == [("champion", 4, 100.0)]
    assert [o.decision.verdict.value for o in seen if o.decision is not None] == [
        "advance", "advance", "advance",
    ]  # fmt: skip
    # its leases were given up when it stopped: another controller may act at once
    assert controller.records.acquire("churn", "next", MINUTE)


def test_a_refusing_webhook_never_stops_the_rollout(setup: Setup) -> None:
    with webhook_receiver(statuses=[500] * 10) as receiver:
        hook = RolloutWebhook(url=receiver.url, retries=1)
        controller = RolloutController(
            setup.registry,
            setup.numbers,
            notifier=DecisionNotifier([hook], policy=LOOPBACK, sleep=lambda _: None),
            clock=setup.clock,
        )
        start_rollout(controller, "churn", 4, PLAN)
        setup.clock.advance()
        assert controller.tick("churn").state.weight == 25.0  # type: ignore[union-attr]
        controller.close()
    assert len(receiver.requests) == 4  # two decisions, each tried twice
    assert controller.notifier.failed == 2 and controller.notifier.delivered == 0


def test_one_failing_rollout_does_not_stop_the_others(setup: Setup) -> None:
    add_versions(setup.registry, "fraud", 2)
    setup.registry.create_deployment("fraud", 1)

    def numbers(
        deployment: str, arms: Sequence[Arm], *, since: datetime, until: datetime
    ) -> Mapping[str, ArmNumbers]:
        if deployment == "fraud":
            raise OSError("a segment of the prediction log cannot be read")
        return setup.numbers(deployment, arms, since=since, until=until)

    controller = RolloutController(setup.registry, numbers, clock=setup.clock)
    start_rollout(controller, "churn", 4, PLAN)
    start_rollout(controller, "fraud", 2, PLAN)
    setup.clock.advance()
    outcomes = {o.deployment: o for o in controller.tick_all()}
    assert "cannot be read" in outcomes["fraud"].note
    assert outcomes["churn"].state is not None and outcomes["churn"].state.weight == 25.0
    assert controller.state("fraud").status is RolloutStatus.RUNNING  # type: ignore[union-attr]
