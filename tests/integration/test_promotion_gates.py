"""Promotion to production runs the gates: refused with the numbers, skipped with a
reason in the audit trail; ``modelport version validate`` exits 0, 1 or 2."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from modelport.artifacts.local import LocalArtifactStore
from modelport.cli.main import main
from modelport.config import Settings
from modelport.errors import GateFailedError, InvalidArgumentError
from modelport.flavors.catalog import default_catalog
from modelport.metadata.memory import MemoryMetadataStore
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService
from modelport.rollout.gates_default import build_gates


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    return frame, (frame["a"] - frame["b"] > 0).to_numpy().astype(int)


@pytest.fixture
def holdout(tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, y = data
    path = tmp_path / "test.parquet"
    frame.assign(y=y).to_parquet(path)
    return path


def gated_registry(tmp_path: Path, settings: Settings) -> RegistryService:
    registry = RegistryService(
        MemoryMetadataStore(),
        LocalArtifactStore(tmp_path / "artifacts"),
        default_catalog(),
        actor="alice",
    )
    registry.gates = build_gates(settings, registry)
    return registry


def register_good_then_dummy(
    registry: RegistryService, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, y = data
    options = PackageOptions(sample_input=frame, accelerate=False)
    registry.register(LogisticRegression().fit(frame, y), "churn", options)
    registry.register(DummyClassifier().fit(frame, y), "churn", options)


def test_promotion_is_refused_by_a_failed_gate_and_skipped_with_a_reason(
    tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray], holdout: Path
) -> None:
    settings = Settings(gates={"holdout": str(holdout), "label": "y"})
    with gated_registry(tmp_path, settings) as registry:
        register_good_then_dummy(registry, data)
        registry.promote("churn", 1, "production")  # nothing to compare with: passes
        registry.promote("churn", 2, "staging")  # staging is not guarded

        with pytest.raises(GateFailedError, match="holdout: accuracy") as info:
            registry.promote("churn", 2, "production")
        assert info.value.to_dict()["report"]["exit_code"] == 1
        results = {r["gate"]: r for r in info.value.report["results"]}
        assert results["holdout"]["outcome"] == "failed"
        assert results["holdout"]["details"]["baseline"] > 0.9
        assert results["signature"]["outcome"] == "passed"
        assert registry.get_model("churn").aliases["production"] == 1

        with pytest.raises(InvalidArgumentError, match="needs a reason"):
            registry.promote("churn", 2, "production", skip_gates=" ")
        registry.promote("churn", 2, "production", skip_gates="hotfix approved by Bea")
        entry = registry.get_audit_log("churn", limit=1)[0]
        assert (entry.action, entry.target, entry.version) == ("stage.promote", "production", 2)
        assert entry.after is not None and entry.after["skip_gates"] == "hotfix approved by Bea"

        registry.promote("churn", 1, "production")  # the better one: every gate passes
        after = registry.get_audit_log("churn", limit=1)[0].after
        assert after is not None
        assert after["gates"] == {
            "artifacts": "passed",
            "signature": "passed",
            "holdout": "passed",
            "latency": "skipped",
        }


def test_a_registry_without_gates_runs_none(
    registry: RegistryService, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    register_good_then_dummy(registry, data)
    registry.promote("churn", 1, "production")
    registry.promote("churn", 2, "production")
    entry = registry.get_audit_log("churn", limit=1)[0]
    assert entry.after is not None and "gates" not in entry.after


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def register_cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, y = data
    frame.to_csv(tmp_path / "sample.csv", index=False)
    joblib.dump(LogisticRegression().fit(frame, y), tmp_path / "good.joblib")
    joblib.dump(DummyClassifier().fit(frame, y), tmp_path / "dummy.joblib")
    for model in ("good", "dummy"):
        register = ["model", "register", str(tmp_path / f"{model}.joblib"), "--name", "churn"]
        code, _, err = run(capsys, *register, "--sample", str(tmp_path / "sample.csv"))
        assert code == 0, err


def test_validate_exit_codes_and_promote_from_the_cli(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    data: tuple[pd.DataFrame, np.ndarray],
    holdout: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register_cli(capsys, tmp_path, data)
    code, out, _ = run(capsys, "version", "validate", "churn/2", "--json")
    report = json.loads(out)
    assert code == 0 and report["baseline"] is None and report["passed"]
    assert [r["outcome"] for r in report["results"]] == ["passed", "skipped", "skipped", "skipped"]

    assert run(capsys, "version", "promote", "churn/1", "production")[0] == 0
    code, out, _ = run(capsys, "version", "validate", "churn@production", "--json")
    assert code == 0 and json.loads(out)["version"] == 1 and json.loads(out)["baseline"] is None
    validate = ["version", "validate", "churn/2", "--to", "production", "--holdout", str(holdout)]
    code, out, _ = run(capsys, *validate, "--label", "y")
    assert code == 1
    assert "Gates for churn/2 going to production (there now: version 1)" in out
    assert "holdout" in out and "failed" in out and "refused: a gate failed" in out

    code, out, _ = run(capsys, *validate, "--label", "nope", "--json")
    assert code == 2
    holdout_result = json.loads(out)["results"][2]
    assert holdout_result["outcome"] == "error" and "no column 'nope'" in holdout_result["message"]

    monkeypatch.setenv("MODELPORT_GATES__HOLDOUT", str(holdout))
    monkeypatch.setenv("MODELPORT_GATES__LABEL", "y")
    code, out, err = run(capsys, "version", "promote", "churn/2", "production", "--json")
    assert code == 1 and out == ""
    error = json.loads(err)
    assert error["code"] == "GATE_FAILED" and error["report"]["exit_code"] == 1

    skip = ["--skip-gates", "the holdout predates the new feature"]
    code, out, _ = run(capsys, "version", "promote", "churn/2", "production", *skip)
    assert code == 0 and "models:/churn/2 is now in production (replacing version 1)" in out
    code, out, _ = run(capsys, "audit", "list", "--model", "churn", "--json")
    assert json.loads(out)[0]["after"]["skip_gates"] == "the holdout predates the new feature"

    code, _, err = run(capsys, "alias", "set", "churn", "production", "1")  # the better one
    assert code == 0, err
    code, _, err = run(capsys, "alias", "set", "churn", "production", "2")
    assert code == 1 and err.startswith("error: churn/2 is refused for production: holdout:")
    code, out, _ = run(capsys, "alias", "set", "churn", "production", "2", "--skip-gates", "ok")
    assert code == 0 and out == "models:/churn/2 is now in production (replacing version 1)\n"


def test_an_undecided_gate_refuses_too_and_aliases_can_be_guarded(
    tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray], holdout: Path
) -> None:
    settings = Settings(gates={"holdout": str(holdout), "label": "missing"})
    with gated_registry(tmp_path, settings) as registry:
        register_good_then_dummy(registry, data)
        # Even with nothing to compare with, a holdout that cannot be read refuses.
        with pytest.raises(GateFailedError, match="no column 'missing'") as info:
            registry.promote("churn", 1, "production")
        assert info.value.report["exit_code"] == 2
        assert "production" not in registry.get_model("churn").aliases

    guarded = Settings(gates={"targets": ["champion"], "holdout": str(holdout), "label": "y"})
    with gated_registry(tmp_path / "second", guarded) as registry:
        register_good_then_dummy(registry, data)
        registry.set_alias("churn", "champion", 1)
        registry.promote("churn", 2, "production")  # production is not guarded here
        with pytest.raises(GateFailedError, match="holdout: accuracy"):
            registry.set_alias("churn", "champion", 2)
        assert registry.get_model("churn").aliases == {"champion": 1, "production": 2}
