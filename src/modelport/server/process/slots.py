"""The supervisor's record of its workers: one slot per worker index, whose process is
replaced when it dies, and how its exits are described."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass


def describe_exit(code: int) -> str:
    """A process's exit, in words (``code 3``, ``signal SIGKILL``)."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


@dataclass
class WorkerSlot:
    """One worker slot; its process is replaced when it dies."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    status_fd: int | None = None
    buffer: bytes = b""
    ready: bool = False
    failure: str | None = None
    started_at: float = 0.0
    crashes: int = 0
    restart_at: float | None = None

    @property
    def pid(self) -> int:
        """The current process id (0 when none)."""
        return self.process.pid if self.process is not None else 0

    def alive(self) -> bool:
        """True while the process runs (reaps it once it has exited)."""
        return self.process is not None and self.process.poll() is None
