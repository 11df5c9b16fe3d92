"""The README's first command on a fresh home: quickstart as a real process."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

MODELPORT = Path(sys.executable).with_name("modelport")


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPORT_HOME": str(home)}
    return subprocess.run(
        [str(MODELPORT), *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_quickstart_registers_promotes_and_predicts(tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    first = run_cli(home, "quickstart", "--no-serve")
    assert first.returncode == 0, first.stderr
    assert "registered models:/breast-cancer/1" in first.stdout
    assert first.stdout.count("prediction ") == 3
    assert (home / "modelport.db").is_file()

    # Training is deterministic: the same model again is the same version, not a new one.
    second = run_cli(home, "quickstart", "--no-serve")
    assert second.returncode == 0, second.stderr
    assert "models:/breast-cancer/1 is this same model (same predictions): reusing it" in (
        second.stdout
    )
    assert "3/4 it is already in production" in second.stdout
    listed = run_cli(home, "version", "list", "breast-cancer", "--json")
    assert [v["version"] for v in json.loads(listed.stdout)] == [1]

    shown = run_cli(home, "version", "show", "breast-cancer@production", "--json")
    assert json.loads(shown.stdout)["version"] == 1

    code = (
        "import modelport;"
        "m = modelport.load('models:/breast-cancer@production');"
        "print(m.predict(m.input_example()).tolist())"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "MODELPORT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("[")


def test_quickstart_ends_serving_the_model_until_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "MODELPORT_HOME": str(home)}
    # What a user sees in the terminal: stdout and stderr together.
    process = subprocess.Popen(
        [str(MODELPORT), "quickstart", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(line) for line in process.stdout], daemon=True
        ).start()
        output = ""
        deadline = time.monotonic() + 120
        while not output.endswith("Serving until Ctrl+C.\n"):
            assert process.poll() is None and time.monotonic() < deadline, output
            with contextlib.suppress(queue.Empty):
                output += lines.get(timeout=0.5)
        assert re.search(r"prediction over HTTP: 1 \(p\(benign\) = 0\.\d+\)", output), output
        url = re.search(r"on (http://127\.0\.0\.1:\d+) ", output)
        assert url, output
        # The printed MLflow curl line's body, sent as it is.
        body = re.search(r"-d '(\{\"inputs\": \[\[.*\]\]\})'", output)
        assert body, output
        response = httpx.post(
            f"{url.group(1)}/invocations",
            content=body.group(1),
            headers={"Content-Type": "application/json"},
        )
        assert response.json() == {"predictions": [1]}
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl+C: drain and exit 0
        code = process.wait(30)
        output += process.stdout.read()
        process.stdout.close()
    assert code == 0
    # The server's JSON logs went to the file the output names, not between its lines.
    assert not [line for line in output.splitlines() if line.lstrip().startswith("{")], output
    log = home / "logs" / "quickstart-server.log"
    assert f"(server log: {log})" in output
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("serving breast-cancer version 1" in entry["message"] for entry in logged)
