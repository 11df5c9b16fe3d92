"""Running ``modelport ui`` (the control plane) as a real process in tests: start it on
a free loopback port, read the URL its ``--json`` line prints, and always stop it (by
its own PID)."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testing_process import MODELPORT, env_for


@dataclass
class ControlPlane:
    """A running control plane: its process, base URL and captured stderr file."""

    process: subprocess.Popen[str]
    url: str
    stderr: Path

    def log(self) -> str:
        """What it wrote to stderr so far (for failure messages)."""
        return self.stderr.read_text()[-3000:]


@contextmanager
def control_plane(
    home: Path, args: Sequence[str] = (), *, startup_s: float = 60, **env: str
) -> Iterator[ControlPlane]:
    """``modelport ui --port 0 --json ARGS`` over ``home`` until the block ends (then
    SIGTERM, or SIGKILL after 30 s)."""
    home.mkdir(parents=True, exist_ok=True)
    stderr = home.parent / f"ui-{time.monotonic_ns()}.log"
    with stderr.open("w") as log:
        process = subprocess.Popen(
            [str(MODELPORT), "ui", "--port", "0", "--json", *args],
            env=env_for(home, **env), stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    try:
        url = _wait_for_url(process, startup_s, stderr)
        yield ControlPlane(process, url, stderr)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def _wait_for_url(process: subprocess.Popen[str], timeout: float, stderr: Path) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            if line.startswith("{"):
                return str(json.loads(line)["url"])
        if process.poll() is not None:
            break
    raise AssertionError(f"the control plane did not start: {stderr.read_text()[-2000:]}")
