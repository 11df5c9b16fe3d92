"""``modelport version list|show|promote|archive|delete|stats|validate|sign|verify``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from modelport.cli.inputs import numbered_ref, version_ref
from modelport.cli.moves import report_move
from modelport.cli.output import (
    acceleration_data,
    acceleration_text,
    print_fields,
    print_json,
    print_table,
    short_time,
    warnings_on_stderr,
)
from modelport.cli.state import json_option, state
from modelport.domain.entities import ModelVersion
from modelport.domain.names import Stage
from modelport.errors import PackageError, StoreError
from modelport.registry.versions import check_version_deletable


@click.group()
def version() -> None:
    """Versions of registered models."""


@version.command("list")
@click.argument("name", required=False)
@click.option(
    "--filter",
    "filter_text",
    help='e.g. "metrics.auc > 0.9 AND stage = production", "status = archived".',
)
@click.option("--max-results", default=1000, show_default=True, type=click.IntRange(min=1))
@json_option
def list_versions(
    name: str | None, filter_text: str | None, max_results: int, as_json: bool
) -> None:
    """List the versions of NAME, or search all versions with --filter."""
    registry = state().registry()
    if name is not None:
        registry.get_model(name)  # a clear error for an unknown model
        clauses = [f"name = '{name}'", *([filter_text] if filter_text else [])]
        filter_text = " AND ".join(clauses)
    versions = registry.search_versions(filter_text, max_results=max_results)
    if as_json:
        print_json([v.to_dict() for v in versions])
        return
    rows = [
        (
            v.name,
            v.version,
            v.status.value,
            v.flavor,
            ", ".join(v.aliases),
            _metrics(v),
            short_time(v.created_at),
        )
        for v in versions
    ]
    print_table(
        None, ["name", "version", "status", "flavor", "aliases", "metrics", "created"], rows
    )


def _metrics(version: ModelVersion) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(version.metrics.items()))


@version.command("show")
@click.argument("ref")
@json_option
def show(ref: str, as_json: bool) -> None:
    """Show one version: REF is NAME/VERSION, NAME@ALIAS or NAME (its latest version)."""
    registry = state().registry()
    found = registry.resolve(version_ref(ref))
    try:
        acceleration = registry.get_manifest(found).acceleration
        served_by, unreadable = acceleration_text(acceleration), None
    except (PackageError, StoreError) as exc:  # the registry's own rows still show
        acceleration, unreadable = None, f"cannot read its modelport.yaml: {exc.message}"
        served_by = f"unknown ({unreadable})"
    if as_json:
        extra = {"acceleration_error": unreadable} if unreadable else {}
        print_json({**found.to_dict(), "acceleration": acceleration_data(acceleration), **extra})
        return
    print_fields(
        [
            ("ref", found.ref),
            ("status", found.status.value),
            ("flavor", found.flavor),
            ("aliases", list(found.aliases)),
            ("description", found.description),
            ("created", f"{short_time(found.created_at)} by {found.created_by}"),
            ("metrics", dict(found.metrics)),
            ("params", dict(found.params)),
            ("tags", dict(found.tags)),
            ("served by", served_by),
            ("manifest", f"sha256:{found.manifest_digest}"),
        ]
    )
    if found.signature is not None:
        _print_signature(found.signature)


def _print_signature(signature: Mapping[str, Any]) -> None:
    inputs = signature.get("inputs", {})
    rows: list[tuple[Any, ...]]
    if inputs.get("kind") == "columns":
        rows = [
            (
                c["name"],
                c["dtype"],
                "yes" if c.get("nullable") else "",
                "" if c.get("required", True) else "yes",
            )
            for c in inputs["columns"]
        ]
        print_table("inputs", ["column", "dtype", "nullable", "optional"], rows)
    elif inputs.get("kind") == "tensors":
        rows = [(t["name"], t["dtype"], t["shape"]) for t in inputs["tensors"]]
        print_table("inputs", ["tensor", "dtype", "shape"], rows)
    params = signature.get("params") or []
    if params:
        rows = [
            (
                p["name"],
                p["type"] if p.get("shape") is None else f"list of {p['type']}",
                p["default"],
            )
            for p in params
        ]
        print_table("inference params", ["param", "type", "default"], rows)


@version.command("promote")
@click.argument("ref")
@click.argument("stage", type=click.Choice([s.value for s in Stage]))
@click.option(
    "--archive-previous",
    is_flag=True,
    help="Archive the version that held the stage (it leaves its other aliases too).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Promote a version without a signature to production anyway; the audit trail records it.",
)
@click.option(
    "--skip-gates",
    metavar="REASON",
    help="Do not run the promotion gates; REASON goes in the audit trail.",
)
@json_option
def promote(
    *,
    ref: str,
    stage: str,
    archive_previous: bool,
    force: bool,
    skip_gates: str | None,
    as_json: bool,
) -> None:
    """Move STAGE to the version REF (NAME/VERSION), and say everything that changed.

    An archived version comes back into use. Production refuses a version without a
    signature (a model file registered without --sample) unless --force; staging takes
    it with a warning. STAGE archived is the same as `modelport version archive`.

    Production (or what [gates] targets names) first runs the promotion gates, as
    `modelport version validate` does; a failed or undecided gate refuses the move.
    """
    name, number = numbered_ref(ref)
    registry = state().registry()
    with warnings_on_stderr(as_json=as_json):
        move = registry.move(
            name,
            stage,
            number,
            archive_previous=archive_previous,
            force=force,
            skip_gates=skip_gates,
        )
    report_move(move, as_json=as_json)


@version.command("archive")
@click.argument("ref")
@json_option
def archive(ref: str, as_json: bool) -> None:
    """Archive the version REF (NAME/VERSION): it keeps its number and files, leaves
    every alias (they are listed), and is found with --filter "status = archived"."""
    name, number = numbered_ref(ref)
    move = state().registry().move(name, Stage.ARCHIVED, number)
    report_move(move, as_json=as_json)


@version.command("delete")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def delete(ref: str, yes: bool, as_json: bool) -> None:
    """Delete the version REF (NAME/VERSION) and its files; refused while an alias or
    stage points at it."""
    name, number = numbered_ref(ref)
    registry = state().registry()
    check_version_deletable(registry.get_version(name, number))  # before asking
    if not yes:
        click.confirm(f"delete version {number} of {name!r}?", abort=True, err=as_json)
    registry.delete_version(name, number)
    if as_json:
        print_json({"deleted": {"name": name, "version": number}})
    else:
        click.echo(f"deleted {name}/{number}")


@version.command("stats")
@click.argument("ref")
@click.option(
    "--sample",
    required=True,
    type=click.Path(path_type=Path),
    help="Training data (or a sample of it): .csv, .parquet, .json, .npy.",
)
@json_option
def stats(ref: str, sample: Path, as_json: bool) -> None:
    """Compute the reference statistics drift monitoring needs for REF (NAME/VERSION,
    NAME@ALIAS) from SAMPLE and the version's predictions on it: for versions registered
    before them. They are stored beside the package (which stays unchanged, digests and
    all) and preferred from now on.

    With MODELPORT_REGISTRY_URL set, SAMPLE is uploaded (at most the control plane's
    [serve] max_upload_bytes) and the control plane computes and stores them (a deploy
    key on the model)."""
    from modelport.cli.inputs import read_sample
    from modelport.registry.reference_stats import STATS_TAG

    data = read_sample(sample, as_json=as_json)
    registry = state().registry()
    with warnings_on_stderr(as_json=as_json):
        updated = registry.recompute_reference_stats(ref, data)
    computed, origin = registry.reference_stats(updated)
    assert computed is not None
    key, _, digest = updated.tags[STATS_TAG].partition(" ")
    summary = {
        "model": updated.name,
        "version": updated.version,
        "stats_version": computed.get("stats_version"),
        "rows": computed.get("rows"),
        "features": sorted(computed.get("features", {})),
        "predictions": bool(computed.get("predictions")),
        "source": origin,
        "artifact_key": key,
        "sha256": digest,
    }
    if as_json:
        print_json(summary)
        return
    click.echo(
        f"Computed reference statistics (version {summary['stats_version']}) of "
        f"{updated.name} version {updated.version} from {summary['rows']} rows."
    )
    print_fields(
        [
            ("features", summary["features"]),
            ("stored at", key),
            ("sha256", digest),
        ]
    )


def _attach() -> None:
    # ``validate``, ``sign`` and ``verify`` live in modules of their own.
    from modelport.cli.version_signing import sign, verify
    from modelport.cli.version_validate import validate

    version.add_command(validate)
    version.add_command(sign)
    version.add_command(verify)


_attach()
