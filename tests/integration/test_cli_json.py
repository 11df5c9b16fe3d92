"""``--json`` for scripts: every command has it, prints one JSON document on stdout, and
reports its errors as one JSON object on stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
import pytest

from modelport.cli.main import COMMANDS, LazyGroup, cli, main

Data = tuple[pd.DataFrame, np.ndarray]

# Commands whose output is for people only: a demo that trains, serves and talks.
HUMAN_ONLY = {"quickstart"}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def leaf_commands() -> list[tuple[str, click.Command]]:
    """Every runnable command, by its full name ("version promote")."""
    assert isinstance(cli, LazyGroup)
    context = click.Context(cli)
    found = []
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
        else:
            found.append((name, command))
    return found


SCRIPTED = [(name, command) for name, command in leaf_commands() if name not in HUMAN_ONLY]


@pytest.mark.parametrize(("name", "command"), SCRIPTED, ids=[name for name, _ in SCRIPTED])
def test_every_command_takes_json(name: str, command: click.Command) -> None:
    assert "--json" in [opt for param in command.params for opt in param.opts]


def test_the_command_list_is_complete() -> None:
    names = {name for name, _ in leaf_commands()}
    assert {"version promote", "alias set", "alias list", "serve", "db upgrade"} <= names
    assert len(SCRIPTED) == len(names) - len(HUMAN_ONLY)


@pytest.fixture
def registered(
    capsys: pytest.CaptureFixture[str], churn_model: Any, churn_data: Data, tmp_path: Path
) -> None:
    import joblib

    frame, _ = churn_data
    joblib.dump(churn_model, tmp_path / "churn.joblib")
    frame.to_csv(tmp_path / "sample.csv", index=False)
    for _ in range(2):
        code, _, err = run(
            capsys, "model", "register", str(tmp_path / "churn.joblib"), "--name", "churn",
            "--sample", str(tmp_path / "sample.csv"), "--no-accelerate", "--json",
        )  # fmt: skip
        assert code == 0, err


def test_stage_and_alias_changes_print_json(
    capsys: pytest.CaptureFixture[str], registered: None
) -> None:
    code, out, _ = run(capsys, "version", "promote", "churn/1", "production", "--json")
    assert code == 0
    promoted = json.loads(out)
    assert (promoted["alias"], promoted["version"]["version"], promoted["previous"]) == (
        "production", 1, None
    )  # fmt: skip
    code, out, _ = run(capsys, "alias", "set", "churn", "champion", "1", "--json")
    assert json.loads(out)["alias"] == "champion" and json.loads(out)["version"]["version"] == 1
    code, out, _ = run(
        capsys, "version", "promote", "churn/2", "production", "--archive-previous", "--json"
    )
    moved = json.loads(out)
    assert moved["previous"] == 1
    assert moved["archived"] == [{"version": 1, "removed_aliases": ["champion"]}]
    code, out, _ = run(capsys, "alias", "list", "churn", "--json")
    assert json.loads(out) == [
        {"name": "churn", "alias": "production", "version": 2, "stage": True}
    ]
    code, out, _ = run(capsys, "version", "delete", "churn/1", "--yes", "--json")
    assert json.loads(out) == {"deleted": {"name": "churn", "version": 1}}
    code, out, _ = run(capsys, "alias", "delete", "churn", "production", "--json")
    assert json.loads(out) == {"deleted": {"name": "churn", "alias": "production"}}
    code, out, _ = run(capsys, "db", "current", "--json")
    assert json.loads(out)["up_to_date"] is True


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (["model", "show", "ghost"], "MODEL_NOT_FOUND", 1),
        (["version", "show", "churn/zero"], "INVALID_REFERENCE", 1),
        (["version", "list", "--filter", "colour = red"], "INVALID_FILTER", 1),
        (["version", "delete", "churn/2", "--yes"], "ALIAS_IN_USE", 1),
        (["version", "promote", "churn/1", "live"], "USAGE_ERROR", 2),
        (["model", "list", "--colour"], "USAGE_ERROR", 2),
        (["model", "register", "/etc/hostname", "--name", "x"], "UNKNOWN_FLAVOR", 1),
    ],
)
def test_errors_are_one_json_object_on_stderr(
    capsys: pytest.CaptureFixture[str],
    registered: None,
    args: list[str],
    code: str,
    exit_code: int,
) -> None:
    assert run(capsys, "version", "promote", "churn/2", "production")[0] == 0
    status, out, err = run(capsys, *args, "--json")
    assert status == exit_code and out == ""
    assert err.count("\n") == 1
    document = json.loads(err)
    assert document["code"] == code
    assert isinstance(document["error"], str) and document["error"]
    if code == "ALIAS_IN_USE":
        assert document["aliases"] == ["production"] and document["version"] == 2


def test_a_refused_pickle_names_the_cli_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import os
    import pickle

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (os.system, ("echo never",))

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Payload()))
    code, _, err = run(capsys, "model", "register", str(path), "--name", "x")
    assert code == 1 and "pass --trust 'posix.system'" in err and "trust=[" not in err
    code, _, err = run(capsys, "model", "register", str(path), "--name", "x", "--json")
    document = json.loads(err)
    assert document["code"] == "UNSAFE_MODEL" and document["offending"] == ["posix.system"]
