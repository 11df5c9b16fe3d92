"""The ArtifactStore contract: where package files live, by key.

A key is ``<model name>/<unique id>``. ``put_directory`` is all or nothing: when it
raises, nothing is left under the key, and when it returns, every file has been
read back and matched against its sha256.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from modelport.errors import IntegrityError, InvalidArgumentError

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")


class ArtifactStore(Protocol):
    """Stores directories of package files under keys."""

    @property
    def uri(self) -> str:
        """Where the store lives."""
        ...

    def put_directory(self, source: Path, key: str, digests: Mapping[str, str]) -> None:
        """Copy the files named in ``digests`` (relative path -> sha256) from ``source``
        to ``key``, verify them, and commit; on failure leave nothing under ``key``."""
        ...

    def local_path(self, key: str) -> Path:
        """A local directory holding the files under ``key`` (downloaded if remote)."""
        ...

    def exists(self, key: str) -> bool:
        """Whether anything is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove everything under ``key``; no error when absent."""
        ...

    def keys(self) -> list[str]:
        """Every committed key, sorted."""
        ...


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key (no ``..``, no absolute paths)."""
    if not _KEY.fullmatch(key) or any(part in (".", "..") for part in key.split("/")):
        raise InvalidArgumentError(f"invalid artifact key {key!r}", field="key")
    return key


def check_relative_path(path: str) -> str:
    """Return ``path`` if it stays inside its package (no absolute paths, no ``..``)."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise IntegrityError(f"unsafe file path {path!r} in a package", field=path)
    return path


def mismatch_error(key: str, relpath: str) -> IntegrityError:
    """The error for a file whose stored copy does not match its digest."""
    return IntegrityError(
        f"artifact {relpath!r} under {key!r} does not match its sha256 after the upload",
        field=relpath,
    )
