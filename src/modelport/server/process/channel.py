"""How the supervisor starts a worker process and talks to it.

A worker is spawned (never forked) with one end of a Unix socket pair, its *channel*,
and nothing else: ``python -P -m modelport.server.process.worker --channel FD``. It imports
its libraries, then waits on the channel for its start message: the worker spec's
path, its index, the pins file to wait for (if any) and, passed as a file descriptor,
the listening socket. It answers on the same channel with one status line
(``modelport.server.process.spec``). A worker whose channel closes before the message
came exits quietly: nobody is going to use it.

Separating the spawn from the start lets ``modelport serve`` spawn its first worker
before the command line and the settings are even parsed (``modelport.server.process.prespawn``),
so that the worker's imports, the longest part of a cold start, run meanwhile.

Every worker gets the private directory's ``metrics`` folder as
``PROMETHEUS_MULTIPROC_DIR`` in its environment, because prometheus_client reads it
when it is imported. This module uses the standard library only: it runs before
anything else is imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

WORKER_MODULE = "modelport.server.process.worker"
PRIVATE_DIRECTORY_PREFIX = "modelport-serve-"  # the supervisor's temporary directory
METRICS_DIRECTORY = "metrics"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CHANNEL_OPTION = "--channel"
_STDERR_FD = 2
_MAX_MESSAGE = 64 * 1024


def make_private_directory() -> Path:
    """A new private directory (mode 0700) with its ``metrics`` folder."""
    directory = Path(tempfile.mkdtemp(prefix=PRIVATE_DIRECTORY_PREFIX))
    (directory / METRICS_DIRECTORY).mkdir(mode=0o700)
    return directory


def spawn_worker(directory: Path) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Start a worker process that waits for its start message; the process and our
    end of its channel. Its stdout goes to our stderr (stdout carries only the
    "serving" line), and it runs in its own session (Ctrl+C reaches only us)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = {**os.environ, MULTIPROCESS_ENV: str(directory / METRICS_DIRECTORY)}
    command = [sys.executable, "-P", "-m", WORKER_MODULE, CHANNEL_OPTION, str(theirs.fileno())]
    try:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command,
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=_STDERR_FD,
            start_new_session=True,
        )
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    return process, ours


def stop_unstarted(process: subprocess.Popen[bytes], channel: socket.socket) -> None:
    """Kill a spawned worker that has served nothing (no drain needed) and reap it."""
    channel.close()
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait()


@dataclass(frozen=True)
class StartMessage:
    """What a spawned worker is told to do."""

    spec_path: Path
    index: int
    pins_path: Path | None
    listen_fd: int


def send_start(
    channel: socket.socket, *, spec_path: Path, index: int, pins_path: Path | None, listen_fd: int
) -> None:
    """Hand a waiting worker its work and the listening socket (raises ``OSError`` if
    the worker is gone)."""
    message = {
        "spec": str(spec_path),
        "index": index,
        "pins": str(pins_path) if pins_path is not None else None,
    }
    socket.send_fds(channel, [json.dumps(message).encode()], [listen_fd])


def receive_start(channel: socket.socket) -> StartMessage | None:
    """Wait for the start message; None when the channel closes first."""
    data, fds, _, _ = socket.recv_fds(channel, _MAX_MESSAGE, 1)
    if not data:
        for fd in fds:
            os.close(fd)
        return None
    if len(fds) != 1:
        raise ValueError("the start message came without the listening socket")
    message = json.loads(data)
    pins = message.get("pins")
    return StartMessage(
        spec_path=Path(message["spec"]),
        index=int(message["index"]),
        pins_path=Path(pins) if pins else None,
        listen_fd=fds[0],
    )
