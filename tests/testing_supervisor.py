"""``modelport serve`` with the tiny app of ``e2e/tiny_app.py`` in its workers, as a real
process tree on a free port of 127.0.0.1: start it, read its "serving" line, and always
stop it (and any worker it left behind) by pid."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent / "e2e"  # where tiny_app.py lives
# `serve` is registered in the CLI by cli/main.py; add it here if it is not (yet).
LAUNCH = (
    "import sys; from modelport.cli.main import cli, main; "
    "from modelport.cli.serve import serve; "
    "'serve' in cli.commands or cli.add_command(serve); main(sys.argv[1:])"
)
START_TIMEOUT_S = 30.0


@dataclass
class Server:
    """A running ``modelport serve`` and what the test learned about it."""

    process: subprocess.Popen[bytes]
    stderr_path: Path
    url: str = ""
    port: int = 0
    seen_pids: set[int] = field(default_factory=set)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)


def launch(tmp_path: Path, *args: str, factory: str = "tiny_app:build", **env: str) -> Server:
    """Start ``modelport serve`` with the tiny app; stdout is a pipe, stderr a file."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MODELPORT_SERVE__") and name != "MODELPORT_CONFIG"
    }
    # Keep the caller's path first-class: a checkout run with PYTHONPATH=src serves itself.
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    environment = {**inherited, "PYTHONPATH": path, **env}
    stderr_path = tmp_path / "serve.stderr"
    command = [sys.executable, "-c", LAUNCH, "serve", "--port", "0", "--app-factory", factory]
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [*command, *args, "tiny@production"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=environment,
        )
    return Server(process, stderr_path)


def read_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """One line of the process's stdout ('' at EOF), or fail after ``timeout``."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no line on stdout within {timeout} s (got {data!r})")
            if selector.select(remaining):
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk
    return data.decode().partition("\n")[0]


@contextlib.contextmanager
def serving(tmp_path: Path, *args: str, **env: str) -> Iterator[Server]:
    """A server that has printed its "serving" line; stopped by pid afterwards."""
    server = launch(tmp_path, *args, **env)
    try:
        line = read_line(server.process, START_TIMEOUT_S)
        scheme = "https" if "--tls-cert" in args else "http"
        assert line.startswith(f"modelport serving 1 model(s) on {scheme}://127.0.0.1:"), (
            line + server.stderr()
        )
        server.url = line.split(" on ")[1].split(" ")[0]
        server.port = int(server.url.rsplit(":", 1)[1])
        yield server
    finally:
        stop(server)


def stop(server: Server) -> None:
    """Stop the supervisor (SIGTERM, then SIGKILL) and any worker it left behind."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()
    for pid in server.seen_pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def get_pid(client: httpx.Client, server: Server) -> int:
    response = client.get("/pid")
    assert response.status_code == 200
    pid = int(response.json())
    server.seen_pids.add(pid)
    return pid


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
