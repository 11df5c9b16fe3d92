"""The library versions a model was saved with, and how they differ from what is installed."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata

from packaging.version import InvalidVersion, Version

from modelport.config import VersionCheck
from modelport.errors import EnvironmentMismatchError
from modelport.package.manifest import EnvironmentSection


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        pass
    # metadata.version walks sys.meta_path, which an import in another thread may change
    # under it (setuptools' distutils shim adds and removes itself there), skipping the
    # path finder: a model loading beside another then saw its framework "not installed".
    # Look on sys.path itself before saying so.
    context = metadata.DistributionFinder.Context(name=distribution)
    found = next(iter(metadata.MetadataPathFinder.find_distributions(context)), None)
    return found.version if found is not None else None


def capture_environment(libraries: Iterable[str], framework: str | None) -> EnvironmentSection:
    """Record Python's version and the installed version of each library (pinned)."""
    versions: dict[str, str] = {}
    for name in dict.fromkeys(libraries):  # keep order, drop repeats
        version = installed_version(name)
        if version is not None:
            versions[name] = version
    return EnvironmentSection(
        python=platform.python_version(),
        modelport=installed_version("modelport") or "unknown",
        framework=framework,
        libraries=versions,
        requirements=[f"{name}=={version}" for name, version in versions.items()],
    )


@dataclass(frozen=True)
class EnvironmentReport:
    """Each difference between the recorded and the installed environment, and which of
    them are serious (the framework's major or minor version differs, or it is missing)."""

    differences: tuple[str, ...] = ()
    serious: tuple[str, ...] = ()


def compare_environment(recorded: EnvironmentSection) -> EnvironmentReport:
    """Compare the recorded versions with what is installed now."""
    differences: list[str] = []
    serious: list[str] = []
    python_now = platform.python_version()
    if _major_minor(recorded.python) != _major_minor(python_now):
        differences.append(f"python {recorded.python} recorded, {python_now} running")
    for name, version in recorded.libraries.items():
        now = installed_version(name)
        if now == version:
            continue
        text = f"{name} {version} recorded, {now or 'not installed'} installed"
        differences.append(text)
        if name == recorded.framework and (
            now is None or _major_minor(now) != _major_minor(version)
        ):
            serious.append(text)
    return EnvironmentReport(tuple(differences), tuple(serious))


def enforce_environment(report: EnvironmentReport, mode: VersionCheck) -> None:
    """Raise ``EnvironmentMismatchError`` for serious differences in ``strict`` mode."""
    if report.serious and mode == "strict":
        raise EnvironmentMismatchError(
            "the model was saved with a different version of its framework: "
            f"{'; '.join(report.serious)}. Install the recorded version, or load with "
            "version_check='warn' (MODELPORT_VERSION_CHECK=warn) to accept the risk",
            differences=report.serious,
        )


def _major_minor(version: str) -> tuple[int, ...] | str:
    try:
        return Version(version).release[:2]
    except InvalidVersion:
        return version
