"""``modelport feedback upload`` and ``modelport monitor performance`` on real files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

import modelport
from modelport.monitoring.feedback.logdb import log_database
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from modelport.package.options import PackageOptions
from testing_models import EchoModel

pytestmark = pytest.mark.timeout(120)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from modelport.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def log(home: Path, predictions: list[int], *, version: str = "1", prefix: str = "r") -> None:
    writer = PredictionLogWriter(str(home / "predictions"), flush_interval_s=60)
    now = datetime.now(UTC) - timedelta(minutes=5)
    for i, value in enumerate(predictions):
        writer.put(
            PredictionRecord(
                f"{prefix}{i}-0",
                f"{prefix}{i}",
                now,
                "churn",
                version,
                "v2",
                0.001,
                200,
                {"x": i},
                {"predictions": value},
            )
        )
    writer.close()


def test_upload_counts_accepted_unknown_corrected_and_rejected(
    capsys: pytest.CaptureFixture[str], isolated_home: Path, tmp_path: Path
) -> None:
    log(isolated_home, [1, 0, 1, 0])
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "prediction_id,churned\nr0-0,1\nr1-0,1\nr2-0,\nghost-0,0\n,1\nr1-0,0\n", encoding="utf-8"
    )
    upload = ["feedback", "upload", str(labels), "--model", "churn"]
    code, out, err = run(capsys, *upload, "--id", "prediction_id", "--label", "churned", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result == {
        "model": "churn",
        "rows": 6,
        "accepted": 4,
        "unknown": 1,
        "corrected": 1,  # r1-0 twice in the file: the later row wins
        "rejected": 2,
        "rejected_rows": [3, 5],
        "unknown_keys": ["ghost-0"],
    }
    code, out, _ = run(capsys, *upload, "--id", "prediction_id", "--label", "churned")
    assert code == 0 and "corrected:    4" in out and "unknown:      1" in out
    with log_database(str(isolated_home / "predictions"), "churn") as db:
        rows = db.execute("SELECT key, label FROM latest_labels ORDER BY key").fetchall()
        sources = db.execute("SELECT DISTINCT source, actor FROM labels").fetchall()
    assert rows == [("ghost-0", "0"), ("r0-0", "1"), ("r1-0", "0")]
    assert [source for source, _ in sources] == ["upload"] and sources[0][1]


def test_upload_parquet_with_an_id_column(
    capsys: pytest.CaptureFixture[str], isolated_home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "labels.parquet"
    pd.DataFrame({"customer_id": [1, 2], "churned": [True, False]}).to_parquet(path)
    args = ["feedback", "upload", str(path), "--model", "churn", "--id", "customer_id"]
    code, out, err = run(capsys, *args, "--label", "churned", "--json")
    assert code == 0, err
    assert json.loads(out)["accepted"] == 2 and json.loads(out)["unknown"] == 2  # no log yet
    with log_database(str(isolated_home / "predictions"), "churn") as db:
        rows = db.execute("SELECT key_kind, key, label FROM latest_labels ORDER BY key").fetchall()
    assert rows == [("customer_id", "1", "true"), ("customer_id", "2", "false")]


def test_upload_errors_say_what_is_wrong(
    capsys: pytest.CaptureFixture[str], isolated_home: Path, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("id,y\na,1\n", encoding="utf-8")
    args = ["feedback", "upload", str(labels), "--model", "churn", "--id", "prediction_id"]
    code, _, err = run(capsys, *args, "--label", "y", "--json")
    assert code == 1
    error = json.loads(err)
    assert "no column 'prediction_id' (--id); its columns: id, y" in error["error"]
    other = tmp_path / "labels.json"
    other.write_text("{}", encoding="utf-8")
    code, _, err = run(capsys, "feedback", "upload", str(other), "--model", "churn",
                       "--id", "id", "--label", "y")  # fmt: skip
    assert code == 1 and "neither CSV nor Parquet" in err


def test_monitor_performance_by_name_and_by_alias(
    capsys: pytest.CaptureFixture[str], isolated_home: Path, tmp_path: Path
) -> None:
    with modelport.connect() as registry:
        options = PackageOptions(sample_input=np.zeros((4, 3)))
        registry.register(EchoModel(), "churn", options)
        registry.register(EchoModel(), "churn", options)
        registry.promote("churn", 2, "production")
    log(isolated_home, [1, 1, 0, 0], version="1", prefix="a")
    log(isolated_home, [1, 0, 1], version="2", prefix="b")
    labels = tmp_path / "labels.csv"
    keys = ["a0-0", "a1-0", "a2-0", "a3-0", "b0-0", "b1-0", "b2-0"]
    truth = [1, 0, 0, 1, 1, 1, 1]
    labels.write_text(
        "prediction_id,y\n" + "".join(f"{k},{v}\n" for k, v in zip(keys, truth, strict=True)),
        encoding="utf-8",
    )
    code, _, err = run(capsys, "feedback", "upload", str(labels), "--model", "churn",
                       "--id", "prediction_id", "--label", "y")  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "monitor", "performance", "churn", "--since", "1h", "--json")
    assert code == 0, err
    everything = json.loads(out)
    y_pred = [1, 1, 0, 0, 1, 0, 1]
    assert everything["version"] is None and everything["labeled"] == 7
    assert everything["metrics"]["f1"] == pytest.approx(skm.f1_score(truth, y_pred))
    code, out, err = run(capsys, "monitor", "performance", "churn@production", "--json")
    production = json.loads(out)
    assert production["version"] == "2" and production["predictions"] == 3
    assert production["metrics"]["accuracy"] == pytest.approx(2 / 3)
    code, out, _ = run(capsys, "monitor", "performance", "churn/1", "--since", "7d")
    assert code == 0 and "accuracy" in out and "coverage:     100.0%" in out
    code, _, err = run(capsys, "monitor", "performance", "churn", "--since", "soon", "--json")
    assert code == 1 and "neither a duration nor a timestamp" in json.loads(err)["error"]
