"""``modelport model register|list|show|delete``."""

from __future__ import annotations

from pathlib import Path

import click

from modelport.cli.inputs import parse_metrics, parse_pairs, read_sample
from modelport.cli.output import (
    acceleration_data,
    acceleration_text,
    print_fields,
    print_json,
    print_table,
    short_time,
)
from modelport.cli.state import json_option, state
from modelport.domain.entities import VersionStatus
from modelport.errors import UnsafeModelError
from modelport.flavors.safe_pickle import unsafe_error
from modelport.package.options import PackageOptions
from modelport.registry.versions import check_model_deletable


@click.group()
def model() -> None:
    """Registered models."""


@model.command("register")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", "-n", required=True, help="Model name; a new version is added to it.")
@click.option(
    "--sample", type=click.Path(path_type=Path), help="Sample input: .csv, .parquet, .json, .npy."
)
@click.option("--metric", multiple=True, help="KEY=NUMBER, repeatable.")
@click.option("--param", multiple=True, help="KEY=VALUE, repeatable.")
@click.option("--tag", multiple=True, help="KEY=VALUE, repeatable.")
@click.option("--description", default="", help="What this version is.")
@click.option("--flavor", help="Force a flavor instead of detecting it from the file.")
@click.option(
    "--trust", multiple=True, help="A global in a pickle you vouch for (pkg.Class or pkg.*)."
)
@click.option(
    "--accelerate/--no-accelerate",
    default=True,
    show_default=True,
    help="Store an ONNX conversion to serve, when its outputs match the model's.",
)
@click.option(
    "--id-column",
    "id_columns",
    multiple=True,
    help="A column that identifies rows (customer_id): logged and returned, never a model "
    "input; repeatable.",
)
@json_option
def register(
    *,
    path: Path,
    name: str,
    sample: Path | None,
    metric: tuple[str, ...],
    param: tuple[str, ...],
    tag: tuple[str, ...],
    description: str,
    flavor: str | None,
    trust: tuple[str, ...],
    accelerate: bool,
    id_columns: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register a model file or package directory PATH as the next version of --name.

    Says how the version will be served: by its verified ONNX graph, or natively and why
    (the ONNX conversion's outputs differed, or it could not be made).
    """
    options = PackageOptions(
        sample_input=read_sample(sample, as_json=as_json) if sample is not None else None,
        flavor=flavor,
        metrics=parse_metrics(metric),
        params=parse_pairs(param, "--param"),
        tags=parse_pairs(tag, "--tag"),
        description=description,
        trust=trust,
        accelerate=accelerate,
        id_columns=id_columns,
    )
    registry = state().registry()
    try:
        version = registry.register(path, name, options)
    except UnsafeModelError as exc:
        if not exc.trustable:
            raise
        # The same refusal, saying how to vouch for the names on this command line.
        flags = " ".join(f"--trust {_shell_quoted(name)}" for name in exc.offending)
        raise unsafe_error(path.name, exc.offending, how_to_trust=f"pass {flags}") from None
    acceleration = registry.get_manifest(version).acceleration
    if as_json:
        print_json({**version.to_dict(), "acceleration": acceleration_data(acceleration)})
    else:
        click.echo(f"registered {version.ref} ({version.flavor})")
        click.echo(f"served by: {acceleration_text(acceleration)}")


def _shell_quoted(text: str) -> str:
    """``text`` in single quotes for a POSIX shell, always quoted (``'posix.system'``)."""
    return "'" + text.replace("'", "'\\''") + "'"


@model.command("list")
@json_option
def list_models(as_json: bool) -> None:
    """List registered models."""
    models = state().registry().list_models()
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    rows = [
        (m.name, m.latest_version, _aliases(m.aliases), short_time(m.updated_at), m.description)
        for m in models
    ]
    print_table(None, ["name", "latest", "aliases", "updated", "description"], rows)


def _aliases(aliases: dict[str, int] | object) -> str:
    if not isinstance(aliases, dict):
        return ""
    return ", ".join(f"{alias}->{version}" for alias, version in sorted(aliases.items()))


@model.command("show")
@click.argument("name")
@json_option
def show(name: str, as_json: bool) -> None:
    """Show a model and its versions, newest first (archived ones say so in "status")."""
    registry = state().registry()
    found = registry.get_model(name)
    versions = registry.list_versions(name)
    if as_json:
        print_json({**found.to_dict(), "versions": [v.to_dict() for v in versions]})
        return
    archived = sum(v.status is VersionStatus.ARCHIVED for v in versions)
    print_fields(
        [
            ("name", found.name),
            ("description", found.description),
            ("tags", dict(found.tags)),
            ("aliases", _aliases(dict(found.aliases))),
            (
                "versions",
                f"{len(versions)} ({len(versions) - archived} active, {archived} archived)",
            ),
            ("created", short_time(found.created_at)),
        ]
    )
    rows = [
        (
            v.version,
            v.status.value,
            v.flavor,
            ", ".join(v.aliases),
            short_time(v.created_at),
            v.created_by,
        )
        for v in versions
    ]
    print_table("versions", ["version", "status", "flavor", "aliases", "created", "by"], rows)


@model.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def delete(name: str, yes: bool, as_json: bool) -> None:
    """Delete a model, all its versions and their files; refused while any alias or
    stage points at one of its versions."""
    registry = state().registry()
    check_model_deletable(registry.get_model(name))  # before asking
    count = len(registry.list_versions(name))
    if not yes:
        click.confirm(f"delete model {name!r} and its {count} version(s)?", abort=True, err=as_json)
    registry.delete_model(name)
    if as_json:
        print_json({"deleted": {"name": name, "versions": count}})
    else:
        click.echo(f"deleted model {name} ({count} version(s))")
