"""The same model argument means the same thing to ``modelport.load``, ``parse_source``
(``modelport serve``) and the CLI's registry commands."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelport
from modelport.cli.main import main
from modelport.errors import ModelportError
from modelport.serving.sources import ModelSource, parse_source

Data = tuple[pd.DataFrame, np.ndarray]
# What an argument turned out to be: ("registry", model name), ("package", directory)
# or ("error", the message's first words).
Answer = tuple[str, str]


@pytest.fixture
def workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, churn_model: Any, churn_data: Data
) -> Path:
    """``churn`` and ``fraud`` registered; a directory ``plain`` that is no package."""
    frame, _ = churn_data
    for name in ("churn", "fraud"):
        modelport.register(churn_model, name, sample_input=frame, accelerate=False)
    modelport.set_alias("churn", "champion", 1)
    work = tmp_path / "work"
    (work / "plain").mkdir(parents=True)
    monkeypatch.chdir(work)
    return work


def save_package(directory: str, model: Any, data: Data) -> None:
    modelport.save(model, directory, sample_input=data[0], accelerate=False)


def _error(exc: ModelportError) -> Answer:
    return ("error", exc.message.split(";")[0])


def through_load(text: str) -> Answer:
    try:
        with modelport.load(text) as loaded:
            if loaded.version is not None:
                return ("registry", loaded.version.name)
            return ("package", str(loaded.directory.resolve()))
    except ModelportError as exc:
        return _error(exc)


def through_parse_source(text: str) -> Answer:
    try:
        source = parse_source(text)
    except ModelportError as exc:
        return _error(exc)
    if source.path is not None:
        return ("package", source.path)
    return ("registry", source.model_ref.name)


def through_cli_serve(
    text: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Answer:
    served: list[ModelSource] = []

    def run_server(settings: Any, sources: Sequence[ModelSource], **_: Any) -> int:
        served.extend(sources)  # what the server would have been asked to serve
        return 0

    monkeypatch.setattr("modelport.cli.serve.run_server", run_server)
    code, err = _run(capsys, "serve", text)
    if code != 0:
        return ("error", err.strip().removeprefix("error: ").split(";")[0])
    (source,) = served
    if source.path is not None:
        return ("package", source.path)
    return ("registry", source.model_ref.name)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    _, err = capsys.readouterr()
    return int(info.value.code or 0), err


CASES = [
    ("churn", ("registry", "churn")),  # a bare name: its latest version
    ("churn/1", ("registry", "churn")),
    ("churn@champion", ("registry", "churn")),
    ("models:/churn@champion", ("registry", "churn")),
    ("fraud", "PACKAGE fraud"),  # a package directory of the same name wins ...
    ("models:/fraud", ("registry", "fraud")),  # ... unless the scheme says registry
    ("./fraud", "PACKAGE fraud"),
    (
        "plain",
        (
            "error",
            "'plain' is a directory without modelport.yaml, so not a model package "
            "(for the registered model, write models:/plain)",
        ),
    ),
    (
        "churn/zero",
        (
            "error",
            "invalid model reference 'churn/zero': "
            "the version must be a positive integer or 'latest'",
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_load_serve_and_the_cli_agree(
    workdir: Path,
    churn_model: Any,
    churn_data: Data,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    expected: Answer | str,
) -> None:
    save_package("fraud", churn_model, churn_data)
    if isinstance(expected, str):
        expected = ("package", str(workdir / expected.split()[1]))

    answers = {
        "load": through_load(text),
        "parse_source": through_parse_source(text),
        "cli serve": through_cli_serve(text, capsys, monkeypatch),
    }
    assert answers == dict.fromkeys(answers, expected)


def test_a_bare_name_without_a_package_directory_is_the_registry_model(workdir: Path) -> None:
    assert through_load("fraud") == ("registry", "fraud")
    assert through_parse_source("fraud") == ("registry", "fraud")
    assert parse_source("fraud").ref == "models:/fraud/latest"


def test_registry_commands_take_a_bare_name_and_refuse_a_package(
    workdir: Path,
    churn_model: Any,
    churn_data: Data,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["version", "show", "churn", "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert (shown["name"], shown["version"]) == ("churn", 1)

    save_package("churn", churn_model, churn_data)
    code, err = _run(capsys, "version", "show", "churn")
    assert code == 1
    assert "'churn' is a package directory, not a registered version" in err
    assert "models:/churn/VERSION" in err
    with pytest.raises(SystemExit):
        main(["version", "show", "models:/churn", "--json"])
    assert json.loads(capsys.readouterr().out)["version"] == 1
