"""The signals the supervisor handles while it runs: SIGTERM and SIGINT stop it, and
SIGCHLD wakes its loop up (through a wakeup file descriptor) to reap a dead worker."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from types import FrameType


class SupervisorSignals:
    """SIGTERM, SIGINT (and SIGCHLD, to wake up) while the supervisor runs."""

    def __init__(self) -> None:
        self.stop = False
        self.interrupts = 0
        self.wakeup_fd = -1
        self._write_fd = -1
        self._previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}
        self._previous_wakeup = -1

    @contextlib.contextmanager
    def installed(self) -> Iterator[SupervisorSignals]:
        """Handle the signals in this block, and restore the previous handlers after it."""
        self.wakeup_fd, self._write_fd = os.pipe()
        for fd in (self.wakeup_fd, self._write_fd):
            os.set_blocking(fd, False)
        try:
            self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
            for sig, handler in (
                (signal.SIGTERM, self._on_stop),
                (signal.SIGINT, self._on_stop),
                (signal.SIGCHLD, self._on_child),
            ):
                self._previous[sig] = signal.signal(sig, handler)
            yield self
        finally:
            for number, previous in self._previous.items():
                signal.signal(number, previous)
            signal.set_wakeup_fd(self._previous_wakeup)
            os.close(self.wakeup_fd)
            os.close(self._write_fd)

    def _on_stop(self, sig: int, frame: FrameType | None) -> None:
        self.stop = True
        if sig == signal.SIGINT:
            self.interrupts += 1

    def _on_child(self, sig: int, frame: FrameType | None) -> None:
        """Nothing to do here: the byte on the wakeup fd makes the loop reap."""
