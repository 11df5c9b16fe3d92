"""``modelport export`` as a user runs it: a real process exporting a registered
version, its JSON result, the file run by onnxruntime alone, and its JSON errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelport
from testing_process import MODELPORT, env_for

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")


def churn(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows),
            "charges": rng.normal(70, 20, rows).round(2),
            "contract": rng.choice(["monthly", "yearly", "two-year"], rows),
        }
    )


def pipeline() -> Any:
    """Scaled numbers and one-hot text into a logistic regression: a graph with one
    input per column."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = churn(300, 0)
    labels = ((data["contract"] == "monthly") & (data["tenure"] < 24)).to_numpy().astype(int)
    features = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["tenure", "charges"]),
            ("text", OneHotEncoder(handle_unknown="ignore"), ["contract"]),
        ]
    )
    return make_pipeline(features, LogisticRegression()).fit(data, labels)


def _modelport(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODELPORT), *args], env=env_for(home), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_export_prints_json_and_writes_a_graph_onnxruntime_runs(
    isolated_home: Path, tmp_path: Path
) -> None:
    model = pipeline()
    modelport.register(model, "churn", sample_input=churn(300, 0))
    out = tmp_path / "churn.onnx"

    done = _modelport(isolated_home, "export", "churn/1", "--format", "onnx", "--out", str(out),
                      "--json")  # fmt: skip

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["model"], result["version"], result["graph"]) == ("churn", 1, "package")
    assert result["path"] == str(out) and result["input_layout"] == "columns"
    assert [port["name"] for port in result["inputs"]] == ["tenure", "charges", "contract"]
    assert result["accuracy"]["within_tolerance"] and result["accuracy"]["reference_rows"] == 256
    graph = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = graph.get_modelmeta().custom_metadata_map
    assert (meta["modelport.model"], meta["modelport.version"]) == ("churn", "1")
    fresh = churn(200, 1)
    feed = {
        port["name"]: fresh[port["name"]]
        .to_numpy()
        .astype(object if port["type"] == "string" else port["type"])
        .reshape(-1, 1)
        for port in result["inputs"]
    }
    labels, probabilities = graph.run(["label", "probabilities"], feed)
    np.testing.assert_array_equal(labels, model.predict(fresh))
    np.testing.assert_allclose(probabilities, model.predict_proba(fresh), atol=1e-6)


@pytest.mark.slow
def test_human_output_names_the_file_and_the_check(isolated_home: Path, tmp_path: Path) -> None:
    modelport.register(pipeline(), "churn", sample_input=churn(300, 0))

    done = _modelport(isolated_home, "export", "churn/1", "--quantize", "int8",
                      "--out", str(tmp_path / "churn.onnx"))  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "written:" in done.stdout and "261 rows" in done.stdout
    assert "warning: nothing to quantize" in done.stderr


def test_a_model_that_cannot_be_exported_is_a_json_error(
    isolated_home: Path, tmp_path: Path
) -> None:
    from testing_models import EchoModel

    modelport.register(EchoModel(), "echo", sample_input=churn(50, 0)[["tenure", "charges"]])
    out = tmp_path / "echo.onnx"

    done = _modelport(isolated_home, "export", "echo/1", "--out", str(out), "--json")

    assert done.returncode == 1 and done.stdout == ""
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert error["code"] == "UNSUPPORTED_OPERATION"
    assert "cannot be exported to ONNX" in error["error"]
    assert "does not convert its models to ONNX" in error["error"]
    assert not out.exists()


def test_beyond_the_tolerance_the_json_error_carries_the_numbers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from sklearn.neural_network import MLPClassifier

    from modelport.cli.main import main

    data = churn(300, 0)[["tenure", "charges"]].astype(float)
    labels = (data["tenure"] < 24).to_numpy().astype(int)
    model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=2000, random_state=0)
    modelport.register(model.fit(data, labels), "mlp", sample_input=data)
    out = tmp_path / "mlp.onnx"
    args = ["export", "mlp/1", "--quantize", "int8", "--tolerance", "0", "--out", str(out)]

    with pytest.raises(SystemExit) as refused:
        main([*args, "--json"])
    error = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert refused.value.code == 1 and not out.exists()
    assert error["code"] == "ACCURACY_LOSS" and error["model"] == "mlp" and error["version"] == 1
    assert error["accuracy"]["max_abs_diff"] > 0 and not error["accuracy"]["within_tolerance"]

    with pytest.raises(SystemExit) as allowed:
        main([*args, "--allow-accuracy-loss", "--json"])
    captured = capsys.readouterr()
    assert allowed.value.code == 0 and out.exists()
    assert json.loads(captured.out)["quantization"]["applied"] is True
    warning = json.loads(captured.err.strip().splitlines()[-1])
    assert warning["category"] == "AccuracyLossWarning"
