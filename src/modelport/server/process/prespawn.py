"""Workers spawned ahead of need: the first worker of ``modelport serve``, spawned before
anything else happens, and the spare that replaces a worker that dies.

A cold start is mostly imports: the CLI's (click, pydantic) before the supervisor can
spawn a worker, then the worker's (uvicorn, numpy, onnxruntime, the app). When the
command line starts with ``serve``, ``start`` spawns worker 0 at once, so the two run
side by side; the supervisor ``adopt``s it and sends it its start message like any
other worker (``modelport.server.process.channel``). If the command ends without serving
(a bad option, an unknown model), the worker, which has served nothing, is killed at
exit and its private directory removed.

``SpareWorker`` keeps one more worker spawned, imported and waiting while the server
runs, so that a worker that dies is replaced without a process start and its imports.
Measured on a busy 2-core machine, 2 workers under keep-alive load, SIGKILL to one,
from the kill to the replacement listening: the tiny test app 1.9-2.8 s without a
spare, 0.1-0.3 s with one; the quickstart model (ONNX) 2.0-2.4 s without, 0.65-0.95 s
with one (the rest is resolving and loading the model). It costs one idle process
(about 35 MB proportional set size, 60 MB resident: Python, uvicorn, starlette, numpy;
the model frameworks load with the models).

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


class SpareWorker:
    """At most one spawned worker waiting for its start message, to replace one that
    dies; none when ``enabled`` is false."""

    def __init__(self, directory: Path, *, enabled: bool) -> None:
        self._directory = directory
        self._enabled = enabled
        self._waiting: PrespawnedWorker | None = None

    def take(self) -> PrespawnedWorker | None:
        """The spare, now the caller's to start (None when there is no live one)."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None and waiting.process.poll() is not None:
            stop_unstarted(waiting.process, waiting.channel)
            return None
        return waiting

    def replenish(self) -> None:
        """Spawn a spare if there is none (a failure to spawn is retried next time)."""
        if not self._enabled or self._waiting is not None:
            return
        try:
            process, channel = spawn_worker(self._directory)
        except OSError:
            return
        self._waiting = PrespawnedWorker(process, channel, self._directory)

    def discard(self) -> None:
        """Stop the spare (it has served nothing)."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            stop_unstarted(waiting.process, waiting.channel)
