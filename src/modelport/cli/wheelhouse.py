"""The wheels of a build context: modelport's own, and for ``--offline`` every other.

modelport's wheel is a copy of the given one, or one built (``pip wheel --no-deps``,
with hatchling, the project's build backend) from the source tree the running modelport
was imported from: the image then serves with exactly the code that wrote its build
context. ``--offline`` downloads the rest with this machine's pip (its index, proxy and
certificates), so that the image builds with no network at all.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import modelport
from modelport.errors import InvalidArgumentError, MissingDependencyError


def modelport_wheel(directory: Path, *, given: Path | None = None) -> Path:
    """Put modelport's wheel into ``directory`` (created); its path there."""
    directory.mkdir(parents=True, exist_ok=True)
    if given is not None:
        if not (given.name.startswith("modelport-") and given.suffix == ".whl"):
            raise InvalidArgumentError(
                f"--wheel {given} is not a modelport wheel (modelport-VERSION-...whl)",
                field="wheel",
            )
        return Path(shutil.copy2(given, directory / given.name))
    return _build_wheel(source_root(), directory)


def source_root() -> Path:
    """The project directory (with pyproject.toml) of the running modelport."""
    root = Path(modelport.__file__).resolve().parents[2]
    project = root / "pyproject.toml"
    if not project.is_file() or 'name = "modelport"' not in project.read_text(encoding="utf-8"):
        raise InvalidArgumentError(
            "modelport is not installed from a source tree here (no pyproject.toml beside "
            f"{Path(modelport.__file__).parent}), so its wheel cannot be built: pass "
            "--wheel PATH/modelport-VERSION-py3-none-any.whl",
            field="wheel",
        )
    return root


def _build_wheel(root: Path, directory: Path) -> Path:
    try:
        import hatchling  # noqa: F401 - only to name the missing build backend
    except ImportError:
        raise MissingDependencyError(
            "building modelport's wheel needs its build backend: pip install hatchling "
            "(or pass --wheel PATH)",
            package="hatchling",
            extra="dev",
        ) from None
    with tempfile.TemporaryDirectory(prefix="modelport-wheel-") as scratch:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        command += ["--quiet", "--wheel-dir", scratch, str(root)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        wheels = sorted(Path(scratch).glob("modelport-*.whl"))
        if done.returncode != 0 or not wheels:
            raise InvalidArgumentError(
                f"could not build modelport's wheel from {root}: "
                f"{(done.stderr or done.stdout).strip()[-2000:]}",
                field="wheel",
            )
        return Path(shutil.move(wheels[0], directory / wheels[0].name))


def download_wheels(
    directory: Path,
    *,
    wheel: Path,
    extras: Sequence[str],
    requirements: Path,
    python: str,
    index_urls: Sequence[str] = (),
) -> None:
    """Download into ``directory`` the wheels of modelport's dependencies, ``extras`` and
    ``requirements``, for ``python`` (``3.11``) on this machine's platform: binary
    wheels only, since the image's builder has no compiler."""
    target = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
    command += ["--python-version", python, "--dest", str(directory), "--find-links"]
    command += [str(directory), target, "-r", str(requirements)]
    for url in index_urls:
        command += ["--extra-index-url", url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise InvalidArgumentError(
            "--offline could not download the wheels the image needs (binary wheels for "
            f"Python {python}): {(done.stderr or done.stdout).strip()[-2000:]}",
            field="offline",
        )
