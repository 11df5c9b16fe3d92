"""``modelport deploy rollout|pause|resume|abort|progress|controller``: progressive rollouts.

With ``MODELPORT_REGISTRY_URL`` set, the control plane there acts (``cli.rollout_driver``):
this command keeps the clock and asks it for one controller tick every poll.

``rollout`` puts a version on the first step as the deployment's canary and, unless
``--detach``, drives it in the foreground until it is promoted, rolled back or paused.
``controller`` drives every rollout of the registry until stopped (one is enough for
any number of serving replicas; more may run, a lease per rollout keeps them from
acting twice). Exit codes of the foreground commands: 0 promoted, 1 rolled back,
aborted or an error, 3 paused (inconclusive: ``resume`` or ``abort`` it).

The commands are attached to the ``deploy`` group by ``attach``.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from modelport.cli.output import print_fields, print_json, print_table
from modelport.cli.state import json_option, state

if TYPE_CHECKING:
    from modelport.cli.rollout_driver import Outcome, Rollouts
    from modelport.domain.rollout_plan import RolloutState

EXIT_PAUSED = 3
reason_option = click.option("--reason", help="Why (recorded in the audit trail).")
detach_option = click.option(
    "--detach",
    is_flag=True,
    help="Only record it; a running `modelport deploy controller` drives the rollout.",
)
_REMOTE = (
    "With MODELPORT_REGISTRY_URL (and MODELPORT_API_KEY) set, the control plane there "
    "acts, audited under the key's name; following and `deploy controller` keep the clock "
    "here and ask it for one controller tick every poll (a lease per caller keeps two "
    "callers from deciding the same step twice)."
)


def attach(group: click.Group) -> None:
    """Add the rollout commands to the ``deploy`` group."""
    for command in (rollout, pause, resume, abort, progress, controller):
        group.add_command(command)


@click.command("rollout", epilog=_REMOTE)
@click.argument("name")
@click.option("--version", "version", type=int, required=True, help="The version to roll out.")
@click.option("--model", help="The version's model (default: the champion's).")
@click.option("--steps", help="The canary's weight at each step, e.g. 5,25,50,100.")
@click.option("--interval", help="Time between two checks, e.g. 60s.  [default: rollout.interval]")
@click.option("--bake", help="Least time a step runs before it may advance.  [default: interval]")
@click.option("--min-requests", type=click.IntRange(min=1), help="Requests per arm to judge.")
@click.option("--max-failures", type=click.IntRange(min=1), help="Failed checks that roll back.")
@click.option("--max-wait", help="Longest a step waits for data before pausing, e.g. 30m.")
@reason_option
@detach_option
@json_option
def rollout(
    name: str,
    *,
    version: int,
    model: str | None,
    steps: str | None,
    interval: str | None,
    bake: str | None,
    min_requests: int | None,
    max_failures: int | None,
    max_wait: str | None,
    reason: str | None,
    detach: bool,
    as_json: bool,
) -> None:
    """Roll VERSION out on deployment NAME step by step: after each step's bake time and
    enough requests, compare the canary with the champion (error rate, p99 latency, live
    accuracy, drift share) and advance, roll back, or pause for a person. Options left
    out come from the [rollout] section of the config. Exit code: 0 promoted, 1 rolled
    back or aborted, 3 paused (inconclusive)."""
    from modelport.rollout.policy import PlanOptions, plan_from_settings

    cli_state = state()
    options = PlanOptions(steps, interval, bake, min_requests, max_failures, max_wait)
    plan = plan_from_settings(cli_state.settings.rollout, options)
    with _rollouts() as driver:
        started = driver.start(name, version, plan, model, reason)
        _show_started(started, as_json=as_json, detach=detach)
        if not detach:
            _follow(driver, name, as_json=as_json)


@click.command("resume", epilog=_REMOTE)
@click.argument("name")
@reason_option
@detach_option
@json_option
def resume(name: str, *, reason: str | None, detach: bool, as_json: bool) -> None:
    """Resume the paused rollout of deployment NAME (its failures forgotten, its step
    judged afresh) and, unless --detach, drive it in the foreground. A running rollout
    whose controller stopped is driven again from where it was."""
    with _rollouts() as driver:
        resumed = driver.change("resume", name, reason)
        if detach:
            _show_state(resumed, as_json=as_json)
            return
        if not as_json:
            click.echo(f"{name}: {resumed.message}")
        _follow(driver, name, as_json=as_json)


@click.command("abort", epilog=_REMOTE)
@click.argument("name")
@reason_option
@json_option
def abort(name: str, *, reason: str | None, as_json: bool) -> None:
    """Stop the rollout of deployment NAME and send all its traffic back to the champion."""
    with _rollouts() as driver:
        _show_state(driver.change("abort", name, reason), as_json=as_json)


@click.command("pause", epilog=_REMOTE)
@click.argument("name")
@reason_option
@json_option
def pause(name: str, *, reason: str | None, as_json: bool) -> None:
    """Hold the running rollout of deployment NAME at its step: the canary keeps its
    weight and no controller decides until `modelport deploy resume NAME`."""
    with _rollouts() as driver:
        _show_state(driver.change("pause", name, reason), as_json=as_json)


@click.command("progress", epilog=_REMOTE)
@click.argument("name")
@json_option
def progress(name: str, *, as_json: bool) -> None:
    """Show the rollout of deployment NAME: its status, step and latest decisions."""
    with _rollouts() as driver:
        found = driver.status(name)
    _show_state(found, as_json=as_json)


@click.command("controller", epilog=_REMOTE)
@click.option("--once", is_flag=True, help="Look at every rollout once and exit.")
@click.option("--poll", help="Time between two looks, e.g. 2s.  [default: rollout.poll_interval]")
@json_option
def controller(*, once: bool, poll: str | None, as_json: bool) -> None:
    """Drive every rollout in the registry until Ctrl+C or SIGTERM: check each canary when
    its interval is up, advance, roll back or pause it. A restarted controller resumes
    where the last one stopped; several may run (a lease per rollout in the database)."""
    from modelport.config import parse_duration

    settings = state().settings
    try:
        every = parse_duration(poll) if poll is not None else settings.rollout.poll_interval
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--poll") from None
    report = _reporter(as_json=as_json, quiet_waits=True)
    with _rollouts() as driver:
        if once:
            driver.once(report)
            return
        if not as_json:
            click.echo(f"driving rollouts, looking every {every.total_seconds():g}s; Ctrl+C stops")
        with _stopping() as stop:
            driver.run(stop, every, report)


# ------------------------------------------------------------------------- helpers


@contextmanager
def _rollouts() -> Iterator[Rollouts]:
    from modelport.cli.rollout_driver import rollouts

    cli_state = state()
    with rollouts(cli_state.settings, cli_state.registry()) as driver:
        yield driver


@contextmanager
def _stopping() -> Iterator[threading.Event]:
    """An event set by SIGTERM or Ctrl+C."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield stop
    except KeyboardInterrupt:
        stop.set()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _follow(driver: Rollouts, name: str, *, as_json: bool) -> None:
    from modelport.domain.rollout_plan import RolloutStatus

    settings = state().settings
    final: RolloutState | None = None
    with _stopping() as stop:
        final = driver.follow(
            name, stop, settings.rollout.poll_interval, _reporter(as_json=as_json)
        )
    if final is None or final.status is RolloutStatus.RUNNING:
        if not as_json:
            click.echo(
                f"stopped following; the rollout of {name} is still running: "
                f"`modelport deploy resume {name}` or `modelport deploy controller` drives it"
            )
        return
    if as_json:  # the last of the JSON lines: the final state
        click.echo(json.dumps(final.to_dict(), default=str))
    else:
        _show_state(final, as_json=False)
    if final.status is RolloutStatus.PAUSED:
        click.get_current_context().exit(EXIT_PAUSED)
    if final.status is not RolloutStatus.PROMOTED:
        click.get_current_context().exit(1)


def _reporter(*, as_json: bool, quiet_waits: bool = False) -> Callable[[Outcome], None]:
    """Prints each decision (a JSON line under --json) and each new waiting message."""
    last: dict[str, str] = {}

    def report(outcome: Outcome) -> None:
        note = outcome.state.message if outcome.state is not None else outcome.note
        if outcome.decision is None and (quiet_waits or last.get(outcome.deployment) == note):
            return
        last[outcome.deployment] = note
        if as_json:
            click.echo(json.dumps(outcome.to_dict(), default=str))
        else:
            click.echo(f"{outcome.deployment}: {note}")

    return report


def _show_started(started: RolloutState, *, as_json: bool, detach: bool) -> None:
    if as_json:
        if detach:
            print_json(started.to_dict())
        return
    steps = ",".join(f"{step:g}" for step in started.plan.steps)
    click.echo(
        f"{started.deployment}: rolling out {started.model}/{started.version} over steps "
        f"{steps}, {started.weight:g}% now"
        + ("; `modelport deploy controller` drives it" if detach else "")
    )


def _show_state(found: RolloutState, *, as_json: bool) -> None:
    if as_json:
        print_json(found.to_dict())
        return
    plan = found.plan
    print_fields(
        [
            ("deployment", found.deployment),
            ("candidate", f"{found.model}/{found.version}"),
            ("champion", f"{found.champion[0]}/{found.champion[1]}"),
            ("status", found.status.value),
            ("step", f"{found.step + 1} of {len(plan.trial_steps)} at {found.weight:g}%"),
            ("steps", ",".join(f"{step:g}" for step in plan.steps)),
            ("failures", f"{found.failures} of {plan.max_failures}"),
            ("message", found.message),
        ]
    )
    rows = [_decision_row(d) for d in found.decisions]
    if rows:
        print_table(None, ["time", "weight", "verdict", "reason"], rows)


def _decision_row(decision: dict[str, Any] | Any) -> list[Any]:
    return [
        str(decision.get("time", ""))[:19],
        f"{decision.get('weight', 0):g}%",
        decision.get("verdict", ""),
        decision.get("reason", ""),
    ]
