"""The README runs as written, top to bottom, on a fresh home.

Its first two (indented) lines are what a newcomer and CI run: they install, so they are
checked, not run. Every fenced block after them runs in order in one empty directory, as
the README tells a reader to: ``python`` blocks in one Python session (a process that
runs each block in the same namespace, as pasting them would), ``shell`` blocks with
bash and the ``modelport`` CLI on the PATH. The ``modelport serve`` block starts the
server in the background on a free port (the blocks after it talk to it there instead
of 8080) and it is stopped by its PID at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from testing_process import ServerProcess, serving

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCED = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
INDENTED = re.compile(r"(?:^|\n)\n((?: {4}.*\n)+)")
BLOCK_TIMEOUT_S = 240
DONE = "@@readme-block-done"

# Runs each block it is sent (one JSON string per line) in one namespace.
_SESSION = f"""
import json, sys, traceback
namespace = {{"__name__": "__main__"}}
for line in sys.stdin:
    status = "ok"
    try:
        exec(compile(json.loads(line), "<README block>", "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        status = "failed"
    sys.stdout.flush()
    sys.stderr.flush()
    print("\\n{DONE} " + status, flush=True)
"""


def fenced_blocks() -> list[tuple[str, str]]:
    return [(match.group(1), match.group(2)) for match in FENCED.finditer(README)]


def test_the_test_command_is_what_ci_runs() -> None:
    commands = re.findall(r"^    (python3 -m venv .*)$", README, flags=re.MULTILINE)
    assert len(commands) == 2
    assert "modelport quickstart" in commands[0]
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_block_is_one_this_test_runs() -> None:
    # The install lines are the only indented blocks; every fenced block says what runs it.
    outside_fences = FENCED.sub("", README)
    indented = [block.strip() for block in INDENTED.findall(outside_fences)]
    assert len(indented) == 2 and all(b.startswith("python3 -m venv") for b in indented)
    assert {language for language, _ in fenced_blocks()} == {"python", "shell"}


class PythonSession:
    """One Python process running blocks in one namespace, like a reader pasting them."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-c", _SESSION],
            cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def run(self, code: str) -> str:
        """Run ``code``; its output, once it succeeded."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(code) + "\n")
        self.process.stdin.flush()
        output = ""
        deadline = time.monotonic() + BLOCK_TIMEOUT_S
        while True:
            assert time.monotonic() < deadline, f"block timed out:\n{code}\n{output}"
            assert self.process.poll() is None or not self._lines.empty(), output
            with contextlib.suppress(queue.Empty):
                line = self._lines.get(timeout=0.5)
                if line.startswith(DONE):
                    assert line.split()[-1] == "ok", f"block failed:\n{code}\n{output}"
                    return output
                output += line

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)
            self._reader.join(10)  # it reaches the end of the output once the process exits
            assert self.process.stdout is not None
            self.process.stdout.close()


def run_shell(text: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", text],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{text}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_the_readme_runs_top_to_bottom(tmp_path: Path) -> None:
    home, workdir = tmp_path / "home", tmp_path / "work"
    workdir.mkdir()
    env = {
        **os.environ,
        "MODELPORT_HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    transcript: list[str] = []
    server: ServerProcess | None = None
    python = PythonSession(workdir, env)
    with contextlib.ExitStack() as stack:
        stack.callback(python.close)
        for language, written in fenced_blocks():
            text = written
            if server is not None:  # where the README says 8080, the test's server is
                text = text.replace("localhost:8080", f"127.0.0.1:{server.port}")
            if language == "python":
                transcript.append(python.run(text))
            elif text.startswith("modelport serve "):
                args = shlex.split(text.split("#")[0])[2:]
                server = stack.enter_context(serving(home, args))
                assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
            else:
                transcript.append(run_shell(text, workdir, env))
        assert server is not None, "the README serves a model"
        assert server.stop() == 0  # SIGTERM: drains and exits 0
    (tmp_path / "transcript.txt").write_text("\n".join(transcript))
    check_transcript("\n".join(transcript))


def check_transcript(output: str) -> None:
    """What the README's comments and prose promise, seen in what its blocks printed."""
    assert "models:/cancer/1" in output
    assert "registered models:/cancer/2 (sklearn)" in output
    assert "served by: its ONNX graph, in onnxruntime" in output
    assert "models:/cancer/2 is now in production (replacing version 1)" in output
    assert "archived models:/cancer/1; removed its aliases: champion" in output
    assert '"outputs"' in output and not re.search(r'"error": ?"', output)  # no error answers
    assert '{"predictions":[' in output.replace(" ", "")  # MLflow's answer to rows.csv
    assert "{'predictions': [0, 0]}" in output  # the standard-library client
