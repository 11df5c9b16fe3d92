"""Running ``modelport serve`` as a real process in tests: start, wait for its line,
talk HTTP to it, and always stop it (by its own PID)."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MODELPORT = Path(sys.executable).with_name("modelport")
_SERVING = re.compile(r"modelport (?:serving .*|control plane) on (https?)://([\d.]+):(\d+)")


@dataclass
class ServerProcess:
    """A running server: its process, base URL and captured stderr file."""

    process: subprocess.Popen[str]
    url: str
    host: str
    port: int
    stderr: Path

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, wait for the drain, and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a server using the registry under ``home``."""
    tests = str(Path(__file__).parent)
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "MODELPORT_HOME": str(home),
        "PYTHONPATH": f"{tests}{os.pathsep}{path}" if path else tests,  # custom test models
        **extra,
    }


@contextmanager
def serving(
    home: Path, args: Sequence[str], *, startup_s: float = 60, command: str = "serve", **env: str
) -> Iterator[ServerProcess]:
    """``modelport serve ARGS --port 0`` (or ``command``: ``ui``) until the block ends
    (then SIGTERM, or SIGKILL)."""
    stderr = home.parent / f"serve-{time.monotonic_ns()}.log"
    with stderr.open("w") as log:
        process = subprocess.Popen(
            [str(MODELPORT), command, *args, "--port", "0"],
            env=env_for(home, **env), stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    try:
        scheme, host, port = _wait_for_line(process, startup_s, stderr)
        yield ServerProcess(process, f"{scheme}://{host}:{port}", host, port, stderr)
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


def _wait_for_line(
    process: subprocess.Popen[str], timeout: float, stderr: Path
) -> tuple[str, str, int]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            match = _SERVING.search(line)
            if match:
                return match.group(1), match.group(2), int(match.group(3))
        if process.poll() is not None:
            break
    raise AssertionError(f"the server did not start: {stderr.read_text()[-2000:]}")
