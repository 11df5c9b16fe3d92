"""``modelport batch predict`` as a user runs it: a real process, its JSON summary, its
errors, and a run killed midway (SIGKILL) that leaves no output and resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelport
from testing_batch import expected, read_output, register, rows
from testing_models import EchoModel
from testing_process import MODELPORT, env_for


def _modelport(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODELPORT), *args], env=env_for(home), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def test_batch_predict_prints_a_json_summary(isolated_home: Path, tmp_path: Path) -> None:
    version = register()
    data = rows(1_500)
    data.to_parquet(tmp_path / "in.parquet", row_group_size=500)
    output = tmp_path / "scores.parquet"

    done = _modelport(
        isolated_home, "batch", "predict", "churn@production", "--input",
        str(tmp_path / "in.parquet"), "--output", str(output), "--chunk-rows", "500",
        "--outputs", "prediction,probabilities", "--json",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert {k: summary[k] for k in ("model", "version", "rows_in", "rows_out", "rows_failed")} == {
        "model": "churn", "version": version, "rows_in": 1_500, "rows_out": 1_500,
        "rows_failed": 0,
    }  # fmt: skip
    assert summary["parts"] == 3 and summary["output"] == str(output)
    assert summary["errors"] is None and summary["rows_per_s"] > 0
    # Not a terminal: plain progress lines on stderr, the last one at the end.
    assert "batch: 1,500/1,500 rows (100%)" in done.stderr
    scored = read_output(output)
    np.testing.assert_array_equal(scored["prediction"], expected(data))
    assert {"probability_0", "probability_1"} <= set(scored.columns)


def test_a_bad_row_fails_with_a_json_error_naming_it(isolated_home: Path, tmp_path: Path) -> None:
    register()
    data = rows(100)
    data.loc[17, "charges"] = np.nan
    data.to_csv(tmp_path / "in.csv", index=False)

    done = _modelport(
        isolated_home, "batch", "predict", "churn@production", "--input",
        str(tmp_path / "in.csv"), "--output", str(tmp_path / "out"), "--json",
    )  # fmt: skip

    assert done.returncode == 1
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert error["code"] == "INVALID_INPUT" and error["field"] == "charges"
    assert error["error"].startswith(f"{tmp_path / 'in.csv'}, row 17, column 'charges'")
    assert not (tmp_path / "out").exists()


def test_help_lists_the_options(isolated_home: Path) -> None:
    done = _modelport(isolated_home, "batch", "predict", "--help")
    assert done.returncode == 0
    for option in ("--input", "--output", "--keep", "--on-error", "--resume",
                   "--allow-moved-alias", "--overwrite", "--engine", "--json"):  # fmt: skip
        assert option in done.stdout


@pytest.mark.slow
def test_a_killed_run_leaves_no_output_and_resumes(isolated_home: Path, tmp_path: Path) -> None:
    # A model that takes 50 ms a chunk: the run lasts seconds, long enough to kill it.
    sample = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    modelport.register(EchoModel(), "echo", sample_input=sample, model_config={"delay": 0.05},
                       id_columns=["row_id"])  # fmt: skip
    count = 2_000
    data = pd.DataFrame(
        {"row_id": np.arange(count), "a": np.arange(count) * 1.0, "b": np.ones(count)}
    )
    data.to_parquet(tmp_path / "in.parquet", row_group_size=20)
    output = tmp_path / "out"
    staging = Path(f"{output}.modelport-staging")
    args = ["batch", "predict", "echo/1", "--input", str(tmp_path / "in.parquet"),
            "--output", str(output), "--chunk-rows", "20", "--workers", "1"]  # fmt: skip

    process = subprocess.Popen(
        [str(MODELPORT), *args], env=env_for(isolated_home),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            journal = staging / "_job.json"
            if journal.exists() and json.loads(journal.read_text())["parts"]:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)

    assert not output.exists()  # nothing that looks like an output, complete or not
    assert list(staging.glob("part-*.parquet"))

    done = _modelport(isolated_home, *args, "--resume", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["resumed_parts"] >= 1 and summary["parts"] == 100
    assert summary["rows_out"] == count
    scored = _read_by(output, "row_id")
    assert scored["row_id"].tolist() == list(range(count))
    np.testing.assert_array_equal(scored["prediction"], data["a"] + data["b"])


def _read_by(path: Path, key: str) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in sorted(path.glob("part-*"))]
    return pd.concat(frames).sort_values(key).reset_index(drop=True)
