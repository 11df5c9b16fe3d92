"""The kernel's idle scheduling class, for work that must never slow the serving workers
(a worker's shadow process, the prediction log's converter): such a process runs only on
CPU the others leave free and is preempted as soon as they need it."""

from __future__ import annotations

import contextlib
import logging
import os

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
