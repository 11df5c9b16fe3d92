"""``modelport model register|list|show|delete``."""

from __future__ import annotations

from pathlib import Path

import click

from modelport.cli.inputs import parse_metrics, parse_pairs, read_sample
from modelport.cli.output import print_fields, print_json, print_table, short_time
from modelport.cli.state import json_option, state
from modelport.package.options import PackageOptions


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
    as_json: bool,
) -> None:
    """Register a model file or package directory PATH as the next version of --name."""
    options = PackageOptions(
        sample_input=read_sample(sample) if sample is not None else None,
        flavor=flavor,
        metrics=parse_metrics(metric),
        params=parse_pairs(param, "--param"),
        tags=parse_pairs(tag, "--tag"),
        description=description,
        trust=trust,
        accelerate=accelerate,
    )
    version = state().registry().register(path, name, options)
    if as_json:
        print_json(version.to_dict())
    else:
        click.echo(f"registered {version.ref} ({version.flavor})")


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
    """Show a model and its versions."""
    registry = state().registry()
    found = registry.get_model(name)
    versions = registry.list_versions(name)
    if as_json:
        print_json({**found.to_dict(), "versions": [v.to_dict() for v in versions]})
        return
    print_fields(
        [
            ("name", found.name),
            ("description", found.description),
            ("tags", dict(found.tags)),
            ("aliases", _aliases(dict(found.aliases))),
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
def delete(name: str, yes: bool) -> None:
    """Delete a model, all its versions and their files."""
    registry = state().registry()
    count = len(registry.list_versions(name))
    if not yes:
        click.confirm(f"delete model {name!r} and its {count} version(s)?", abort=True)
    registry.delete_model(name)
    click.echo(f"deleted model {name} ({count} version(s))")
