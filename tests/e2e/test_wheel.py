"""The wheel users install carries what the code needs at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_migrations_and_type_marker(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("modelport-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "modelport/py.typed",
        "modelport/metadata/migrations/env.py",
        "modelport/metadata/migrations/script.py.mako",
        "modelport/metadata/migrations/versions/0001_initial.py",
        "modelport/monitoring/report/templates/report.html.j2",
    ):
        assert required in names, required
    assert not any(name.startswith("tests/") for name in names)
