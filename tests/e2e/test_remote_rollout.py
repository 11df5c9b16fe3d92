"""``modelport deploy rollout|pause|resume|abort|progress|controller`` with
``MODELPORT_REGISTRY_URL`` set: a real control plane (``modelport ui``) acts for the API
key, and the CLI keeps the clock, asking it for one controller tick every poll. The
output is the same as over the database; a read-only key is refused the changes; two
callers never hold the same rollout's lease."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from modelport.bootstrap import build_registry
from modelport.cli.deploy_rollout import EXIT_PAUSED
from modelport.cli.main import cli
from modelport.client import RegistryClient
from modelport.config import Settings
from modelport.domain.rollout_plan import RolloutPlan
from modelport.errors import ConflictError, NotFoundError, PermissionDeniedError
from modelport.security.key_admin import KeyAdmin
from testing_control_plane import control_plane
from testing_deployments import add_versions
from testing_process import ServerProcess
from testing_traffic import logged_traffic

pytestmark = pytest.mark.timeout(240)
FAST = ["--interval", "50ms", "--bake", "0s", "--min-requests", "5"]
SERVER_ENV = {"MODELPORT_SECURITY__AUTH": "on", "MODELPORT_GATES__TARGETS": "[]"}


def _setup(home: Path) -> dict[str, str]:
    """churn 1..4 with a deployment on 3, and the keys: deployer, reader."""
    with build_registry(Settings(home=home)) as registry:
        add_versions(registry, "churn", 4)
        registry.create_deployment("churn", 3)
        admin = KeyAdmin(registry.metadata)
        return {
            "deployer": admin.create("deployer", ["deploy", "read"], actor="setup")[1],
            "reader": admin.create("reader", ["read"], actor="setup")[1],
        }


@pytest.fixture
def server_home(tmp_path: Path) -> Path:
    home = tmp_path / "server-home"
    home.mkdir()
    return home


@pytest.fixture
def tokens(server_home: Path) -> dict[str, str]:
    return _setup(server_home)


@pytest.fixture
def plane(server_home: Path, tokens: dict[str, str]) -> Iterator[ServerProcess]:
    with control_plane(server_home, **SERVER_ENV) as server:
        yield server


def invoke(url: str, key: str, *args: str) -> Result:
    """``modelport deploy ARGS`` pointed at the control plane with ``key``."""
    env = {
        "MODELPORT_REGISTRY_URL": url,
        "MODELPORT_API_KEY": key,
        "MODELPORT_ROLLOUT__POLL_INTERVAL": "20ms",
    }
    return CliRunner().invoke(cli, ["deploy", *args], env=env, catch_exceptions=True)


def _arms(home: Path) -> list[tuple[str, int, float]]:
    with build_registry(Settings(home=home)) as registry:
        return [(a.name, a.version, a.weight) for a in registry.get_deployment("churn").arms]


@contextmanager
def traffic(home: Path) -> Iterator[None]:
    """Versions 3 and 4 of churn answer requests, logged in the control plane's
    prediction log now and then until the block ends."""
    with logged_traffic(Settings(home=home).resolved_prediction_log_uri):
        yield


def test_a_foreground_rollout_over_the_url_promotes_the_canary(
    plane: ServerProcess, tokens: dict[str, str], server_home: Path
) -> None:
    with traffic(server_home):
        result = invoke(plane.url, tokens["deployer"], "rollout", "churn", "--version", "4",
                        "--steps", "10,50,100", *FAST, "--reason", "v4 is better")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rolling out churn/4 over steps 10,50,100, 10% now" in result.output
    assert "advanced to 50%" in result.output
    assert "promoted" in result.output
    assert _arms(server_home) == [("champion", 4, 100.0)]
    with build_registry(Settings(home=server_home)) as registry:
        history = registry.deployment_history("churn", 50)
    started = [e for e in history if e.action == "rollout.start"]
    assert [(e.actor, e.reason) for e in started] == [("key:deployer", "v4 is better")]
    assert {e.actor for e in history if e.action.startswith("rollout.")} == {"key:deployer"}


def test_pause_resume_abort_and_progress_over_the_url_match_the_local_output(
    plane: ServerProcess, tokens: dict[str, str], server_home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    remote = _scenario(lambda *args: invoke(plane.url, tokens["deployer"], *args))
    assert _arms(server_home) == [("champion", 3, 100.0)]
    with build_registry(Settings(home=server_home)) as registry:
        events = [(e.action, e.actor, e.reason) for e in registry.deployment_history("churn")]
    assert events[:4] == [
        (
            "rollout.abort",
            "key:deployer",
            "rollout of churn/4: aborted by key:deployer: no traffic today",
        ),
        ("rollout.resume", "key:deployer", "look again"),
        ("rollout.pause", "key:deployer", "hold on"),
        ("rollout.start", "key:deployer", None),
    ]
    # The same commands over a database of its own, as the same actor: the same output.
    local_home = tmp_path / "local-home"
    local_home.mkdir()
    _setup(local_home)
    monkeypatch.setenv("MODELPORT_HOME", str(local_home))
    monkeypatch.setenv("MODELPORT_USER", "key:deployer")
    monkeypatch.setenv("MODELPORT_GATES__TARGETS", "[]")
    local = _scenario(
        lambda *args: CliRunner().invoke(cli, ["deploy", *args], catch_exceptions=True)
    )
    assert remote == local


def _scenario(run: object) -> list[tuple[int, str]]:
    """Start (detached), progress, pause, resume (detached), abort, then progress and
    abort again: each command's exit code and output, times blanked."""
    steps = [
        ("rollout", "churn", "--version", "4", *FAST, "--detach"),
        ("rollout", "churn", "--version", "4", *FAST, "--detach", "--json"),
        ("progress", "churn"),
        ("pause", "churn", "--reason", "hold on"),
        ("pause", "churn", "--json"),
        ("resume", "churn", "--reason", "look again", "--detach"),
        ("abort", "churn", "--reason", "no traffic today", "--json"),
        ("progress", "churn", "--json"),
        ("abort", "churn"),
        ("progress", "nope"),
    ]
    found = []
    for args in steps:
        result = run(*args)  # type: ignore[operator]
        error = result.exception
        said = (
            f"{type(error).__name__}: {error}"
            if error and not isinstance(error, SystemExit)
            else ""
        )
        found.append((result.exit_code, _timeless(result.output + said)))
    codes = [code for code, _ in found]
    assert codes == [0, 1, 0, 0, 0, 0, 0, 0, 1, 1], found
    assert "already has a candidate arm" in found[1][1]
    assert "paused by key:deployer at 5%: hold on" in found[3][1]
    assert json.loads(found[6][1])["status"] == "aborted"
    assert "has already ended: aborted" in found[8][1]
    assert "nope" in found[9][1]
    return found


def _timeless(text: str) -> str:
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(\+00:00)?", "TIME", text)
    return re.sub(r"\d{4}-\d\d-\d\d[ T][\d:]+", "TIME", text)


def test_a_read_only_key_may_look_but_not_change(
    plane: ServerProcess, tokens: dict[str, str], server_home: Path
) -> None:
    started = invoke(plane.url, tokens["deployer"], "rollout", "churn", "--version", "4",
                     *FAST, "--detach")  # fmt: skip
    assert started.exit_code == 0, started.output
    reader = tokens["reader"]
    for args in (
        ("rollout", "churn", "--version", "4", "--detach"),
        ("pause", "churn"),
        ("resume", "churn", "--detach"),
        ("abort", "churn"),
        ("controller", "--once"),
    ):
        refused = invoke(plane.url, reader, *args)
        assert refused.exit_code == 1, (args, refused.output)
        assert isinstance(refused.exception, PermissionDeniedError), (args, refused.output)
    shown = invoke(plane.url, reader, "progress", "churn", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["status"] == "running"
    headers = {"authorization": f"Bearer {reader}"}
    for path in ("/api/deployments/churn/rollout/tick", "/api/rollouts/tick",
                 "/api/deployments/churn/rollout/abort"):  # fmt: skip
        answer = httpx.post(plane.url + path, json={"owner": "x"} if "tick" in path else {},
                            headers=headers, timeout=10)  # fmt: skip
        assert answer.status_code == 403, (path, answer.text)
    assert _arms(server_home) == [("champion", 3, 95.0), ("canary", 4, 5.0)]


def test_two_callers_never_hold_one_rollouts_lease_and_errors_keep_their_class(
    plane: ServerProcess, tokens: dict[str, str], tmp_path: Path
) -> None:
    plan = RolloutPlan(steps=(10.0, 100.0))  # checks every 60 s: the first tick waits
    with RegistryClient(plane.url, api_key=tokens["deployer"], cache_dir=tmp_path) as client:
        with pytest.raises(NotFoundError, match="has no rollout"):
            client.rollout_status("churn")
        started = client.start_rollout("churn", 4, plan, reason="try it")
        assert (started.status.value, started.weight) == ("running", 10.0)
        with pytest.raises(ConflictError, match="already has a candidate arm"):
            client.start_rollout("churn", 4, plan)
        first = client.tick_rollout("churn", owner="cli-a")
        assert first.note.startswith("next check at") and first.state is not None
        second = client.tick_rollouts(owner="cli-b")
        assert [o.note for o in second] == ["another controller holds this rollout's lease"]
        assert second[0].to_dict()["status"] == "running"
        client.release_rollouts(owner="cli-a", name="churn")
        third = client.tick_rollout("churn", owner="cli-b")
        assert third.note.startswith("next check at")
        client.release_rollouts(owner="cli-b")
        assert client.abort_rollout("churn").status.value == "aborted"
    headers = {"authorization": f"Bearer {tokens['reader']}"}
    document = httpx.get(f"{plane.url}/api/openapi.json", headers=headers, timeout=10).json()
    paths = document["paths"]
    assert set(paths["/api/deployments/{name}/rollout"]) == {"get", "post"}
    for verb in ("pause", "resume", "abort", "tick", "release"):
        assert "post" in paths[f"/api/deployments/{{name}}/rollout/{verb}"]
    assert "post" in paths["/api/rollouts/tick"] and "post" in paths["/api/rollouts/release"]


def test_the_controller_over_the_url_drives_a_detached_rollout(
    plane: ServerProcess, tokens: dict[str, str], server_home: Path
) -> None:
    key = tokens["deployer"]
    started = invoke(plane.url, key, "rollout", "churn", "--version", "4", "--steps",
                     "10,100", *FAST, "--detach", "--max-wait", "0s")  # fmt: skip
    assert started.exit_code == 0, started.output
    once = invoke(plane.url, key, "controller", "--once", "--json")
    assert once.exit_code == 0, once.output
    lines = [json.loads(line) for line in once.output.splitlines()]
    assert [(line["deployment"], line["status"]) for line in lines] == [("churn", "paused")]
    assert lines[0]["decision"]["verdict"] == "inconclusive"
    resumed = invoke(plane.url, key, "resume", "churn")
    assert resumed.exit_code == EXIT_PAUSED, resumed.output  # no traffic: paused again
    assert "resumed by key:deployer at 10%" in resumed.output


def test_bad_rollout_requests_are_refused_with_the_field_named(
    plane: ServerProcess, tokens: dict[str, str]
) -> None:
    headers = {"authorization": f"Bearer {tokens['deployer']}"}
    good = RolloutPlan().to_dict()
    cases = [
        ("/api/deployments/churn/rollout", {"version": 4}, 400, "plan"),
        ("/api/deployments/churn/rollout", {"version": "4", "plan": good}, 400, "version"),
        ("/api/deployments/churn/rollout", {"version": 4, "plan": {"steps": "x"}}, 400, "plan"),
        ("/api/deployments/churn/rollout", {"version": 4, "plan": {**good, "steps": [200]}},
         400, "plan"),
        ("/api/deployments/churn/rollout", {"version": 4, "plan": good, "x": 1}, 400, "x"),
        ("/api/deployments/churn/rollout", {"version": 9, "plan": good}, 404, None),
        ("/api/deployments/ghost/rollout", {"version": 4, "plan": good}, 404, None),
        ("/api/deployments/churn/rollout/pause", {}, 404, None),
        ("/api/deployments/churn/rollout/tick", {"owner": ""}, 400, "owner"),
        ("/api/deployments/churn/rollout/tick", {}, 400, "owner"),
        ("/api/rollouts/tick", {"owner": "x" * 500}, 400, "owner"),
    ]  # fmt: skip
    with httpx.Client(base_url=plane.url, headers=headers, timeout=30) as http:
        for path, body, status, field in cases:
            answer = http.post(path, json=body)
            where = (path, body, answer.text[:300])
            assert answer.status_code == status, where
            data = answer.json()
            assert str(data["kind"]).endswith("Error"), where
            if field is not None:
                assert data["fields"]["field"] == field, where
        garbage = http.post("/api/deployments/churn/rollout", content=b"[1,2]",
                            headers={"content-type": "application/json"})  # fmt: skip
        assert garbage.status_code == 400
