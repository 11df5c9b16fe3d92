"""The first worker of ``modelport serve``, spawned before anything else happens.

A cold start is mostly imports: the CLI's (click, pydantic) before the supervisor can
spawn a worker, then the worker's (uvicorn, numpy, onnxruntime, the app). When the
command line starts with ``serve``, ``start`` spawns worker 0 at once, so the two run
side by side; the supervisor ``adopt``s it and sends it its start message like any
other worker (``modelport.server.process.channel``). If the command ends without serving
(a bad option, an unknown model), the worker, which has served nothing, is killed at
exit and its private directory removed.

Standard library only: this runs before the CLI imports anything.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modelport.server.process.channel import make_private_directory, spawn_worker, stop_unstarted

_HELP = frozenset({"-h", "--help"})


@dataclass
class PrespawnedWorker:
    """A spawned worker waiting for its start message, and its private directory."""

    process: subprocess.Popen[bytes]
    channel: socket.socket
    directory: Path


_waiting: list[PrespawnedWorker] = []  # at most one, until adopted


def start(argv: Sequence[str]) -> None:
    """Spawn worker 0 if ``argv`` (without the program name) asks to serve."""
    if _waiting or not argv or argv[0] != "serve" or _HELP.intersection(argv):
        return
    directory = make_private_directory()
    try:
        process, channel = spawn_worker(directory)
    except OSError:  # the supervisor will spawn it, and report the error if it recurs
        shutil.rmtree(directory, ignore_errors=True)
        return
    _waiting.append(PrespawnedWorker(process, channel, directory))
    atexit.register(_discard)


def adopt() -> PrespawnedWorker | None:
    """The waiting worker, now the caller's to start and stop (None if there is none)."""
    return _waiting.pop() if _waiting else None


def _discard() -> None:
    """Nobody adopted the worker: stop it (it is still importing or waiting, and has
    served nothing) and remove its directory."""
    worker = adopt()
    if worker is None:
        return
    stop_unstarted(worker.process, worker.channel)
    shutil.rmtree(worker.directory, ignore_errors=True)
