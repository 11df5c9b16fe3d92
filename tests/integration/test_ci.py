"""``modelport ci init``: the workflow it writes parses, has its jobs, and the commands it
runs take a freshly trained model to production against a real (temporary) registry."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelport.cli.main import main

MODELPORT = Path(sys.executable).with_name("modelport")
EXPRESSION = re.compile(r"\$\{\{\s*([\w.-]+)\s*\}\}")
TRAIN = """\
import numpy as np
import pandas as pd
import joblib
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
frame = pd.DataFrame({"tenure": rng.integers(1, 72, 200), "charges": rng.normal(70, 20, 200)})
target = (frame["tenure"] < 24).astype(int)
joblib.dump(LogisticRegression().fit(frame, target), "model.joblib")
frame.head(20).to_csv("sample.csv", index=False)
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def written(capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> dict[str, Any]:
    code, _, err = run(capsys, "ci", "init", "--out", str(out), *args)
    assert code == 0, err
    workflow = yaml.safe_load(out.read_text())
    assert isinstance(workflow, dict)
    return workflow


def test_the_workflow_has_a_staging_job_and_an_approved_production_job(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / ".github" / "workflows" / "modelport.yml"
    workflow = written(capsys, out, "--model", "churn", "--train", "python src/train.py --fast")
    staging, production = workflow["jobs"]["staging"], workflow["jobs"]["production"]
    assert workflow["env"]["MODEL"] == "churn"
    assert production["needs"] == "staging" and production["environment"] == "production"
    assert "environment" not in staging
    scripts = [step.get("run", "") for step in staging["steps"]]
    assert "python src/train.py --fast" in scripts[3]
    assert any("modelport model register" in script for script in scripts)
    assert any('version validate "$MODEL/$VERSION" --to staging' in s for s in scripts)
    assert any('version promote "$MODEL/$VERSION" staging' in s for s in scripts)
    last = production["steps"][-1]["run"]
    assert last == 'modelport version promote "$MODEL/$VERSION" production'


def test_an_existing_file_is_kept_unless_forced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "modelport.yml"
    out.write_text("mine\n")
    code, _, err = run(capsys, "ci", "init", "--out", str(out))
    assert code == 1 and "exists; pass --force" in err
    assert out.read_text() == "mine\n"
    assert written(capsys, out, "--force")["name"] == "modelport model"


def test_a_bad_model_name_or_a_multi_line_value_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "modelport.yml"
    code, _, err = run(capsys, "ci", "init", "--out", str(out), "--model", "no spaces")
    assert code == 1 and not out.exists()
    code, _, err = run(capsys, "ci", "init", "--out", str(out), "--train", "a\nb")
    assert code == 1 and "--train must be one non-empty line" in err and not out.exists()


# --------------------------------------------------------- running the workflow's commands


def has_validate() -> bool:
    """Whether this build has ``modelport version validate`` (the gates)."""
    done = subprocess.run(
        [str(MODELPORT), "version", "validate", "--help"], capture_output=True, check=False
    )
    return done.returncode == 0


class Runner:
    """Runs a workflow's ``run`` steps as GitHub Actions would, against a local registry:
    the secrets are a temporary SQLite database and artifact directory, checkout and
    setup-python are this checkout and this Python, and ``pip install`` is skipped
    (modelport is installed already)."""

    def __init__(self, workdir: Path, secrets: dict[str, str], *, validate: bool) -> None:
        self.workdir = workdir
        self.secrets = secrets
        self.validate = validate
        self.outputs: dict[str, dict[str, str]] = {}
        self.ran: list[str] = []

    def job(self, workflow: dict[str, Any], name: str) -> None:
        job = workflow["jobs"][name]
        steps: dict[str, dict[str, str]] = {}
        for step in job["steps"]:
            if "run" not in step or step["name"] == "Install":
                continue
            if "version validate" in step["run"] and not self.validate:
                continue
            env = {**workflow["env"], **job.get("env", {}), **step.get("env", {})}
            env = {key: self.resolve(str(value), steps) for key, value in env.items()}
            outputs = self.step(step["run"], env)
            if "id" in step:
                steps[step["id"]] = outputs
        self.outputs[name] = {
            key: self.resolve(value, steps) for key, value in job.get("outputs", {}).items()
        }

    def step(self, script: str, env: dict[str, str]) -> dict[str, str]:
        output = self.workdir / "github-output"
        output.write_text("")
        path = f"{MODELPORT.parent}{os.pathsep}{os.environ['PATH']}"
        environment = {**os.environ, **env, "PATH": path, "GITHUB_OUTPUT": str(output)}
        environment["GITHUB_SHA"] = "0123abcd"
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=self.workdir,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{script}\nfailed: {done.stdout}\n{done.stderr}"
        self.ran.append(script)
        lines = output.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def resolve(self, text: str, steps: dict[str, dict[str, str]]) -> str:
        def value(match: re.Match[str]) -> str:
            kind, *rest = match[1].split(".")
            if kind == "secrets":
                return self.secrets.get(rest[0], "")
            if kind == "github" and rest == ["actor"]:
                return "ci-bot"
            if kind == "steps":
                return steps[rest[0]][rest[2]]
            if kind == "needs":
                return self.outputs[rest[0]][rest[2]]
            raise AssertionError(f"the test does not know the expression {match[0]}")

        return EXPRESSION.sub(value, text)


@pytest.mark.slow
def test_the_workflow_commands_take_a_trained_model_to_production(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workdir = tmp_path / "repository"
    workdir.mkdir()
    (workdir / "train.py").write_text(textwrap.dedent(TRAIN))
    workflow = written(
        capsys, workdir / ".github" / "workflows" / "modelport.yml", "--model", "churn"
    )
    secrets = {
        "MODELPORT_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
        "MODELPORT_ARTIFACTS_URI": str(tmp_path / "shared-artifacts"),
    }
    runner = Runner(workdir, secrets, validate=has_validate())
    runner.job(workflow, "staging")
    assert runner.outputs["staging"] == {"version": "1"}
    runner.job(workflow, "production")  # after the reviewer's approval on GitHub

    shown = subprocess.run(
        [str(MODELPORT), "version", "show", "churn/1", "--json"],
        env={**os.environ, **secrets},
        capture_output=True,
        text=True,
        check=True,
    )
    version = json.loads(shown.stdout)
    assert sorted(version["aliases"]) == ["production", "staging"]
    assert version["tags"]["git_sha"] == "0123abcd" and version["created_by"] == "ci-bot"
    promotions = [script for script in runner.ran if "version promote" in script]
    assert len(promotions) == 2
