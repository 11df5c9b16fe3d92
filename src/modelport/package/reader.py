"""Loading a package: verify every file, check the environment, then let the flavor load."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path

from modelport.config import VersionCheck
from modelport.domain.entities import ModelVersion
from modelport.errors import EnvironmentMismatchWarning, IntegrityError
from modelport.flavors.base import LoadContext
from modelport.flavors.catalog import FlavorCatalog
from modelport.package.digests import verify_digests
from modelport.package.environment import compare_environment, enforce_environment
from modelport.package.loaded import LoadedModel
from modelport.package.location import MANIFEST_FILE
from modelport.package.manifest import (
    MODEL_DIR,
    Manifest,
    manifest_digest,
    read_manifest,
)
from modelport.package.onnx_predictor import RUNTIME, load_accelerated

logger = logging.getLogger(__name__)


def verify_package(directory: Path, expected_manifest_digest: str | None = None) -> Manifest:
    """Read the manifest and check every file against it.

    ``expected_manifest_digest`` (kept by the registry) also pins the manifest itself,
    so an edited ``modelport.yaml`` is caught too.
    """
    manifest = read_pinned_manifest(directory, expected_manifest_digest)
    verify_digests(directory, manifest.files)
    return manifest


def read_pinned_manifest(directory: Path, expected_manifest_digest: str | None) -> Manifest:
    """Read the manifest, checked against ``expected_manifest_digest`` when given, without
    hashing the package's other files (for showing what a version recorded)."""
    pinned = expected_manifest_digest is not None and (directory / MANIFEST_FILE).is_file()
    if pinned and manifest_digest(directory) != expected_manifest_digest:
        raise IntegrityError(
            f"{MANIFEST_FILE} does not match the sha256 the registry recorded: "
            "the package was modified after it was registered",
            field=MANIFEST_FILE,
        )
    return read_manifest(directory)


def load_package(
    directory: Path,
    catalog: FlavorCatalog,
    *,
    trust: Iterable[str] = (),
    version_check: VersionCheck = "strict",
    expected_manifest_digest: str | None = None,
    source: str | None = None,
    version: ModelVersion | None = None,
    accelerate: bool = False,
) -> LoadedModel:
    """Verify and load the package in ``directory``.

    Raises ``IntegrityError`` for a tampered file, ``EnvironmentMismatchError`` when the
    framework's major or minor version differs (``strict``; a warning under ``warn``),
    ``UnknownFlavorError``/``MissingDependencyError`` when the flavor cannot load here,
    and ``UnsafeModelError`` when a file references code outside the allow-list.

    With ``accelerate`` (the server's choice), a package whose ONNX graph was verified
    when it was written is served by onnxruntime, when installed, instead of the native
    model; ``LoadedModel.runtime`` tells which.
    """
    manifest = verify_package(directory, expected_manifest_digest)
    report = compare_environment(manifest.environment)
    enforce_environment(report, version_check)
    for difference in report.differences:
        logger.info("environment differs from the recorded one: %s", difference)
    if report.serious:
        warnings.warn(
            f"loading despite a different framework version: {'; '.join(report.serious)}",
            EnvironmentMismatchWarning,
            stacklevel=2,
        )
    predictor = load_accelerated(directory, manifest) if accelerate else None
    runtime = RUNTIME if predictor is not None else None
    if predictor is None:
        flavor = catalog.get(manifest.flavor.name)
        context = LoadContext(trust=(*manifest.trust.used, *trust))
        predictor = flavor.load(directory / MODEL_DIR, manifest.flavor.spec, context)
    return LoadedModel(
        predictor,
        manifest,
        directory=directory,
        source=source or str(directory),
        environment=report,
        version=version,
        runtime=runtime,
    )
