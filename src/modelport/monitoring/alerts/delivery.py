"""Delivering a notice: a signed webhook with retries (``webhooks.sending``, shared
with the registry's event webhooks), or a program run.

Every attempt is handed to ``record`` as it ends, so the delivery log shows failed
attempts even when a later one succeeds.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from modelport.webhooks.sending import Attempt, Record

_OUTPUT_TAIL = 500  # characters of a failed command's stderr kept in the log


def run_command(
    argv: Sequence[str],
    stdin: bytes,
    environment: Mapping[str, str],
    *,
    timeout: timedelta,
    record: Record,
) -> bool:
    """Run ``argv`` (no shell) with ``stdin`` and ``environment``; True when it exits 0."""
    started, clock = datetime.now(UTC), time.perf_counter()
    try:
        done = subprocess.run(  # noqa: S603 - the program is the operator's own configuration
            list(argv),
            input=stdin,
            env=dict(environment),
            capture_output=True,
            timeout=timeout.total_seconds(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        late = f"timed out after {timeout.total_seconds():g}s and was killed"
        record(Attempt(1, False, started, None, late, time.perf_counter() - clock))
        return False
    except OSError as exc:
        record(Attempt(1, False, started, None, f"cannot run {argv[0]!r}: {exc.strerror}", 0.0))
        return False
    ok = done.returncode == 0
    error = None if ok else _failure(done.returncode, done.stderr)
    record(Attempt(1, ok, started, done.returncode, error, time.perf_counter() - clock))
    return ok


def _failure(code: int, stderr: bytes) -> str:
    tail = stderr.decode(errors="replace").strip()[-_OUTPUT_TAIL:]
    return f"exit code {code}" + (f": {tail}" if tail else "")
