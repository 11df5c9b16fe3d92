"""``modelport deploy ...``: each verb, its ``--json`` document, readable output and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.bootstrap import build_registry
from modelport.cli.main import main
from modelport.config import Settings
from modelport.domain.entities import VersionStatus
from testing_deployments import add_versions


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(autouse=True)
def versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """churn/1..5 and fraud/1 in the registry the CLI uses (rows without packages, so no
    promotion gate guards production here: the gates have their own tests)."""
    monkeypatch.setenv("MODELPORT_GATES__TARGETS", "[]")
    with build_registry(Settings()) as registry:
        add_versions(registry, "churn", 5)
        add_versions(registry, "fraud", 1)


def weights(document: dict[str, Any]) -> list[tuple[str, int, float]]:
    return [(a["name"], a["version"], a["weight"]) for a in document["arms"]]


def test_the_verbs_change_the_deployment_step_by_step(capsys: pytest.CaptureFixture[str]) -> None:
    created = run_json(capsys, "deploy", "create", "churn", "--version", "3", "--reason", "v3")
    assert created["name"] == "churn" and created["revision"] == 1
    assert weights(created) == [("champion", 3, 100.0)]
    canary = run_json(capsys, "deploy", "canary", "churn", "--version", "4", "--weight", "10")
    assert weights(canary) == [("champion", 3, 90.0), ("canary", 4, 10.0)]
    wider = run_json(capsys, "deploy", "set-weight", "churn", "canary", "30")
    assert weights(wider) == [("champion", 3, 70.0), ("canary", 4, 30.0)]
    shadowed = run_json(capsys, "deploy", "shadow", "churn", "--version", "5", "--sample", "0.5")
    assert [(a["name"], a["sample"]) for a in shadowed["arms"]][-1] == ("shadow", 0.5)
    promoted = run_json(capsys, "deploy", "promote", "churn", "--reason", "good numbers")
    assert weights(promoted) == [("champion", 4, 100.0), ("shadow", 5, 0.0)]
    assert promoted["previous_champion"] == {"model": "churn", "version": 3}
    back = run_json(capsys, "deploy", "rollback", "churn")
    assert weights(back)[0] == ("champion", 3, 100.0)
    removed = run_json(capsys, "deploy", "remove-arm", "churn", "shadow")
    assert weights(removed) == [("champion", 3, 100.0)] and removed["revision"] == 7
    assert run_json(capsys, "deploy", "show", "churn") == removed
    history = run_json(capsys, "deploy", "history", "churn")
    assert [e["action"] for e in history] == [
        "deployment.remove_arm",
        "deployment.rollback",
        "deployment.promote",
        "deployment.shadow",
        "deployment.set_weight",
        "deployment.canary",
        "deployment.create",
    ]
    assert history[-1]["reason"] == "v3" and history[-1]["actor"]
    assert [
        e["revision"] for e in run_json(capsys, "deploy", "history", "churn", "--limit", "2")
    ] == [7, 6]
    audit = run_json(capsys, "audit", "list", "--model", "churn")
    assert audit[0]["action"] == "deployment.remove_arm"
    assert audit[0]["target"] == "deployment:churn"


def test_ab_with_a_sticky_key_and_another_model(capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "deploy", "create", "scoring", "--version", "1", "--model", "fraud")
    split = run_json(
        capsys, "deploy", "ab", "scoring", "--arms", "2:50, 3:50", "--model", "churn",
        "--sticky", "header:X-User-ID",
    )  # fmt: skip
    assert [(a["model"], a["version"], a["role"]) for a in split["arms"]] == [
        ("churn", 2, "champion"),
        ("churn", 3, "challenger"),
    ]
    assert split["sticky"] == "header:X-User-ID"
    listed = run_json(capsys, "deploy", "list")
    assert [d["name"] for d in listed] == ["scoring"]


def test_readable_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    code, out, _ = run(capsys, "deploy", "create", "churn", "--version", "3")
    assert code == 0 and "created deployment 'churn' (revision 1)" in out
    code, out, _ = run(capsys, "deploy", "canary", "churn", "--version", "4", "--weight", "5")
    assert code == 0
    assert "canary 4 on 5% of 'churn' (revision 2)" in out
    assert "churn/4" in out and "95%" in out
    code, out, _ = run(capsys, "deploy", "list")
    assert "champion churn/3 95%, canary churn/4 5%" in out
    code, out, _ = run(capsys, "deploy", "history", "churn")
    assert code == 0 and "canary" in out and "create" in out
    code, out, _ = run(capsys, "deploy", "delete", "churn", "--yes")
    assert code == 0 and "deleted deployment 'churn'" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("deploy", "show", "nope"), "DEPLOYMENT_NOT_FOUND", "deploy create nope"),
        (("deploy", "create", "api", "--version", "9", "--model", "churn"), "VERSION_NOT_FOUND",
         "no version 9"),
        (("deploy", "canary", "churn", "--version", "4", "--weight", "120"), "INVALID_ARGUMENT",
         "between 0 and 100"),
        (("deploy", "ab", "churn", "--arms", "3:50,4:40"), "INVALID_ARGUMENT", "add up to 90"),
        (("deploy", "ab", "churn", "--arms", "3=50"), "USAGE_ERROR", "VERSION:WEIGHT"),
        (("deploy", "ab", "churn", "--arms", "3:50,4:50", "--sticky", "cookie"),
         "INVALID_ARGUMENT", "header:X-User-ID"),
        (("deploy", "promote", "churn"), "INVALID_ARGUMENT", "no candidate"),
        (("deploy", "set-weight", "churn", "canary", "5"), "INVALID_ARGUMENT", "no arm 'canary'"),
        (("deploy", "create", "churn", "--version", "3"), "STALE_DEPLOYMENT", "already exists"),
    ],
)  # fmt: skip
def test_errors_name_what_was_wrong(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], code: str, message: str
) -> None:
    run_json(capsys, "deploy", "create", "churn", "--version", "3")
    status, out, err = run(capsys, *args, "--json")
    assert status != 0 and out == ""
    error = json.loads(err)
    assert error["code"] == code and message in error["error"]
    status, _, err = run(capsys, *args)
    assert status != 0 and message in err


def test_archived_versions_cannot_be_deployed(capsys: pytest.CaptureFixture[str]) -> None:
    with build_registry(Settings()) as registry, registry.metadata.transaction() as tx:
        tx.set_version_status("churn", 2, VersionStatus.ARCHIVED)
    status, _, err = run(capsys, "deploy", "create", "churn", "--version", "2")
    assert status == 1 and "archived" in err


def test_delete_asks_first_and_keeps_the_history(capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "deploy", "create", "churn", "--version", "3")
    deleted = run_json(capsys, "deploy", "delete", "churn", "--yes", "--reason", "retired")
    assert deleted == {"deleted": {"deployment": "churn"}}
    history = run_json(capsys, "deploy", "history", "churn")
    assert (history[0]["action"], history[0]["reason"]) == ("deployment.delete", "retired")
    status, _, err = run(capsys, "deploy", "show", "churn")
    assert status == 1 and "does not exist" in err
