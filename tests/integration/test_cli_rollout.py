"""``deploy rollout|resume|abort|progress|controller`` on a real SQLite registry and a real
prediction log: the foreground rollout promotes a canary as logged traffic comes in,
pauses (exit 3) when no traffic comes, and a person resumes or aborts it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from modelport.bootstrap import build_registry
from modelport.cli.deploy_rollout import EXIT_PAUSED
from modelport.cli.main import cli
from modelport.config import Settings
from modelport.registry.service import RegistryService
from testing_traffic import logged_traffic

from .test_deployments import add_versions

pytestmark = pytest.mark.timeout(120)
FAST = ["--interval", "50ms", "--bake", "0s", "--min-requests", "5"]


def invoke(*args: str) -> Result:
    """``modelport deploy ARGS`` (errors stay in ``Result.exception``)."""
    return CliRunner().invoke(cli, ["deploy", *args], catch_exceptions=True)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[RegistryService]:
    monkeypatch.setenv("MODELPORT_ROLLOUT__POLL_INTERVAL", "20ms")
    monkeypatch.setenv("MODELPORT_USER", "alice")
    # the versions are registry rows without packages: no promotion gate could pass them
    monkeypatch.setenv("MODELPORT_GATES__TARGETS", "[]")
    service = build_registry(Settings())
    add_versions(service, "churn", 4)
    service.create_deployment("churn", 3)
    yield service
    service.close()


@pytest.fixture
def traffic(registry: RegistryService) -> Iterator[None]:
    """Both versions answer requests, logged now and then until the test ends."""
    with logged_traffic(Settings().resolved_prediction_log_uri):
        yield


def arms(registry: RegistryService) -> list[tuple[str, int, float]]:
    return [(a.name, a.version, a.weight) for a in registry.get_deployment("churn").arms]


@pytest.mark.usefixtures("traffic")
def test_a_foreground_rollout_promotes_the_canary_on_logged_traffic(
    registry: RegistryService,
) -> None:
    result = invoke("rollout", "churn", "--version", "4", "--steps", "10,50,100", *FAST)
    assert result.exit_code == 0, result.output
    assert "rolling out churn/4 over steps 10,50,100, 10% now" in result.output
    assert "advanced to 50%" in result.output
    assert "promoted" in result.output
    assert arms(registry) == [("champion", 4, 100.0)]


def test_without_traffic_the_rollout_pauses_and_a_person_aborts_it(
    registry: RegistryService,
) -> None:
    result = invoke("rollout", "churn", "--version", "4", *FAST, "--max-wait", "0s", "--json")
    assert result.exit_code == EXIT_PAUSED, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    decided = [line["decision"] for line in lines if line.get("decision")]
    assert [d["verdict"] for d in decided] == ["inconclusive"]
    assert lines[-1]["status"] == "paused"  # the last line: the final state
    assert arms(registry) == [("champion", 3, 95.0), ("canary", 4, 5.0)]

    shown = invoke("progress", "churn", "--json")
    assert shown.exit_code == 0, shown.output
    state = json.loads(shown.output)
    assert state["status"] == "paused" and "0 of the 5 requests" in state["message"]

    aborted = invoke("abort", "churn", "--reason", "no traffic today")
    assert aborted.exit_code == 0, aborted.output
    assert "aborted by alice: no traffic today" in aborted.output
    assert arms(registry) == [("champion", 3, 100.0)]
    assert registry.deployment_history("churn")[0].action == "rollout.abort"


@pytest.mark.usefixtures("traffic")
def test_a_detached_rollout_is_driven_by_the_controller_and_resumed(
    registry: RegistryService,
) -> None:
    result = invoke("rollout", "churn", "--version", "4", *FAST, "--detach", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "running"
    assert arms(registry)[1] == ("canary", 4, 5.0)
    # `deploy controller --once` looks at every rollout once: the first check is due
    # after one interval, so look until it advanced
    for _ in range(200):
        once = invoke("controller", "--once", "--json")
        assert once.exit_code == 0, once.output
        if arms(registry)[1][2] > 5.0:
            break
    assert arms(registry)[1] == ("canary", 4, 25.0)
    resumed = invoke("resume", "churn")  # running: the foreground follows it to the end
    assert resumed.exit_code == 0, resumed.output
    assert arms(registry) == [("champion", 4, 100.0)]


def test_bad_options_and_missing_rollouts_say_what_is_wrong(registry: RegistryService) -> None:
    bad = invoke("rollout", "churn", "--version", "4", "--steps", "50,10")
    assert bad.exit_code != 0 and "must increase" in str(bad.exception)
    missing = invoke("abort", "churn")
    assert missing.exit_code != 0 and "has no rollout" in str(missing.exception)
    assert arms(registry) == [("champion", 3, 100.0)]


def test_the_config_file_gives_the_default_plan(
    registry: RegistryService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "modelport.toml"
    config.write_text('[rollout]\nsteps = [20, 100]\ninterval = "1h"\n', encoding="utf-8")
    monkeypatch.setenv("MODELPORT_CONFIG", str(config))
    result = invoke("rollout", "churn", "--version", "4", "--detach", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)["plan"]
    assert (plan["steps"], plan["interval"], plan["bake"]) == ([20.0, 100.0], "1h", "1h")
    assert arms(registry)[1] == ("canary", 4, 20.0)
