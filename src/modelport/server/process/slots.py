"""The supervisor's record of its workers: one slot per worker index, whose process is
replaced when it dies (at once the first time, with back-off when it keeps dying), and
how its exits are described."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
STABLE_AFTER_S = 30.0


def describe_exit(code: int) -> str:
    """A process's exit, in words (``code 3``, ``signal SIGKILL``)."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def backoff(crashes: int) -> float:
    """Seconds before restarting a worker after ``crashes`` crashes in a row: 0.5,
    doubling up to 10."""
    return float(min(BACKOFF_FIRST_S * 2 ** (crashes - 1), BACKOFF_MAX_S))


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

    def exited(self, now: float) -> float:
        """Record that the process exited; the seconds until its replacement starts.

        A first crash is replaced at once (the spare worker is waiting); a crash loop
        backs off. The count starts again once a worker has stayed up ``STABLE_AFTER_S``.
        """
        self.process, self.ready = None, False
        if now - self.started_at >= STABLE_AFTER_S:
            self.crashes = 0
        self.crashes += 1
        delay = 0.0 if self.crashes == 1 else backoff(self.crashes - 1)
        self.restart_at = now + delay
        return delay
