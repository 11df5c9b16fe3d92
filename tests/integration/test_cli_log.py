"""``modelport log export|tail|compact`` over a real prediction log (Parquet + DuckDB)."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import modelport
from modelport.cli.main import main
from modelport.monitoring.prediction_log import PredictionBatch, PredictionLogWriter
from modelport.monitoring.prediction_log.records import PredictionRecord
from modelport.package.options import PackageOptions
from testing_models import EchoModel
from testing_process import MODELPORT

pytestmark = pytest.mark.timeout(120)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def log_requests(home: Path, version: str, count: int, *, at: float | None = None) -> None:
    """``count`` 2-row requests of ``churn`` ``version``, logged ``at`` (default now)."""
    writer = PredictionLogWriter(str(home / "predictions"), flush_interval_s=60)
    for i in range(count):
        writer.put_batch(
            PredictionBatch(
                f"v{version}r{i}", (at or time.time()) + i * 0.001, "churn", version, "v2",
                0.002, 200, 2, {"tenure": np.array([i, i + 1])},
                {"predictions": np.array([0.0, 1.0])}, {"customer_id": np.array(["a", "b"])},
            )
        )  # fmt: skip
    writer.close()


def test_export_writes_the_window_of_one_version_or_all(
    capsys: pytest.CaptureFixture[str], isolated_home: Path, tmp_path: Path
) -> None:
    log_requests(isolated_home, "1", 5)
    log_requests(isolated_home, "2", 3)
    log_requests(isolated_home, "2", 4, at=time.time() - 3 * 86400)  # outside 24h
    out = tmp_path / "window.parquet"
    code, stdout, err = run(capsys, "log", "export", "churn", "--out", str(out), "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["rows"] == 16 and summary["version"] is None
    table = pq.read_table(out)
    assert table.num_rows == 16
    assert {"in_tenure", "out_predictions", "id_customer_id"} <= set(table.column_names)
    code, stdout, _ = run(
        capsys, "log", "export", "churn/2", "--since", "7d", "--out", str(out), "--json"
    )
    assert json.loads(stdout)["rows"] == 14
    assert set(pq.read_table(out).column("version").to_pylist()) == {"2"}


def test_export_follows_an_alias_through_the_registry(
    capsys: pytest.CaptureFixture[str], isolated_home: Path, tmp_path: Path
) -> None:
    x = np.zeros((2, 3))
    with modelport.connect() as registry:
        for _ in range(2):
            registry.register(EchoModel(), "churn", PackageOptions(sample_input=x))
        registry.promote("churn", 2, "production")
    log_requests(isolated_home, "1", 2)
    log_requests(isolated_home, "2", 3)
    out = tmp_path / "prod.parquet"
    code, stdout, err = run(
        capsys, "log", "export", "churn@production", "--out", str(out), "--json"
    )
    assert code == 0, err
    assert json.loads(stdout)["version"] == "2" and json.loads(stdout)["rows"] == 6


def test_bad_window_is_a_clear_json_error(
    capsys: pytest.CaptureFixture[str], isolated_home: Path, tmp_path: Path
) -> None:
    out = str(tmp_path / "x.parquet")
    args = ["log", "export", "churn", "--since", "yesterday", "--out", out, "--json"]
    code, _, err = run(capsys, *args)
    assert code == 1
    error = json.loads(err)
    assert "since='yesterday'" in error["error"] and "30m" in error["error"]


def test_tail_prints_the_newest_rows(
    capsys: pytest.CaptureFixture[str], isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich's table fits the terminal
    log_requests(isolated_home, "1", 10)
    code, stdout, err = run(capsys, "log", "tail", "churn", "-n", "3", "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [r["prediction_id"] for r in rows] == ["v1r8-1", "v1r9-0", "v1r9-1"]
    code, stdout, _ = run(capsys, "log", "tail", "churn")
    assert "v1r9-1" in stdout and "out_predictions" in stdout


def test_tail_follow_prints_rows_as_they_are_logged(isolated_home: Path) -> None:
    log_requests(isolated_home, "1", 1)
    command = [str(MODELPORT), "log", "tail", "churn", "--follow", "--json"]
    follower = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        first = [json.loads(follower.stdout.readline()) for _ in range(2)]
        assert [r["prediction_id"] for r in first] == ["v1r0-0", "v1r0-1"]
        log_requests(isolated_home, "2", 1)
        later = [json.loads(follower.stdout.readline()) for _ in range(2)]
        assert [r["prediction_id"] for r in later] == ["v2r0-0", "v2r0-1"]
    finally:
        follower.kill()
        follower.wait(30)
        if follower.stdout is not None:
            follower.stdout.close()


def test_compact_merges_past_days_and_drops_expired_ones(
    capsys: pytest.CaptureFixture[str], isolated_home: Path
) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    for i in range(3):  # three writers: three segments
        writer = PredictionLogWriter(str(isolated_home / "predictions"), flush_interval_s=60)
        writer.put(PredictionRecord(f"p{i}", f"r{i}", yesterday, "churn", "1", "v2", 0.1, 200))
        writer.close()
    old = time.time() - 40 * 86400
    log_requests(isolated_home, "1", 1, at=old)
    code, stdout, err = run(capsys, "log", "compact", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["segments_merged"] == 3 and result["days_deleted"] == 1
    day = isolated_home / "predictions" / "churn" / "1" / yesterday.date().isoformat()
    assert len(list(day.glob("*.parquet"))) == 1


def test_register_marks_id_columns(
    capsys: pytest.CaptureFixture[str], isolated_home: Path, tmp_path: Path, churn_model: object
) -> None:
    import joblib
    import pandas as pd

    frame = pd.DataFrame(
        {"tenure": [1, 30], "charges": [20.0, 80.0], "contract": ["monthly", "yearly"]}
        | {"region": ["north", "south"]}
    )
    joblib.dump(churn_model, tmp_path / "churn.joblib")
    frame.to_csv(tmp_path / "sample.csv", index=False)
    code, _, err = run(
        capsys, "model", "register", str(tmp_path / "churn.joblib"), "--name", "churn",
        "--sample", str(tmp_path / "sample.csv"), "--no-accelerate",
        "--id-column", "customer_id", "--json",
    )  # fmt: skip
    assert code == 0, err
    with modelport.connect() as registry:
        manifest = registry.get_manifest(registry.resolve("churn/1"))
    assert manifest.signature is not None
    assert manifest.signature.id_columns == ("customer_id",)
    code, _, err = run(
        capsys, "model", "register", str(tmp_path / "churn.joblib"), "--name", "churn",
        "--sample", str(tmp_path / "sample.csv"), "--no-accelerate",
        "--id-column", "tenure", "--json",
    )  # fmt: skip
    assert code == 1
    assert "id column 'tenure' is also an input of the model" in json.loads(err)["error"]
