"""``modelport version stats`` and ``modelport monitor drift`` on a real registry and log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from drift_logs import log_table, write_log
from modelport.artifacts.local import LocalArtifactStore
from modelport.cli.main import main
from modelport.package.digests import sha256_file

Data = tuple[pd.DataFrame, np.ndarray]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def registered(
    capsys: pytest.CaptureFixture[str], churn_model: Any, churn_data: Data, tmp_path: Path
) -> Path:
    """Version 1 of ``churn`` registered without a sample (no statistics); the sample file."""
    import joblib

    frame, _ = churn_data
    joblib.dump(churn_model, tmp_path / "churn.joblib")
    frame.to_csv(tmp_path / "train.csv", index=False)
    register = ["model", "register", str(tmp_path / "churn.joblib"), "--name", "churn"]
    assert run(capsys, *register, "--no-accelerate")[0] == 0
    return tmp_path / "train.csv"


def _shifted(frame: pd.DataFrame, rows: int, seed: int, shift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sample = frame.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    if shift:
        sample["tenure"] = sample["tenure"] + 30
        sample["charges"] = sample["charges"] + rng.normal(25, 5, rows)
        sample["contract"] = "monthly"
    return sample


def _log(home: Path, frame: pd.DataFrame, start: datetime) -> None:
    table = log_table(frame, model="churn", version="1", start=start)
    write_log(home / "predictions", table, model="churn", version="1")


def test_missing_statistics_name_the_command_that_computes_them(
    capsys: pytest.CaptureFixture[str], registered: Path
) -> None:
    code, _, err = run(capsys, "monitor", "drift", "churn/1", "--since", "1h")
    assert code == 1
    assert "has no reference statistics" in err
    assert "modelport version stats churn/1 --sample FILE" in err

    code, _, err = run(capsys, "monitor", "drift", "churn/1", "--json")
    document = json.loads(err)
    assert document["code"] == "MISSING_STATISTICS" and document["version"] == 1


def test_recomputed_statistics_leave_the_package_untouched_and_drive_drift(
    capsys: pytest.CaptureFixture[str],
    registered: Path,
    churn_data: Data,
    isolated_home: Path,
) -> None:
    artifacts = isolated_home / "artifacts" / "churn"
    package = next(artifacts.iterdir())
    before = {p.name: sha256_file(p) for p in package.iterdir() if p.is_file()}

    code, out, _ = run(capsys, "version", "stats", "churn/1", "--sample", str(registered), "--json")
    assert code == 0, out
    summary = json.loads(out)
    assert summary["stats_version"] == 2 and summary["rows"] == 300
    assert summary["features"] == ["charges", "contract", "region", "tenure"]
    assert summary["source"] == "recomputed" and summary["predictions"]
    # The package is as registered (its digests still hold: it still loads), and the
    # statistics sit beside it under their own key.
    assert {p.name: sha256_file(p) for p in package.iterdir() if p.is_file()} == before
    assert run(capsys, "version", "show", "churn/1")[0] == 0
    assert LocalArtifactStore(isolated_home / "artifacts").exists(summary["artifact_key"])

    frame, _ = churn_data
    now = datetime.now(UTC)
    _log(isolated_home, _shifted(frame, 2000, 1, shift=False), now - timedelta(hours=3))
    _log(isolated_home, _shifted(frame, 2000, 2, shift=True), now - timedelta(minutes=20))

    code, out, _ = run(capsys, "monitor", "drift", "churn/1", "--since", "1h", "--json")
    assert code == 0, out
    recent = json.loads(out)
    assert recent["rows"] == 2000 and recent["dataset_drift"] is True
    assert {c["column"] for c in recent["columns"]} == {"tenure", "charges", "contract", "region"}
    assert {c["column"] for c in recent["columns"] if c["drifted"]} >= {"tenure", "contract"}
    assert "prediction" in recent["untested"]  # these rows were logged without outputs

    until = (now - timedelta(hours=1)).isoformat()
    code, out, _ = run(capsys, "monitor", "drift", "churn/1", "--since", "4h", "--until", until)
    assert code == 0
    assert "dataset:      not drifted" in out and "rows:         2000" in out

    code, out, _ = run(
        capsys, "monitor", "drift", "churn/1", "--since", "1h",
        "--method", "tenure=psi", "--threshold", "tenure=5", "--json",
    )  # fmt: skip
    tenure = next(c for c in json.loads(out)["columns"] if c["column"] == "tenure")
    assert (tenure["method"], tenure["threshold"]) == ("psi", 5.0)


def test_recomputing_replaces_the_old_copy_and_deleting_the_version_removes_it(
    capsys: pytest.CaptureFixture[str], registered: Path, isolated_home: Path
) -> None:
    store = LocalArtifactStore(isolated_home / "artifacts")
    first = json.loads(
        run(capsys, "version", "stats", "churn/1", "--sample", str(registered), "--json")[1]
    )
    smaller = registered.with_name("smaller.csv")
    pd.read_csv(registered).head(120).to_csv(smaller, index=False)
    second = json.loads(
        run(capsys, "version", "stats", "churn/1", "--sample", str(smaller), "--json")[1]
    )

    assert second["rows"] == 120 and second["artifact_key"] != first["artifact_key"]
    assert not store.exists(first["artifact_key"]) and store.exists(second["artifact_key"])
    _, out, _ = run(capsys, "audit", "list", "--model", "churn", "--json")
    assert [e["action"] for e in json.loads(out)].count("version.tags") == 2

    assert run(capsys, "model", "delete", "churn", "--yes")[0] == 0
    assert store.keys() == []


def test_bad_window_and_options_are_clear_errors(
    capsys: pytest.CaptureFixture[str], registered: Path
) -> None:
    code, _, err = run(capsys, "monitor", "drift", "churn/1", "--since", "yesterday")
    assert code == 1 and "since='yesterday'" in err and "30m" in err
    run(capsys, "version", "stats", "churn/1", "--sample", str(registered))
    code, _, err = run(capsys, "monitor", "drift", "churn/1", "--method", "tenure=magic")
    assert code == 1 and "unknown drift method 'magic'" in err
    code, _, err = run(capsys, "monitor", "drift", "churn/1", "--threshold", "tenure=high")
    assert code == 1 and "must be a number" in err
