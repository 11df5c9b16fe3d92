"""``modelport deploy ...``: deployments, the named endpoints that split traffic between
model versions (champion, canary, A/B challengers, shadows).

Every change is one audited registry write that servers following the deployment pick
up within their poll interval. Commands that act on results or rollouts live in their
own modules and are added to this group the way ``cli.monitor`` adds its commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from modelport.cli.output import print_fields, print_json, print_table, short_time
from modelport.cli.state import json_option, state

if TYPE_CHECKING:
    from modelport.domain.deployments import Deployment, DeploymentEvent

reason_option = click.option(
    "--reason", help="Why (recorded in the audit trail and the deployment's history)."
)
model_option = click.option(
    "--model",
    help="The registered model whose VERSION this is (default: the deployment's name).",
)
version_option = click.option(
    "--version", "number", required=True, type=click.IntRange(min=1), help="The model version."
)


@click.group()
def deploy() -> None:
    """Deployments: a name clients call, answered by a champion version, with canaries,
    A/B challengers and shadows sharing its traffic. `modelport serve NAME` serves one."""


@deploy.command("create")
@click.argument("name")
@version_option
@model_option
@reason_option
@json_option
def create(name: str, number: int, model: str | None, reason: str | None, as_json: bool) -> None:
    """Create deployment NAME answered by --version (of --model, default NAME)."""
    deployment = state().registry().create_deployment(name, number, model=model, reason=reason)
    report(deployment, f"created deployment {name!r}", as_json=as_json)


@deploy.command("canary")
@click.argument("name")
@version_option
@click.option(
    "--weight", required=True, type=float, help="Percentage of the traffic (0-100), e.g. 10."
)
@model_option
@reason_option
@json_option
def canary(
    *,
    name: str,
    number: int,
    weight: float,
    model: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Put --version on --weight percent of NAME's traffic as the canary (replacing any
    canary or A/B challengers); the champion answers the rest."""
    deployment = state().registry().deploy_canary(name, number, weight, model=model, reason=reason)
    report(deployment, f"canary {number} on {weight:g}% of {name!r}", as_json=as_json)


@deploy.command("ab")
@click.argument("name")
@click.option(
    "--arms",
    "arms_text",
    required=True,
    metavar="VERSION:WEIGHT,...",
    help="The versions and their weights, adding up to 100: 3:50,4:50.",
)
@click.option(
    "--sticky",
    metavar="KIND:NAME",
    help="Keep each caller on one arm by a request header (header:X-User-ID) or an input "
    "field (field:customer_id).",
)
@model_option
@reason_option
@json_option
def ab(
    *,
    name: str,
    arms_text: str,
    sticky: str | None,
    model: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Split NAME's traffic between versions by weight (an A/B test). The champion's
    version stays champion if listed, else the first listed becomes it; the others are
    challengers. Shadows stay."""
    arms = parse_arms(arms_text)
    registry = state().registry()
    deployment = registry.deploy_ab(name, arms, sticky=sticky, model=model, reason=reason)
    report(deployment, f"A/B split of {name!r}", as_json=as_json)


@deploy.command("shadow")
@click.argument("name")
@version_option
@click.option(
    "--sample",
    required=True,
    type=float,
    help="The share of requests copied to it, above 0 and at most 1 (0.5: every other).",
)
@model_option
@reason_option
@json_option
def shadow(
    *,
    name: str,
    number: int,
    sample: float,
    model: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Copy a share of NAME's requests to --version: its answers are logged (and
    compared), never returned to callers."""
    deployment = state().registry().deploy_shadow(name, number, sample, model=model, reason=reason)
    report(deployment, f"shadow {number} on {sample:g} of {name!r}'s requests", as_json=as_json)


@deploy.command("set-weight")
@click.argument("name")
@click.argument("arm")
@click.argument("weight", type=float)
@reason_option
@json_option
def set_weight(name: str, arm: str, weight: float, reason: str | None, as_json: bool) -> None:
    """Set the WEIGHT (percent) of NAME's live ARM (canary, challenger, champion, ...);
    the champion, or the one other arm, takes up the difference."""
    deployment = state().registry().set_arm_weight(name, arm, weight, reason=reason)
    report(deployment, f"{arm} of {name!r} on {weight:g}%", as_json=as_json)


@deploy.command("remove-arm")
@click.argument("name")
@click.argument("arm")
@reason_option
@json_option
def remove_arm(name: str, arm: str, reason: str | None, as_json: bool) -> None:
    """Remove a canary, challenger or shadow ARM from NAME; its weight goes back to the
    champion."""
    deployment = state().registry().remove_arm(name, arm, reason=reason)
    report(deployment, f"removed {arm} from {name!r}", as_json=as_json)


@deploy.command("promote")
@click.argument("name")
@click.option("--arm", help="The candidate to promote, when there are several.")
@click.option(
    "--skip-gates",
    metavar="REASON",
    help="Promote without running the promotion gates; the reason is recorded.",
)
@reason_option
@json_option
def promote(
    name: str, arm: str | None, skip_gates: str | None, reason: str | None, as_json: bool
) -> None:
    """Make NAME's candidate the champion on all the traffic, after the gates guarding
    production pass for it. `deploy rollback` undoes it."""
    registry = state().registry()
    deployment = registry.promote_deployment(name, arm, skip_gates=skip_gates, reason=reason)
    champion = deployment.champion
    report(deployment, f"promoted {champion.ref} to champion of {name!r}", as_json=as_json)


@deploy.command("rollback")
@click.argument("name")
@reason_option
@json_option
def rollback(name: str, reason: str | None, as_json: bool) -> None:
    """Back to NAME's last good champion: drop its candidates, or, when it has none,
    undo the last promotion."""
    deployment = state().registry().rollback_deployment(name, reason=reason)
    report(deployment, f"rolled {name!r} back to {deployment.champion.ref}", as_json=as_json)


@deploy.command("show")
@click.argument("name")
@json_option
def show(name: str, as_json: bool) -> None:
    """Show deployment NAME: its arms, weights and sticky key."""
    report(state().registry().get_deployment(name), None, as_json=as_json)


@deploy.command("list")
@json_option
def list_deployments(as_json: bool) -> None:
    """List every deployment."""
    deployments = state().registry().list_deployments()
    if as_json:
        print_json([d.to_dict() for d in deployments])
        return
    rows = [
        (d.name, d.revision, arms_summary(d), d.sticky.describe() if d.sticky else "",
         short_time(d.updated_at), d.updated_by)
        for d in deployments
    ]  # fmt: skip
    print_table(None, ["name", "revision", "arms", "sticky", "updated", "by"], rows)


@deploy.command("history")
@click.argument("name")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@json_option
def history(name: str, limit: int, as_json: bool) -> None:
    """NAME's changes, newest first: who, when, why, and the arms after each."""
    events = state().registry().deployment_history(name, limit)
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    rows = [
        (short_time(e.timestamp), e.revision, e.action.removeprefix("deployment."), e.actor,
         e.reason or "", _spec_summary(e))
        for e in events
    ]  # fmt: skip
    print_table(None, ["time", "revision", "action", "actor", "reason", "arms"], rows)


@deploy.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@reason_option
@json_option
def delete(name: str, yes: bool, reason: str | None, as_json: bool) -> None:
    """Delete deployment NAME (its history stays). Servers following it stop answering
    on its name at their next poll."""
    registry = state().registry()
    registry.get_deployment(name)  # not found: say so before asking
    if not yes:
        click.confirm(f"delete deployment {name!r}?", abort=True, err=as_json)
    registry.delete_deployment(name, reason=reason)
    if as_json:
        print_json({"deleted": {"deployment": name}})
    else:
        click.echo(f"deleted deployment {name!r}")


# ---------------------------------------------------------------------------- helpers


def parse_arms(text: str) -> list[tuple[int, float]]:
    """``3:50,4:50`` -> ``[(3, 50.0), (4, 50.0)]``; anything else is a usage error."""
    arms = []
    for part in text.split(","):
        version, sep, weight = part.strip().partition(":")
        try:
            parsed = (int(version), float(weight))
        except ValueError:
            parsed = None
        if not sep or parsed is None or parsed[0] < 1:
            raise click.BadParameter(
                f"expected VERSION:WEIGHT pairs separated by commas (3:50,4:50), got {part!r}",
                param_hint="--arms",
            )
        arms.append(parsed)
    return arms


def report(deployment: Deployment, headline: str | None, *, as_json: bool) -> None:
    """Print a deployment: its JSON form, or a headline, its fields and its arms."""
    if as_json:
        print_json(deployment.to_dict())
        return
    if headline is not None:
        click.echo(f"{headline} (revision {deployment.revision})")
    previous = deployment.previous_champion
    print_fields(
        [
            ("deployment", deployment.name),
            ("revision", deployment.revision),
            ("sticky", deployment.sticky.describe() if deployment.sticky else None),
            ("rollback to", f"{previous[0]}/{previous[1]}" if previous else None),
            ("updated", f"{short_time(deployment.updated_at)} by {deployment.updated_by}"),
        ]
    )
    rows = [
        (arm.name, arm.role.value, arm.ref, f"{arm.weight:g}%" if arm.live else "",
         "" if arm.live else f"{arm.sample:g}")
        for arm in deployment.arms
    ]  # fmt: skip
    print_table(None, ["arm", "role", "version", "weight", "sample"], rows)


def arms_summary(deployment: Deployment) -> str:
    """``champion churn/3 90%, canary churn/4 10%, shadow churn/5 x0.5``."""
    return ", ".join(
        f"{arm.name} {arm.ref} " + (f"{arm.weight:g}%" if arm.live else f"x{arm.sample:g}")
        for arm in deployment.arms
    )


def _spec_summary(event: DeploymentEvent) -> str:
    from modelport.domain.deployments import Deployment

    return arms_summary(Deployment.from_spec(event.deployment, event.spec, revision=event.revision))


def _attach() -> None:
    # The commands on a deployment's results, and the rollout commands, live in modules
    # of their own.
    from modelport.cli import deploy_results, deploy_rollout

    deploy_results.attach(deploy)
    deploy_rollout.attach(deploy)


_attach()
