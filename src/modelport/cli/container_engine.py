"""Running podman or docker for ``modelport build --build``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click

from modelport.errors import ImageBuildError

ENGINES = ("podman", "docker")


def choose_engine(requested: str | None) -> str:
    """The engine to build with: the requested one, else podman, else docker."""
    candidates = (requested,) if requested else ENGINES
    for engine in candidates:
        if shutil.which(engine):
            return engine
    raise ImageBuildError(
        f"--build needs {' or '.join(candidates)} on PATH, and none is installed: install "
        "podman (apt-get install podman) or build the context yourself (see its README.md)"
    )


def build_command(engine: str, context: Path, tag: str) -> list[str]:
    """The build command line. podman's default OCI image format has no HEALTHCHECK, so
    it is asked for Docker's format."""
    command = [engine, "build", "-t", tag]
    if engine == "podman":
        command += ["--format", "docker"]
    return [*command, str(context)]


def build_image(engine: str, context: Path, tag: str) -> int:
    """Build the image (the engine's output goes to stderr); its size in bytes."""
    command = build_command(engine, context, tag)
    click.echo(f"$ {' '.join(command)}", err=True)
    done = subprocess.run(command, stdout=2, check=False)  # noqa: S603 - our own argv
    if done.returncode != 0:
        raise ImageBuildError(
            f"{engine} build failed (exit code {done.returncode}); its output is above"
        )
    return image_size(engine, tag)


def image_size(engine: str, tag: str) -> int:
    """The image's size in bytes, as the engine reports it."""
    command = [engine, "image", "inspect", tag, "--format", "{{.Size}}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        return int(done.stdout.strip())
    except ValueError:
        raise ImageBuildError(
            f"{engine} built {tag} but did not report its size: {done.stderr.strip()}"
        ) from None
