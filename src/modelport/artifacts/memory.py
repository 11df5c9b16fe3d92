"""ArtifactStore in process memory: the test twin."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from modelport.artifacts.store import check_key, check_relative_path, mismatch_error


class MemoryArtifactStore:
    """Files held as bytes; ``local_path`` materializes them in a private temp directory."""

    def __init__(self) -> None:
        self._files: dict[str, dict[str, bytes]] = {}
        self._lock = threading.Lock()
        self._cache = Path(tempfile.mkdtemp(prefix="modelport-memory-artifacts-"))

    @property
    def uri(self) -> str:
        return "memory://"

    def put_directory(self, source: Path, key: str, digests: Mapping[str, str]) -> None:
        check_key(key)
        files = {}
        for relpath, expected in digests.items():
            data = (source / check_relative_path(relpath)).read_bytes()
            if hashlib.sha256(data).hexdigest() != expected:
                raise mismatch_error(key, relpath)
            files[relpath] = data
        with self._lock:
            self._files[key] = files

    def local_path(self, key: str) -> Path:
        check_key(key)
        target = self._cache / key
        with self._lock:
            files = self._files.get(key, {})
            shutil.rmtree(target, ignore_errors=True)
            for relpath, data in files.items():
                (target / relpath).parent.mkdir(parents=True, exist_ok=True)
                (target / relpath).write_bytes(data)
        return target

    def exists(self, key: str) -> bool:
        check_key(key)
        with self._lock:
            return key in self._files

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._files.pop(key, None)

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._files)

    def close(self) -> None:
        """Remove the materialized copies."""
        shutil.rmtree(self._cache, ignore_errors=True)
