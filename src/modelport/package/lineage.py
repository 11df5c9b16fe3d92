"""Where a model came from: a fingerprint of its data and the commit of its code."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelport.package.manifest import GitInfo, TrainingData

_GIT_TIMEOUT_SECONDS = 5


def fingerprint(sample: Any) -> TrainingData:
    """A sha256 over the sample's content, column names and types (not its row index)."""
    digest = hashlib.sha256()
    if isinstance(sample, pd.DataFrame):
        digest.update(repr([(str(c), str(t)) for c, t in sample.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(sample, index=False).to_numpy().tobytes())
        return TrainingData(sha256=digest.hexdigest(), rows=len(sample), columns=sample.shape[1])
    tensors = sample if isinstance(sample, dict) else {"input": sample}
    columns = 0
    for name, tensor in sorted(tensors.items()):
        array = np.ascontiguousarray(tensor)
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(_array_bytes(array))
        columns += int(np.prod(array.shape[1:])) if array.ndim > 1 else 1
    rows = len(next(iter(tensors.values())))
    return TrainingData(sha256=digest.hexdigest(), rows=rows, columns=columns)


def _array_bytes(array: np.ndarray) -> bytes:
    if array.dtype.kind == "O":  # object arrays hold pointers; hash their values instead
        return bytes(pd.util.hash_array(array.ravel()).tobytes())
    return array.tobytes()


def git_info(directory: Path) -> GitInfo | None:
    """The commit checked out in the repository holding ``directory``, and whether the
    working tree has uncommitted changes; None outside a repository or without git."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        commit = _git(git, directory, "rev-parse", "HEAD")
        status = _git(git, directory, "status", "--porcelain", "--untracked-files=no")
    except (subprocess.SubprocessError, OSError):
        return None
    return GitInfo(commit=commit, dirty=bool(status))


def _git(git: str, directory: Path, *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [git, *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=_GIT_TIMEOUT_SECONDS,
        check=True,
    )
    return result.stdout.strip()
