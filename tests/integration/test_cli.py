"""The CLI in process: every noun and verb, JSON output, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.cli.main import main

Data = tuple[pd.DataFrame, np.ndarray]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def model_files(churn_model: Any, churn_data: Data, tmp_path: Path) -> tuple[Path, Path]:
    import joblib

    frame, _ = churn_data
    joblib.dump(churn_model, tmp_path / "churn.joblib")
    frame.to_csv(tmp_path / "sample.csv", index=False)
    return tmp_path / "churn.joblib", tmp_path / "sample.csv"


def test_register_list_show_promote_alias_audit_delete(
    capsys: pytest.CaptureFixture[str], model_files: tuple[Path, Path]
) -> None:
    model, sample = model_files
    register = ["model", "register", str(model), "--name", "churn", "--sample", str(sample)]
    code, out, _ = run(capsys, *register, "--metric", "auc=0.9", "--tag", "team=risk")
    assert code == 0 and "registered models:/churn/1 (sklearn)" in out
    code, out, _ = run(capsys, *register, "--json")
    assert json.loads(out)["version"] == 2

    code, out, _ = run(capsys, "model", "list", "--json")
    assert [m["name"] for m in json.loads(out)] == ["churn"]
    code, out, _ = run(capsys, "version", "list", "churn", "--json")
    assert [v["version"] for v in json.loads(out)] == [2, 1]
    code, out, _ = run(capsys, "version", "list", "--filter", "metrics.auc > 0.5", "--json")
    assert [v["version"] for v in json.loads(out)] == [1]

    assert run(capsys, "version", "promote", "churn/2", "production")[0] == 0
    assert run(capsys, "alias", "set", "churn", "champion", "1")[0] == 0
    code, out, _ = run(capsys, "version", "show", "churn@production", "--json")
    assert json.loads(out)["aliases"] == ["production"]
    code, out, _ = run(capsys, "version", "show", "churn/1")
    assert "champion" in out and "tenure" in out  # the signature table

    code, out, _ = run(capsys, "audit", "list", "--model", "churn", "--json")
    actions = [e["action"] for e in json.loads(out)]
    assert actions[:2] == ["alias.set", "stage.promote"]

    code, _, err = run(capsys, "version", "delete", "churn/1", "--yes")
    assert code == 1 and err.strip().startswith("error: version 1 of 'churn' is still pointed at")
    code, out, _ = run(capsys, "version", "archive", "churn/1")
    assert code == 0 and out == "archived models:/churn/1; removed its aliases: champion\n"
    assert run(capsys, "alias", "delete", "churn", "production")[0] == 0
    code, out, _ = run(capsys, "model", "delete", "churn", "--yes")
    assert code == 0 and "deleted model churn (2 version(s))" in out


def register_versions(
    capsys: pytest.CaptureFixture[str], model_files: tuple[Path, Path], count: int
) -> None:
    """``count`` versions of ``churn``, registered through the CLI."""
    model, sample = model_files
    register = ["model", "register", str(model), "--name", "churn", "--sample", str(sample)]
    for _ in range(count):
        assert run(capsys, *register, "--no-accelerate")[0] == 0


def test_promote_archive_previous_says_everything_it_did(
    capsys: pytest.CaptureFixture[str], model_files: tuple[Path, Path]
) -> None:
    register_versions(capsys, model_files, 3)
    run(capsys, "version", "promote", "churn/1", "production")
    run(capsys, "alias", "set", "churn", "champion", "1")
    run(capsys, "version", "promote", "churn/1", "staging")
    code, out, _ = run(capsys, "version", "promote", "churn/2", "production", "--archive-previous")
    assert code == 0
    assert out.splitlines() == [
        "models:/churn/2 is now in production (replacing version 1)",
        "archived models:/churn/1; removed its aliases: champion, staging",
    ]
    code, out, _ = run(capsys, "version", "promote", "churn/1", "staging")
    assert out.splitlines() == [
        "models:/churn/1 is now in staging",
        "models:/churn/1 was archived; it is active again",
    ]
    code, out, _ = run(capsys, "alias", "set", "churn", "champion", "2")
    assert out == "churn@champion -> 2\n"
    code, out, _ = run(capsys, "alias", "set", "churn", "champion", "1")
    assert out == "churn@champion -> 1 (was version 2)\n"
    code, out, _ = run(capsys, "alias", "list", "churn")
    assert code == 0 and "champion" in out and "production" in out and "stage" in out


def test_archived_is_a_status_that_stage_search_and_model_show_agree_on(
    capsys: pytest.CaptureFixture[str], model_files: tuple[Path, Path]
) -> None:
    register_versions(capsys, model_files, 3)
    for number in ("1", "2"):
        assert run(capsys, "version", "archive", f"churn/{number}")[0] == 0

    def found(text: str) -> list[int]:
        code, out, _ = run(capsys, "version", "list", "churn", "--filter", text, "--json")
        assert code == 0
        return [v["version"] for v in json.loads(out)]

    assert found("stage = archived") == found("status = archived") == [2, 1]
    assert found("stage != archived") == found("status != archived") == [3]
    code, out, _ = run(capsys, "model", "show", "churn")
    assert "3 (1 active, 2 archived)" in out and "archived" not in out.split("versions")[0]
    code, _, err = run(capsys, "version", "show", "churn@archived")
    assert code == 1 and "status = archived" in err


def test_delete_refuses_a_pointed_at_version_before_asking(
    capsys: pytest.CaptureFixture[str],
    model_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, _ = model_files
    assert run(capsys, "model", "register", str(model), "--name", "churn")[0] == 0
    assert run(capsys, "alias", "set", "churn", "champion", "1")[0] == 0

    def no_prompt(*args: object, **kwargs: object) -> bool:
        raise AssertionError("asked for confirmation of a deletion that is refused")

    monkeypatch.setattr("click.confirm", no_prompt)
    code, out, err = run(capsys, "version", "delete", "churn/1")
    assert code == 1 and out == ""
    assert err == (
        "error: version 1 of 'churn' is still pointed at by champion; move or delete them first\n"
    )
    code, _, err = run(capsys, "model", "delete", "churn")
    assert code == 1 and "still has aliases (champion)" in err


def test_a_sample_csv_with_pandas_index_column_registers(
    capsys: pytest.CaptureFixture[str], model_files: tuple[Path, Path], churn_data: Data
) -> None:
    model, sample = model_files
    churn_data[0].to_csv(sample)  # pandas' default: the index as a first, unnamed column
    code, out, err = run(capsys, "model", "register", str(model), "--name", "churn", "--sample",
                         str(sample), "--no-accelerate")  # fmt: skip
    assert code == 0, err
    assert err.startswith("note: the first column of sample.csv has no name")
    assert "index=False" in err
    code, out, _ = run(capsys, "version", "show", "churn/1", "--json")
    columns = [c["name"] for c in json.loads(out)["signature"]["inputs"]["columns"]]
    assert columns == ["tenure", "charges", "contract", "region"]


def test_why_a_version_is_not_accelerated_is_shown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    import joblib
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(80, 3)), columns=["a", "b", "c"])
    joblib.dump(LogisticRegression().fit(frame, frame["a"] > 0), tmp_path / "m.joblib")
    frame.to_csv(tmp_path / "sample.csv", index=False)
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # the conversion cannot be made
    register = ["model", "register", str(tmp_path / "m.joblib"), "--name", "lr"]
    code, out, _ = run(capsys, *register, "--sample", str(tmp_path / "sample.csv"))
    assert code == 0
    assert "served by: the native model; no ONNX graph: skl2onnx is not installed" in out
    code, out, _ = run(capsys, "version", "show", "lr/1")
    assert "served by:    the native model; no ONNX graph: skl2onnx is not installed" in out
    code, out, _ = run(capsys, "version", "show", "lr/1", "--json")
    acceleration = json.loads(out)["acceleration"]
    assert acceleration["status"] == "unavailable"
    assert acceleration["reason"].startswith("skl2onnx is not installed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model", "show", "ghost"], "error: model 'ghost' does not exist"),
        (["version", "show", "churn/zero"], "error: invalid model reference 'churn/zero'"),
        (["version", "promote", "ghost@production", "production"], "does not name a version"),
        (["version", "list", "--filter", "colour = red"], "unknown field 'colour'"),
        (["model", "register", "/etc/hostname", "--name", "x"], "cannot tell which flavor"),
    ],
)
def test_errors_are_one_readable_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 1
    assert err.count("\n") == 1 and message in err
    assert "Traceback" not in err + out


def test_a_database_that_is_down_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    code, _, err = run(capsys, "model", "list")
    assert code == 1 and err.count("\n") == 1
    assert "127.0.0.1:1" in err


def test_invalid_settings_are_reported(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_VERSION_CHECK", "sometimes")
    code, _, err = run(capsys, "model", "list")
    assert code == 1 and "MODELPORT_VERSION_CHECK" in err


def test_db_upgrade_and_current(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and "revision" in out
    code, out, _ = run(capsys, "db", "current")
    assert code == 0 and "up to date" in out


def test_help_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for group in ("model", "version", "alias", "audit", "db"):
        code, out, _ = run(capsys, group, "--help")
        assert code == 0 and "Usage: modelport" in out


def test_register_stores_an_onnx_conversion_unless_told_not_to(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    import modelport

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
    joblib.dump(LogisticRegression().fit(frame, frame["a"] > 0), tmp_path / "m.joblib")
    frame.to_csv(tmp_path / "sample.csv", index=False)
    register = ["model", "register", str(tmp_path / "m.joblib"), "--sample"]
    register += [str(tmp_path / "sample.csv"), "--name", "lr"]
    code, out, _ = run(capsys, *register)
    assert code == 0 and "served by: its ONNX graph, in onnxruntime (verified on 200 rows" in out
    code, out, _ = run(capsys, *register, "--no-accelerate")
    assert code == 0 and "served by: the native model; no ONNX conversion was tried" in out

    with modelport.load("models:/lr/1") as converted, modelport.load("models:/lr/2") as native:
        assert converted.manifest.acceleration is not None
        assert converted.manifest.acceleration.status == "verified"
        assert native.manifest.acceleration is None
        assert (converted.runtime, native.runtime) == ("sklearn", "sklearn")  # SDK: native


def test_quickstart_refuses_a_bad_port_before_doing_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "quickstart", "--port", "70000")
    assert code == 2
    assert "Invalid value for '--port': 70000 is not in the range 0<=x<=65535" in err
    assert "training" not in out
    code, out, _ = run(capsys, "model", "list", "--json")
    assert json.loads(out) == []


def test_version_show_lists_the_declared_inference_params(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import modelport
    from testing_models import ScaledModel

    x = np.random.default_rng(0).normal(size=(5, 3))
    modelport.register(
        ScaledModel(), "scaled", sample_input=x, inference_params={"scale": 0.5, "shift": 2}
    )
    code, out, _ = run(capsys, "version", "show", "scaled/1")
    assert code == 0
    assert "inference params" in out
    lines = [[cell for cell in line.split() if cell != "\u2502"] for line in out.splitlines()]
    assert ["scale", "double", "0.5"] in lines and ["shift", "long", "2"] in lines
    code, out, _ = run(capsys, "version", "show", "scaled/1", "--json")
    assert [p["name"] for p in json.loads(out)["signature"]["params"]] == ["scale", "shift"]


def test_version_show_still_shows_a_version_whose_files_are_gone(
    capsys: pytest.CaptureFixture[str], model_files: tuple[Path, Path], isolated_home: Path
) -> None:
    import shutil

    model, sample = model_files
    run(capsys, "model", "register", str(model), "--name", "churn", "--sample", str(sample))
    shutil.rmtree(isolated_home / "artifacts")
    code, out, _ = run(capsys, "version", "show", "churn/1")
    assert code == 0 and "ref:          models:/churn/1" in out
    assert "served by:    unknown (cannot read its modelport.yaml: " in out
    code, out, _ = run(capsys, "version", "show", "churn/1", "--json")
    shown = json.loads(out)
    assert shown["acceleration"] is None and shown["acceleration_error"]


def test_a_sample_with_the_target_left_in_is_refused_by_name(
    capsys: pytest.CaptureFixture[str], model_files: tuple[Path, Path], churn_data: Data
) -> None:
    model, sample = model_files
    frame, target = churn_data
    frame.assign(churned=target).to_csv(sample, index=False)
    code, out, err = run(capsys, "model", "register", str(model), "--name", "churn", "--sample",
                         str(sample))  # fmt: skip
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(
        "error: the sample does not match the model: it has columns the model was not "
        "fitted on: 'churned'; pass the model's input features only (without the target)"
    )
