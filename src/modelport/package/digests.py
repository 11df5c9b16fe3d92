"""The sha256 of every file in a package, and the check that nothing changed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from modelport.errors import IntegrityError
from modelport.package.location import MANIFEST_FILE
from modelport.package.manifest import FileEntry

# Python writes bytecode caches next to custom model code when it is imported.
_IGNORED_DIRS = frozenset({"__pycache__"})
# A package directory's model signature signs the package's files; it is not one of them.
_SIGNATURE_FILE = "model.sig"
_CHUNK = 1 << 20


def sha256_stream(stream: BinaryIO) -> str:
    """Hex sha256 of everything left in ``stream``."""
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's contents."""
    with path.open("rb") as stream:
        return sha256_stream(stream)


def package_files(root: Path) -> list[str]:
    """Relative paths of the package's files (not the manifest, not its model signature
    ``model.sig``, not bytecode caches), refusing symbolic links, which could point
    outside the package."""
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if _IGNORED_DIRS.intersection(relative.parts):
            continue
        if path.is_symlink():
            raise IntegrityError(
                f"{relative.as_posix()} is a symbolic link; packages hold regular files only",
                field=relative.as_posix(),
            )
        if path.is_file() and relative.as_posix() not in (MANIFEST_FILE, _SIGNATURE_FILE):
            found.append(relative.as_posix())
    return found


def compute_digests(root: Path) -> dict[str, FileEntry]:
    """sha256 and size of every package file under ``root``."""
    return {
        relpath: FileEntry(sha256=sha256_file(root / relpath), size=(root / relpath).stat().st_size)
        for relpath in package_files(root)
    }


def verify_digests(root: Path, expected: Mapping[str, FileEntry]) -> None:
    """Raise ``IntegrityError`` naming the first file that is missing, unexpected, or
    whose content differs from the manifest."""
    present = set(package_files(root))
    for relpath, entry in sorted(expected.items()):
        if relpath not in present:
            raise IntegrityError(f"package file {relpath!r} is missing", field=relpath)
        if sha256_file(root / relpath) != entry.sha256:
            raise IntegrityError(
                f"package file {relpath!r} does not match its recorded sha256: "
                "it was modified after the package was written",
                field=relpath,
            )
    unexpected = sorted(present - set(expected))
    if unexpected:
        raise IntegrityError(
            f"package file {unexpected[0]!r} is not listed in {MANIFEST_FILE}: "
            "files were added after the package was written",
            field=unexpected[0],
        )
