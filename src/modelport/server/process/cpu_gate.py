"""Whether the machine has CPU to spare for a shadow, from ``/proc/stat``.

The idle scheduling class keeps a shadow process off a core whenever something else
wants it, but not off its neighbours: a shadow running on the other hyperthread of a
busy core (or a VM's vCPU that is one) slows that core's work by a third, and its model
evicts the champion's from the shared caches. On the benchmark's 2-vCPU machine that
cost the champion 10-15% of its throughput with the cores nearly saturated. So the
shadow process also pauses while the rest of the machine keeps more than ``limit`` of
all cores busy: ``open`` says whether it may answer copies now, from the CPU time the
machine (less this process) used since the last reading, taken at most every
``INTERVAL_S``. Without ``/proc/stat`` (not Linux) the gate is always open.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

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
