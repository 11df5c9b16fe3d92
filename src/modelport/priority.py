"""Work that must never slow the serving workers (a worker's shadow process, the
prediction log's converter): the kernel's idle scheduling class, and a gate on the
machine's CPU.

The idle class keeps such a process off a core whenever something else wants it, but
not off its neighbours: one running on the other hyperthread of a busy core (or a VM's
vCPU that is one) slows that core's work by a third, and its data evicts the workers'
from the shared caches. On the benchmark's 2-vCPU machine a shadow cost the champion
10-15% of its throughput with the cores nearly saturated, and the log's converter ~5%.
So such a process also pauses while the rest of the machine keeps more than ``limit``
of all cores busy (``CpuGate``): ``open`` says whether it may work now, from the CPU
time the machine (less this process) used since the last reading, taken at most every
``INTERVAL_S``. Without ``/proc/stat`` (not Linux) the gate is always open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def go_idle() -> bool:
    """Put every thread of this process in the idle scheduling class (threads started
    later inherit it from their starter); nice 19 where there is none. Whether the idle
    class was set."""
    if not hasattr(os, "SCHED_IDLE"):  # not Linux
        with contextlib.suppress(OSError):
            os.nice(19)
        return False
    try:
        _set_every_thread(os.SCHED_IDLE)
    except OSError as exc:
        logger.warning("cannot lower the priority of process %d: %s", os.getpid(), exc)
        with contextlib.suppress(OSError):
            os.nice(19)
        return False
    return True


def go_normal() -> bool:
    """Back to the normal class (a last pass somebody waits for). Whether it was allowed:
    leaving the idle class needs a nice limit (``RLIMIT_NICE``) that permits it."""
    if not hasattr(os, "SCHED_OTHER"):
        return False
    try:
        _set_every_thread(os.SCHED_OTHER)
    except OSError:
        return False
    return True


def _set_every_thread(policy: int) -> None:
    param = os.sched_param(0)
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setscheduler(int(task), policy, param)


INTERVAL_S = 0.1
_STAT = Path("/proc/stat")
_IDLE_FIELDS = (3, 4)  # idle, iowait in the "cpu" line's numbers


class CpuGate:
    """Open while the machine's CPU, less this process's, is at most ``limit`` busy."""

    def __init__(self, limit: float) -> None:
        self._limit = limit
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._reading()
        self._checked = time.monotonic()
        self._open = True

    @property
    def busy_limit(self) -> float:
        """The share of all cores above which the gate closes."""
        return self._limit

    def open(self) -> bool:
        """Whether the shadow may run now (re-read when ``INTERVAL_S`` passed)."""
        if self._limit >= 1.0 or self._last is None:
            return True
        now = time.monotonic()
        if now - self._checked >= INTERVAL_S:
            self._checked = now
            reading = self._reading()
            if reading is not None and self._last is not None:
                busy, total, own = (a - b for a, b in zip(reading, self._last, strict=True))
                # The process's own ticks come from its clock, the machine's from /proc/stat:
                # both are USER_HZ, so they subtract.
                others = max(0, busy - own)
                self._open = total <= 0 or others / total <= self._limit
            self._last = reading
        return self._open

    def _reading(self) -> tuple[int, int, int] | None:
        """Busy and total ticks of all cores, and this process's CPU ticks."""
        try:
            line = _STAT.read_text().split("\n", 1)[0]
        except OSError:
            return None
        numbers = [int(v) for v in line.split()[1:]]
        # guest times are already in user/nice: the first eight fields make the total
        total = sum(numbers[:8])
        idle = sum(numbers[i] for i in _IDLE_FIELDS)
        times = os.times()
        own = round((times.user + times.system) * self._ticks)
        return total - idle, total, own
