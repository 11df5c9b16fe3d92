"""ArtifactStore on the local file system (the embedded default)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

from modelport.artifacts.store import (
    check_key,
    check_relative_path,
    mismatch_error,
)
from modelport.errors import StoreUnavailableError
from modelport.package.digests import sha256_file

_STAGING = ".staging"


class LocalArtifactStore:
    """Files under a root directory, private to the user (0700).

    Uploads are copied into a staging directory on the same file system, verified,
    then renamed into place, so a key is either complete or absent.
    """

    def __init__(self, root: Path) -> None:
        self._root = root.expanduser().absolute()

    @property
    def uri(self) -> str:
        return self._root.as_uri()

    def _ensure_root(self) -> None:
        try:
            (self._root / _STAGING).mkdir(parents=True, exist_ok=True, mode=0o700)
            self._root.chmod(0o700)
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot use the artifact directory {self._root}: {exc.strerror}"
            ) from None

    def _path(self, key: str) -> Path:
        return self._root / check_key(key)

    def put_directory(self, source: Path, key: str, digests: Mapping[str, str]) -> None:
        self._ensure_root()
        target = self._path(key)
        staging = self._root / _STAGING / uuid.uuid4().hex
        try:
            for relpath, expected in digests.items():
                destination = staging / check_relative_path(relpath)
                destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                shutil.copyfile(source / relpath, destination)
                if sha256_file(destination) != expected:
                    raise mismatch_error(key, relpath)
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        shutil.rmtree(self._path(key), ignore_errors=True)

    def keys(self) -> list[str]:
        if not self._root.exists():
            return []
        return sorted(
            f"{model.name}/{entry.name}"
            for model in self._root.iterdir()
            if model.is_dir() and model.name != _STAGING
            for entry in model.iterdir()
        )
