"""``modelport version validate``: run the promotion gates without promoting."""

from __future__ import annotations

from pathlib import Path

import click

from modelport.cli.inputs import version_ref
from modelport.cli.output import print_json, print_table, warnings_on_stderr
from modelport.cli.state import json_option, state
from modelport.config import Settings
from modelport.domain.gates import GateReport
from modelport.errors import InvalidArgumentError
from modelport.registry.service import RegistryService


@click.command("validate")
@click.argument("ref")
@click.option(
    "--to",
    "target",
    default="production",
    show_default=True,
    help="The stage or alias the version is meant for (its version now is the baseline).",
)
@click.option(
    "--holdout",
    type=click.Path(path_type=Path),
    help="Labelled data (.csv or .parquet) both versions predict; default [gates] holdout.",
)
@click.option("--label", help="The label column of the holdout file.")
@json_option
def validate(ref: str, target: str, holdout: Path | None, label: str | None, as_json: bool) -> None:
    """Run the promotion gates for REF (NAME/VERSION, NAME@ALIAS) going to --to,
    without moving it.

    Each gate says passed, failed, skipped (not applicable: no version holds the target
    yet, no holdout given, no latency budget set) or error (could not be evaluated),
    with its numbers. Exit code 0: every gate passed or was skipped; 1: a gate failed;
    2: a gate could not be evaluated.

    With MODELPORT_REGISTRY_URL set, the control plane runs its own gates ([gates] of
    its config, its prediction log for the shadow numbers), as it does for promotions:
    --holdout FILE is uploaded (at most its [serve] max_upload_bytes); without it, its
    [gates] holdout is used. Needs a deploy key on the model.
    """
    if label is not None and holdout is None:
        raise InvalidArgumentError("--label names a column of --holdout FILE", field="label")
    cli = state()
    registry = cli.registry()
    with warnings_on_stderr(as_json=as_json):
        if isinstance(registry, RegistryService):
            report = _evaluate_here(
                cli.settings, registry, ref, target, holdout=holdout, label=label
            )
        else:  # the control plane's gates, over its prediction log
            report = registry.validate_version(
                version_ref(ref), target, holdout=holdout, label=label
            )
    if as_json:
        print_json(report.to_dict())
    else:
        _print(report)
    raise click.exceptions.Exit(report.exit_code)


def _evaluate_here(
    settings: Settings,
    registry: RegistryService,
    ref: str,
    target: str,
    *,
    holdout: Path | None,
    label: str | None,
) -> GateReport:
    """The gates of this machine's settings, over the database."""
    from modelport.rollout.gates_default import build_gates

    candidate = registry.resolve(version_ref(ref))
    gates = build_gates(settings, registry)
    configured = settings.gates
    if holdout is None and configured.holdout:
        holdout, label = Path(configured.holdout).expanduser(), label or configured.label
    return gates.evaluate(candidate, target, holdout=holdout, label=label)


def _print(report: GateReport) -> None:
    baseline = f"version {report.baseline}" if report.baseline is not None else "nothing yet"
    click.echo(
        f"Gates for {report.model}/{report.version} going to {report.target} "
        f"(there now: {baseline})"
    )
    rows = [(r.gate, r.outcome.value, r.message) for r in report.results]
    print_table(None, ["gate", "outcome", "numbers"], rows)
    verdict = {0: "passed", 1: "refused: a gate failed", 2: "undecided: a gate could not run"}
    click.echo(verdict[report.exit_code])
