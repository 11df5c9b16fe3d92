"""``modelport ray serve`` as a real process: it starts a Ray of its own, answers once
its ``--json`` line is out, and on SIGTERM exits 0 having stopped every process it
started (Ray's included). The test stops only its own process, by its PID."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from testing_cluster_scoring import FEATURES, register_classifier, rows
from testing_process import MODELPORT, env_for

pytest.importorskip("ray.serve")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


def descendants(root: int) -> set[int]:
    """Every live process under ``root`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ray_serve_answers_and_sigterm_stops_everything_it_started(tmp_path: Path) -> None:
    home = tmp_path / "home"
    register_classifier(home)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "ray-serve.log").open("w")
    process = subprocess.Popen(
        [str(MODELPORT), "ray", "serve", "churn@champion", "--port", str(port),
         "--num-cpus", "1", "--replica-cpus", "0.5", "--json"],
        env=env_for(home), stdout=subprocess.PIPE, stderr=log, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 120)
        assert ready, (tmp_path / "ray-serve.log").read_text()[-2000:]
        line = json.loads(process.stdout.readline())
        assert line == {"url": f"http://127.0.0.1:{port}", "models": ["churn"], "replicas": 1}
        frame = rows(5)[list(FEATURES)]
        answer = httpx.post(
            f"{line['url']}/invocations",
            json={"dataframe_split": frame.to_dict(orient="split")},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 5
        started = descendants(process.pid)
        assert started  # Ray's processes run under the command

        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in started if alive(pid)]
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
        log.close()
