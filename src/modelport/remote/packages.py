"""Package files over HTTP, on the client's side: a package directory as the tar stream
registration uploads, and a version's files downloaded into a local cache with every
sha256 checked as it is written.

A download lands in a scratch directory beside its cache entry and is renamed into
place only when every file matched, so a cache entry is always a whole package (the
loader verifies it again, against the manifest digest the registry recorded).
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath
from typing import IO, Any

from modelport.errors import IntegrityError
from modelport.package.location import MANIFEST_FILE
from modelport.package.manifest import manifest_digest, read_manifest

# (path) -> a context manager over the streamed answer's chunks
FileStream = Callable[[str], AbstractContextManager[Iterator[bytes]]]


def package_tar(directory: Path, spool: IO[bytes]) -> str:
    """Write the package in ``directory`` to ``spool`` as a tar stream, manifest first,
    then the files the manifest lists; return the manifest's sha256."""
    manifest = read_manifest(directory)
    with tarfile.open(fileobj=spool, mode="w|") as tar:
        for relpath in (MANIFEST_FILE, *sorted(manifest.files)):
            tar.add(directory / relpath, arcname=relpath, recursive=False)
    spool.seek(0)
    return manifest_digest(directory)


def download(
    listing: dict[str, Any], expected_manifest: str, target: Path, fetch: FileStream
) -> Path:
    """Download the files ``listing`` names into ``target`` (when it is not there yet),
    checking each against its sha256 and the manifest against ``expected_manifest``
    (what the registry recorded); ``IntegrityError`` naming the first that differs."""
    if listing.get("manifest_sha256") != expected_manifest:
        raise IntegrityError(
            f"the registry lists a {MANIFEST_FILE} whose sha256 is not the one it recorded",
            field=MANIFEST_FILE,
        )
    if (target / MANIFEST_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for entry in listing["files"]:
            _fetch_one(entry, scratch, fetch)
        try:
            scratch.rename(target)
        except OSError:  # another process filled the same entry meanwhile
            if not (target / MANIFEST_FILE).is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _fetch_one(entry: dict[str, Any], root: Path, fetch: FileStream) -> None:
    relpath = str(entry["path"])
    parts = PurePosixPath(relpath)
    if parts.is_absolute() or ".." in parts.parts:
        raise IntegrityError(f"the registry listed a path outside the package: {relpath!r}",
                             field=relpath)  # fmt: skip
    destination = root / relpath
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with fetch(relpath) as chunks, destination.open("wb") as out:
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != entry["sha256"]:
        raise IntegrityError(
            f"downloaded file {relpath!r} does not match its sha256: the transfer was "
            "corrupted or the stored package changed",
            field=relpath,
        )


def cache_entry(cache: Path, url: str, name: str, version: int, digest: str) -> Path:
    """Where a version's package from the registry at ``url`` is cached: one directory
    per registry, model, version and manifest digest (a re-registered number never
    reuses another package's files)."""
    registry = hashlib.sha256(url.encode()).hexdigest()[:16]
    return cache / "registry" / registry / name / f"{version}-{digest[:16]}"
