"""The README's first command on a fresh home: quickstart as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MODELPORT = Path(sys.executable).with_name("modelport")


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPORT_HOME": str(home)}
    return subprocess.run(
        [str(MODELPORT), *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_quickstart_registers_promotes_and_predicts(tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    first = run_cli(home, "quickstart")
    assert first.returncode == 0, first.stderr
    assert "registered models:/breast-cancer/1" in first.stdout
    assert first.stdout.count("prediction ") == 3
    assert (home / "modelport.db").is_file()

    second = run_cli(home, "quickstart")
    assert second.returncode == 0, second.stderr
    assert "registered models:/breast-cancer/2" in second.stdout

    shown = run_cli(home, "version", "show", "breast-cancer@production", "--json")
    assert '"version": 2' in shown.stdout

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
