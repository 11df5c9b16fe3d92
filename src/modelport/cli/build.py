"""``modelport build MODEL --out DIR``: a container build context for one model version
(and, with ``--build``, the image itself, by podman or docker). See docs/containers.md.

The text files come from ``modelport.deploy.image``; this command fetches the package,
makes modelport's own wheel (modelport is installed into the image from it) and writes
them all into ``--out``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import click

from modelport.cli.container_engine import build_image, choose_engine
from modelport.cli.output import print_json
from modelport.cli.state import json_option, state
from modelport.cli.wheelhouse import download_wheels, modelport_wheel
from modelport.client import RegistryClient  # MODELPORT_REGISTRY_URL: the HTTP SDK
from modelport.deploy.image import (
    CHECK_SCRIPT,
    PACKAGE_CONTEXT_DIR,
    TORCH_CPU_INDEX,
    WHEELS_DIR,
    ImageSpec,
    default_base,
    default_tag,
    extras_for,
    render_context,
    requirements_for,
)
from modelport.errors import InvalidArgumentError
from modelport.package.location import locate_model
from modelport.package.manifest import Manifest
from modelport.package.reader import verify_package

# What this command writes into --out (and replaces with --force).
_WRITTEN = ("Dockerfile", ".dockerignore", "requirements.txt", "README.md", CHECK_SCRIPT)


@dataclass(frozen=True)
class _Source:
    """The version being packed: its name and number, manifest, files and the manifest
    digest the registry recorded (None for a package directory)."""

    model: str
    version: int | None  # None: a package directory
    manifest: Manifest
    directory: Path
    digest: str | None
    reference: str


@click.command()
@click.argument("model", metavar="MODEL")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the build context into (created; must be empty unless --force).",
)
@click.option("--tag", help="Image name and tag.  [default: NAME:VERSION, e.g. churn:3]")
@click.option(
    "--extras",
    multiple=True,
    help="More modelport extras to install (comma-separated or repeated), e.g. postgres,s3.",
)
@click.option(
    "--base",
    help="Base image for both stages (needs python3 with venv).  "
    "[default: the pinned docker.io/library/python:X.Y.Z-slim-bookworm of the package's Python]",
)
@click.option(
    "--from-registry",
    is_flag=True,
    help="Fetch the version from the registry when the container starts, instead of "
    "copying the package into the image.",
)
@click.option(
    "--wheel",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="modelport's wheel to install.  [default: built from the installed source]",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Download every wheel into the context with this machine's pip, so that the "
    "image builds without network (same CPU architecture as this machine).",
)
@click.option("--build", "run_build", is_flag=True, help="Build the image (podman or docker).")
@click.option(
    "--engine",
    type=click.Choice(["podman", "docker"]),
    help="Which engine --build runs.  [default: podman when installed, else docker]",
)
@click.option("--force", is_flag=True, help="Replace a build context already in --out.")
@json_option
def build(
    *,
    model: str,
    out: Path,
    tag: str | None,
    extras: tuple[str, ...],
    base: str | None,
    from_registry: bool,
    wheel: Path | None,
    offline: bool,
    run_build: bool,
    engine: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Write a container build context for MODEL (NAME/VERSION, NAME@ALIAS, NAME, or a
    package directory) into --out: a multi-stage Dockerfile serving it with
    ``modelport serve`` as a non-root user, .dockerignore, the package, modelport's
    wheel and a README of the build and run commands."""
    source = _source(model)
    if from_registry and source.digest is None:
        raise InvalidArgumentError(
            "--from-registry needs a registered version (NAME/VERSION, NAME@ALIAS), "
            f"not the package directory {model}",
            field="from_registry",
        )
    requested = [item.strip() for text in extras for item in text.split(",") if item.strip()]
    if from_registry:
        requested += _registry_extras()
    chosen = extras_for(source.manifest, requested)
    base = base or default_base(source.manifest.environment.python)  # refused before writing
    _prepare_out(out, force=force)
    wheel_path = modelport_wheel(out / WHEELS_DIR, given=wheel)
    spec = ImageSpec(
        model=source.model,
        version=source.version,
        python=source.manifest.environment.python,
        extras=chosen,
        wheel=wheel_path.name,
        base=base,
        tag=tag or default_tag(source.model, source.version),
        requirements=requirements_for(source.manifest),
        package_digest=source.digest,
        from_registry=source.reference if from_registry else None,
        source=source.reference,
        extra_index_urls=(TORCH_CPU_INDEX,) if "torch" in chosen else (),
        offline=offline,
    )
    _write_context(out, spec, source, wheel_path)
    result: dict[str, object] = {
        "out": str(out),
        "tag": spec.tag,
        "base": spec.base,
        "extras": list(spec.extras),
        "model": spec.model,
        "version": spec.version,
        "from_registry": from_registry,
        "offline": offline,
    }
    if not as_json:
        click.echo(f"wrote the build context for {spec.source} to {out} (see {out}/README.md)")
    if run_build:
        chosen_engine = choose_engine(engine)
        size = build_image(chosen_engine, out, spec.tag)
        result.update(engine=chosen_engine, image_size_bytes=size)
        if not as_json:
            click.echo(f"built {spec.tag} with {chosen_engine}: {size / 1e6:.1f} MB")
    if as_json:
        print_json(result)


def _write_context(out: Path, spec: ImageSpec, source: _Source, wheel: Path) -> None:
    """The rendered files, the package (unless fetched at start) and, with
    ``--offline``, every wheel the image installs."""
    for relative, text in render_context(spec).items():
        (out / relative).write_text(text, encoding="utf-8")
    if spec.offline:
        download_wheels(
            out / WHEELS_DIR,
            wheel=wheel,
            extras=spec.extras,
            requirements=out / "requirements.txt",
            python=".".join(spec.python.split(".")[:2]),
            index_urls=spec.extra_index_urls,
        )
    if spec.packaged:
        shutil.copytree(source.directory, out / PACKAGE_CONTEXT_DIR)


def _source(text: str) -> _Source:
    """The registered version ``text`` names (its package fetched), or a package directory."""
    found = locate_model(text)
    if isinstance(found, Path):
        manifest = verify_package(found)
        name = found.resolve().name
        return _Source(name, None, manifest, found, None, str(found))
    registry = state().registry()
    version = registry.resolve(found)
    if isinstance(registry, RegistryClient):  # MODELPORT_REGISTRY_URL: downloaded, checked
        directory = registry.package_dir(version)
    else:
        directory = registry.artifacts.local_path(version.artifact_key)
    manifest = verify_package(directory, version.manifest_digest)
    reference = text.removeprefix("models:/")
    return _Source(
        version.name, version.version, manifest, directory, version.manifest_digest, reference
    )


def _registry_extras() -> list[str]:
    """The extras a container needs to reach this registry from the outside: PostgreSQL's
    driver, the S3 file system (SQLite and local artifacts need none)."""
    settings = state().settings
    extras = []
    if settings.resolved_database_url.startswith("postgresql"):
        extras.append("postgres")
    if settings.resolved_artifacts_uri.startswith("s3://"):
        extras.append("s3")
    return extras


def _prepare_out(out: Path, *, force: bool) -> None:
    """Create ``out``; with ``force``, remove what an earlier build context wrote there."""
    if out.exists() and any(out.iterdir()):
        if not force:
            raise InvalidArgumentError(
                f"{out} is not empty; choose a new --out directory or pass --force to "
                "replace the build context in it",
                field="out",
            )
        for name in _WRITTEN:
            (out / name).unlink(missing_ok=True)
        for name in (PACKAGE_CONTEXT_DIR, WHEELS_DIR):
            shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
