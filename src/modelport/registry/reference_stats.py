"""Reference statistics of a version: the package's own, or a copy recomputed later.

A package's ``reference_stats.json`` is one of its files: its sha256 is in the
manifest's ``files``, and the manifest's own digest is recorded in the version's row.
Rewriting it inside the package would break both, and with them the promise that a
registered version never changes. So statistics recomputed for a version whose
package predates them (``modelport version stats churn/3 --sample train.parquet``)
are stored *beside* the package: under their own artifact key
``<package key>.stats-<sha256 prefix>`` (uploaded and verified like a package), with
the key and the file's sha256 recorded on the version as the tag
``modelport.reference_stats = "<key> <sha256>"`` (set in one audited transaction, after
the upload). Readers prefer that copy, check it against the recorded sha256, and fall
back to the package's file, checked against the manifest. A new computation gets a new
key; the old copy is deleted once the tag points at the new one, and deleting the
version deletes it too.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from modelport.artifacts.store import ArtifactStore
from modelport.domain.entities import ModelVersion
from modelport.errors import IntegrityError
from modelport.package.digests import sha256_file
from modelport.package.manifest import REFERENCE_STATS_FILE, Manifest

STATS_TAG = "modelport.reference_stats"


def recorded(version: ModelVersion) -> tuple[str, str] | None:
    """The key and sha256 of the recomputed statistics the version's tag names, if any."""
    value = version.tags.get(STATS_TAG)
    if not value:
        return None
    key, _, digest = value.partition(" ")
    if not key or len(digest) != 64:
        raise IntegrityError(
            f"the tag {STATS_TAG}={value!r} of {version.ref} is not '<key> <sha256>'; "
            "recompute the statistics with: modelport version stats "
            f"{version.name}/{version.version} --sample FILE",
            model=version.name,
            version=version.version,
            field=STATS_TAG,
        )
    return key, digest


def stats_key(version: ModelVersion) -> str | None:
    """The artifact key of the version's recomputed statistics (None: none, or a bad tag)."""
    key = version.tags.get(STATS_TAG, "").partition(" ")[0]
    return key if key.startswith(version.artifact_key + ".stats-") else None


def upload(artifacts: ArtifactStore, version: ModelVersion, stats: dict[str, Any]) -> str:
    """Store ``stats`` beside the version's package; return the tag value naming them."""
    body = json.dumps(stats, allow_nan=False).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    key = f"{version.artifact_key}.stats-{digest[:16]}"
    if not artifacts.exists(key):  # the same statistics again: already stored
        with tempfile.TemporaryDirectory(prefix="modelport-stats-") as scratch:
            (Path(scratch) / REFERENCE_STATS_FILE).write_bytes(body)
            artifacts.put_directory(Path(scratch), key, {REFERENCE_STATS_FILE: digest})
    return f"{key} {digest}"


def recomputed_file(artifacts: ArtifactStore, version: ModelVersion) -> Path | None:
    """The local file of the version's recomputed statistics (checked), or None."""
    pointer = recorded(version)
    if pointer is None:
        return None
    key, digest = pointer
    path = artifacts.local_path(key) / REFERENCE_STATS_FILE
    _check(path, digest, version, "recomputed reference statistics")
    return path


def read(
    artifacts: ArtifactStore, version: ModelVersion, manifest: Manifest
) -> tuple[dict[str, Any] | None, str]:
    """The version's statistics and where they came from (``recomputed`` or ``package``);
    None when it has none."""
    recomputed = recomputed_file(artifacts, version)
    if recomputed is not None:
        return load_file(recomputed), "recomputed"
    if manifest.reference_stats is None:
        return None, "package"
    path = artifacts.local_path(version.artifact_key) / manifest.reference_stats
    entry = manifest.files.get(manifest.reference_stats)
    if entry is None:
        raise IntegrityError(
            f"{manifest.reference_stats} of {version.ref} is not listed in its manifest",
            model=version.name,
            version=version.version,
        )
    _check(path, entry.sha256, version, manifest.reference_stats)
    return load_file(path), "package"


def _check(path: Path, digest: str, version: ModelVersion, what: str) -> None:
    if not path.is_file() or sha256_file(path) != digest:
        raise IntegrityError(
            f"the {what} of {version.ref} are missing or do not match their recorded sha256",
            model=version.name,
            version=version.version,
        )


def load_file(path: Path) -> dict[str, Any]:
    """Statistics from a JSON file."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
