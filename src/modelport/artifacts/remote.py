"""ArtifactStore on any fsspec file system (s3://, gs://, az://, memory://, ...)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelport.artifacts.store import (
    check_key,
    check_relative_path,
    mismatch_error,
)
from modelport.errors import StoreUnavailableError
from modelport.package.digests import sha256_stream

_COMPLETE = ".modelport-complete"


class FsspecArtifactStore:
    """Files under a URI prefix on an fsspec file system, cached locally for loading.

    Object stores cannot rename a prefix atomically, so an upload writes the files,
    reads each back to check its sha256, and removes everything under the key when
    any step fails. Downloads go to ``cache_dir`` (0700) and are committed by rename.
    """

    def __init__(self, uri: str, cache_dir: Path, **storage_options: Any) -> None:
        import fsspec

        self._uri = uri.rstrip("/")
        self._fs, self._root = fsspec.core.url_to_fs(self._uri, **storage_options)
        self._cache = cache_dir

    @property
    def uri(self) -> str:
        return self._uri

    def _remote(self, key: str, relpath: str | None = None) -> str:
        base = f"{self._root}/{check_key(key)}"
        return base if relpath is None else f"{base}/{check_relative_path(relpath)}"

    def put_directory(self, source: Path, key: str, digests: Mapping[str, str]) -> None:
        try:
            for relpath, expected in digests.items():
                remote = self._remote(key, relpath)
                self._fs.put_file(str(source / relpath), remote)
                with self._fs.open(remote, "rb") as stream:
                    if sha256_stream(stream) != expected:
                        raise mismatch_error(key, relpath)
        except BaseException:
            self.delete(key)
            raise

    def local_path(self, key: str) -> Path:
        target = self._cache / check_key(key)
        # The marker sits beside the copy, not in it: the directory holds exactly the
        # package's files, as its digests and its model signature list them.
        marker = target.with_name(target.name + _COMPLETE)
        if marker.exists():
            return target
        staging = self._cache / ".staging" / uuid.uuid4().hex
        try:
            staging.mkdir(parents=True, mode=0o700)
            self._cache.chmod(0o700)
            remote_root = self._remote(key)
            for remote in self._fs.find(remote_root):
                relpath = check_relative_path(remote[len(remote_root) + 1 :])
                (staging / relpath).parent.mkdir(parents=True, exist_ok=True)
                self._fs.get_file(remote, str(staging / relpath))
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            staging.rename(target)
            marker.touch()
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot download {key!r} from {self._uri}: {exc}"
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def exists(self, key: str) -> bool:
        return bool(self._fs.exists(self._remote(key)))

    def delete(self, key: str) -> None:
        remote = self._remote(key)
        if self._fs.exists(remote):
            self._fs.rm(remote, recursive=True)
        cached = self._cache / check_key(key)
        cached.with_name(cached.name + _COMPLETE).unlink(missing_ok=True)
        shutil.rmtree(cached, ignore_errors=True)

    def keys(self) -> list[str]:
        if not self._fs.exists(self._root):
            return []
        found = set()
        for path in self._fs.find(self._root):
            parts = path[len(self._root) + 1 :].split("/")
            if len(parts) >= 3:
                found.add(f"{parts[0]}/{parts[1]}")
        return sorted(found)
