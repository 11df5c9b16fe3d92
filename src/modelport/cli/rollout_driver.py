"""Who drives ``modelport deploy rollout|pause|resume|abort|progress|controller``: the
rollout controller over the database (``LocalRollouts``), or the control plane at
``MODELPORT_REGISTRY_URL`` (``RemoteRollouts``), which evaluates each tick the CLI asks
for. Both give the commands the same states and outcomes, so the output is the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from modelport.domain.rollout_plan import RolloutPlan, RolloutState, RolloutStatus
from modelport.errors import StoreUnavailableError

if TYPE_CHECKING:
    from modelport.client import RegistryClient
    from modelport.config import Settings
    from modelport.registry.service import RegistryService
    from modelport.rollout.controller import RolloutController


class Outcome(Protocol):
    """One tick: ``StepOutcome`` here, ``RemoteOutcome`` over the URL."""

    @property
    def deployment(self) -> str: ...
    @property
    def state(self) -> RolloutState | None: ...
    @property
    def decision(self) -> object | None: ...
    @property
    def note(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...


Report = Callable[[Outcome], None]


class Rollouts(Protocol):
    """What the rollout commands call."""

    def start(
        self, name: str, version: int, plan: RolloutPlan, model: str | None, reason: str | None
    ) -> RolloutState: ...
    def change(self, verb: str, name: str, reason: str | None) -> RolloutState: ...
    def status(self, name: str) -> RolloutState: ...
    def follow(
        self, name: str, stop: threading.Event, poll: timedelta, report: Report
    ) -> RolloutState | None: ...
    def run(self, stop: threading.Event, poll: timedelta, report: Report) -> None: ...
    def once(self, report: Report) -> None: ...


class LocalRollouts:
    """The controller over the database (no ``MODELPORT_REGISTRY_URL``)."""

    def __init__(self, controller: RolloutController) -> None:
        self.controller = controller

    def start(
        self, name: str, version: int, plan: RolloutPlan, model: str | None, reason: str | None
    ) -> RolloutState:
        """``rollout.commands.start_rollout``."""
        from modelport.rollout.commands import start_rollout

        return start_rollout(self.controller, name, version, plan, model=model, reason=reason)

    def change(self, verb: str, name: str, reason: str | None) -> RolloutState:
        """pause, resume or abort (``rollout.commands``)."""
        from modelport.rollout import commands

        command = {
            "pause": commands.pause_rollout,
            "resume": commands.resume_rollout,
            "abort": commands.abort_rollout,
        }[verb]
        return command(self.controller, name, reason=reason)

    def status(self, name: str) -> RolloutState:
        """The stored rollout (``NotFoundError`` when none)."""
        from modelport.rollout.commands import rollout_status

        return rollout_status(self.controller, name)

    def follow(
        self, name: str, stop: threading.Event, poll: timedelta, report: Report
    ) -> RolloutState | None:
        """``RolloutController.follow``."""
        return self.controller.follow(name, stop, poll=poll, report=report)

    def run(self, stop: threading.Event, poll: timedelta, report: Report) -> None:
        """``RolloutController.run``."""
        self.controller.run(stop, poll=poll, report=report)

    def once(self, report: Report) -> None:
        """One tick of every rollout, then the leases given up."""
        try:
            for outcome in self.controller.tick_all():
                report(outcome)
        finally:
            self.controller.release_all()


class RemoteRollouts:
    """The control plane: this CLI keeps the clock and asks for one tick per poll,
    under a lease owner of its own (so two CLIs never decide the same step twice)."""

    def __init__(self, client: RegistryClient) -> None:
        from modelport.rollout.controller import default_owner

        self.client = client
        self.owner = default_owner()

    def start(
        self, name: str, version: int, plan: RolloutPlan, model: str | None, reason: str | None
    ) -> RolloutState:
        """``RegistryClient.start_rollout``."""
        return self.client.start_rollout(name, version, plan, model=model, reason=reason)

    def change(self, verb: str, name: str, reason: str | None) -> RolloutState:
        """pause, resume or abort on the control plane."""
        client = self.client
        command = {
            "pause": client.pause_rollout,
            "resume": client.resume_rollout,
            "abort": client.abort_rollout,
        }[verb]
        return command(name, reason=reason)

    def status(self, name: str) -> RolloutState:
        """``RegistryClient.rollout_status``."""
        return self.client.rollout_status(name)

    def follow(
        self, name: str, stop: threading.Event, poll: timedelta, report: Report
    ) -> RolloutState | None:
        """Tick ``name`` every ``poll`` until its rollout is no longer running (as
        ``RolloutController.follow``); a control plane out of reach is reported and
        asked again."""
        state: RolloutState | None = None
        try:
            while not stop.is_set():
                try:
                    outcome = self.client.tick_rollout(name, owner=self.owner)
                except StoreUnavailableError as exc:
                    report(_note(name, state, f"error: {exc.message}"))
                    stop.wait(poll.total_seconds())
                    continue
                state = outcome.state
                report(outcome)
                if state is None or state.status is not RolloutStatus.RUNNING:
                    break
                stop.wait(poll.total_seconds())
        finally:
            self._release(name)
        return state

    def run(self, stop: threading.Event, poll: timedelta, report: Report) -> None:
        """Tick every rollout every ``poll`` until ``stop`` is set; the leases given up."""
        try:
            while not stop.is_set():
                self._tick_all(report)
                stop.wait(poll.total_seconds())
        finally:
            self._release(None)

    def once(self, report: Report) -> None:
        """One tick of every rollout, then the leases given up."""
        try:
            self._tick_all(report)
        finally:
            self._release(None)

    def _tick_all(self, report: Report) -> None:
        try:
            outcomes: list[Any] = self.client.tick_rollouts(owner=self.owner)
        except StoreUnavailableError as exc:  # as tick_all reports an unreachable database
            outcomes = [_note("*", None, f"error: {exc.message}")]
        for outcome in outcomes:
            report(outcome)

    def _release(self, name: str | None) -> None:
        with suppress(StoreUnavailableError):  # out of reach: the leases lapse by themselves
            self.client.release_rollouts(owner=self.owner, name=name)


@contextmanager
def rollouts(settings: Settings, registry: RegistryService | RegistryClient) -> Iterator[Rollouts]:
    """The driver for ``registry``: the control plane's when it is a ``RegistryClient``,
    else a controller built from ``settings`` (closed at the end)."""
    from modelport.client import RegistryClient

    if isinstance(registry, RegistryClient):
        yield RemoteRollouts(registry)
        return
    from modelport.rollout.factory import build_controller

    controller = build_controller(settings, registry)
    try:
        yield LocalRollouts(controller)
    finally:
        controller.close()  # deliver the decisions still queued for the webhooks


def _note(deployment: str, state: RolloutState | None, note: str) -> Outcome:
    """An outcome made here: the control plane could not be asked."""
    from modelport.rollout.controller import StepOutcome

    return StepOutcome(deployment, state, note=note)
