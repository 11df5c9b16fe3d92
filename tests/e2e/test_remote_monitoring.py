"""``modelport monitor report|alerts|run`` and ``serve --monitor`` through
``MODELPORT_REGISTRY_URL``: real CLI processes against a real control plane, each
compared with the same command run on the control plane's own home (the database and
prediction log it reads). The control plane keeps the alert states and sends the
webhooks; keys decide who may read and who may evaluate."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelport.bootstrap import build_registry
from modelport.config import Settings
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from modelport.package.options import PackageOptions
from modelport.security.key_admin import KeyAdmin
from testing_control_plane import control_plane
from testing_process import MODELPORT, ServerProcess, env_for, serving
from testing_webhook import OUTGOING_LOOPBACK, Receiver, webhook_receiver

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

RULE = """
[monitor.alerts.errors]
model = "churn@production"
signal = "error_rate"
comparison = ">"
threshold = 0.05
min_samples = 50

[[monitor.alerts.errors.actions]]
type = "webhook"
url = "{url}"
"""


@dataclass
class Plane:
    """A control plane over ``home`` with its rules, keys and webhook receiver."""

    server: ServerProcess
    home: Path
    config: Path
    receiver: Receiver
    tokens: dict[str, str]

    def remote_env(self, key: str) -> dict[str, str]:
        """The environment of a machine without a database, using the control plane."""
        return env_for(
            self.home.parent / "client-home",
            MODELPORT_REGISTRY_URL=self.server.url,
            MODELPORT_API_KEY=self.tokens[key],
        )

    def remote(self, key: str, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI on a machine without a database, through the control plane."""
        return _cli(self.remote_env(key), *args)

    def local(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI on the control plane's machine, over its database."""
        env = env_for(self.home)
        for name in ("MODELPORT_REGISTRY_URL", "MODELPORT_API_KEY"):
            env.pop(name, None)
        return _cli(env, *args)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODELPORT), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _register(home: Path) -> None:
    """churn version 1 at production (reference statistics from its training data) and
    churn-other, whose alerts a key scoped to it may read."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    model = LogisticRegression().fit(frame, (frame["a"] > frame["b"]).astype(int))
    options = PackageOptions(sample_input=frame, accelerate=False, metrics={"accuracy": 0.9})
    with build_registry(Settings(home=home)) as registry:
        registry.register(model, "churn", options)
        registry.set_alias("churn", "production", 1)
        registry.register(model, "other", options)


def _log(home: Path) -> None:
    """120 predictions of churn/1 in the last hour, one in five answered 500, the later
    half with shifted inputs."""
    now = datetime.now(UTC)
    rng = np.random.default_rng(9)
    writer = PredictionLogWriter(str(home / "predictions"), flush_interval_s=60)
    for i in range(120):
        shift = 2.0 if i >= 60 else 0.0
        failed = i % 5 == 0
        assert writer.put(
            PredictionRecord(
                prediction_id=f"r{i}-0", request_id=f"r{i}",
                time=now - timedelta(minutes=60) + timedelta(seconds=25 * i),
                model="churn", version="1", protocol="v2", latency_s=0.002,
                status=500 if failed else 200,
                inputs={} if failed else {"a": float(rng.normal()) + shift,
                                          "b": float(rng.normal())},
                outputs={} if failed else {"predictions": int(i % 2)},
            )
        )  # fmt: skip
    writer.close()


def _keys(home: Path) -> dict[str, str]:
    scopes = {
        "admin": ["admin"],
        "deployer": ["deploy"],
        "reader": ["read"],
        "other-reader": ["read:other"],
    }
    with build_registry(Settings(home=home)) as registry:
        admin = KeyAdmin(registry.metadata)
        return {name: admin.create(name, found, actor="setup")[1] for name, found in scopes.items()}


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    home = tmp_path / "plane"
    _register(home)
    _log(home)
    tokens = _keys(home)
    with webhook_receiver() as receiver:
        config = tmp_path / "rules.toml"
        config.write_text(RULE.format(url=receiver.url) + OUTGOING_LOOPBACK)
        args = ["--config", str(config)]
        with control_plane(home, args, MODELPORT_SECURITY__AUTH="on") as server:
            yield Plane(server, home, config, receiver, tokens)


def _wait_for(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _without_time(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "generated_at"}


def test_the_report_is_the_same_through_the_control_plane(plane: Plane, tmp_path: Path) -> None:
    until = datetime.now(UTC).replace(microsecond=0)
    window = ["--since", (until - timedelta(days=1)).isoformat(), "--until", until.isoformat()]
    answers = {}
    for where, out in (("local", tmp_path / "local.json"), ("remote", tmp_path / "remote.json")):
        args = ["monitor", "report", "churn@production", *window, "--out", str(out), "--json",
                "--threshold", "a=0.2"]  # fmt: skip
        done = plane.local(*args) if where == "local" else plane.remote("reader", *args)
        assert done.returncode == 0, done.stderr
        answers[where] = (json.loads(done.stdout), json.loads(out.read_text()))
    (local_said, local_report), (remote_said, remote_report) = answers["local"], answers["remote"]
    assert {**remote_said, "out": ""} == {**local_said, "out": ""}
    assert remote_said["predictions"] == 96 and remote_said["version"] == "1"
    assert _without_time(remote_report) == _without_time(local_report)

    page = tmp_path / "remote.html"
    done = plane.remote("reader", "monitor", "report", "churn/1", *window, "--out", str(page))
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "churn version 1, 96 predictions" in done.stdout
    assert page.read_text().lstrip().lower().startswith("<!doctype html")
    done = plane.remote("reader", "monitor", "report", "churn@production", *window, "--format",
                        "json", "--threshold", "a=0.2")  # fmt: skip
    assert _without_time(json.loads(done.stdout)) == _without_time(local_report)

    # The same errors, raised as the same classes, through the URL.
    for key, args, code in (
        ("other-reader", ["churn@production"], "PERMISSION_DENIED"),
        ("reader", ["nope@production"], "MODEL_NOT_FOUND"),
        ("reader", ["churn@production", "--threshold", "a=high"], "INVALID_ARGUMENT"),
    ):
        done = plane.remote(key, "monitor", "report", *args, "--json")
        assert done.returncode != 0 and done.stdout == ""
        local = plane.local("monitor", "report", *args, "--json")
        assert json.loads(done.stderr)["code"] == code, done.stderr
        if key == "reader":
            assert json.loads(done.stderr) == json.loads(local.stderr)


def test_rounds_run_on_the_control_plane_and_alerts_read_the_same(plane: Plane) -> None:
    done = plane.remote("deployer", "monitor", "run", "--once", "--json")
    assert done.returncode == 0, done.stderr
    (outcome,) = json.loads(done.stdout)["outcomes"]
    assert outcome["rule"] == "errors" and outcome["state"]["status"] == "firing"
    assert outcome["changed"] and outcome["notified"]
    # The control plane sent the webhook, once.
    _wait_for(lambda: len(plane.receiver.requests) == 1, "the webhook")
    assert json.loads(plane.receiver.requests[0].body)["status"] == "firing"

    # The state lives in the control plane's database: a local round over it carries on.
    local = plane.local("monitor", "run", "--once", "--config", str(plane.config), "--json")
    assert local.returncode == 0, local.stderr
    (again,) = json.loads(local.stdout)["outcomes"]
    assert again["state"]["status"] == "firing" and not again["changed"]
    assert again["state"]["value"] == outcome["state"]["value"]

    # Two rounds at once: still one notification.
    env = plane.remote_env("admin")
    command = [str(MODELPORT), "monitor", "run", "--once", "--json"]
    pipe = subprocess.PIPE
    rounds = [
        subprocess.Popen(command, env=env, stdout=pipe, stderr=pipe, text=True) for _ in range(2)
    ]
    for process in rounds:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert json.loads(out)["outcomes"][0]["notified"] is False
    assert len(plane.receiver.requests) == 1

    for args in (["churn"], []):
        remote = plane.remote("reader", "monitor", "alerts", *args, "--json")
        local = plane.local("monitor", "alerts", *args, "--config", str(plane.config), "--json")
        assert remote.returncode == 0, remote.stderr
        assert json.loads(remote.stdout) == json.loads(local.stdout)
    table = plane.remote("reader", "monitor", "alerts")
    assert table.returncode == 0 and "inactive -> firing" in table.stdout
    hidden = json.loads(plane.remote("other-reader", "monitor", "alerts", "--json").stdout)
    assert hidden["rules"] == [] and hidden["events"] == [] and hidden["deliveries"] == []

    audit = json.loads(plane.local("audit", "list", "--model", "churn", "--json").stdout)
    evaluated = [entry for entry in audit if entry["action"] == "alert.evaluate"]
    assert [(e["actor"], e["target"]) for e in evaluated] == [("key:deployer", "errors")]


def test_a_read_only_key_may_not_evaluate(plane: Plane) -> None:
    for key in ("reader", "other-reader"):
        done = plane.remote(key, "monitor", "run", "--once", "--json")
        assert done.returncode != 0
        assert json.loads(done.stderr)["code"] == "PERMISSION_DENIED", done.stderr
        answer = httpx.post(
            f"{plane.server.url}/api/monitoring/alerts/evaluate",
            headers={"authorization": f"Bearer {plane.tokens[key]}"},
            timeout=30,
        )
        assert answer.status_code == 403
    assert plane.receiver.requests == []
    document = httpx.get(
        f"{plane.server.url}/api/openapi.json",
        headers={"authorization": f"Bearer {plane.tokens['reader']}"},
        timeout=30,
    ).json()
    assert "post" in document["paths"]["/api/monitoring/alerts/evaluate"]
    assert "get" in document["paths"]["/api/monitoring/{model}/report"]


def test_monitor_run_is_the_clock_of_the_control_planes_rounds(plane: Plane) -> None:
    with subprocess.Popen(
        [str(MODELPORT), "monitor", "run", "--interval", "1s", "--json"],
        env=plane.remote_env("deployer"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        try:
            assert process.stdout is not None
            first = json.loads(process.stdout.readline())
            assert first["rule"] == "errors" and first["state"]["status"] == "firing"
            _wait_for(lambda: len(plane.receiver.requests) == 1, "the webhook")
            evaluated = _evaluated_at(plane)
            _wait_for(lambda: _evaluated_at(plane) != evaluated, "the next round")
            assert len(plane.receiver.requests) == 1
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(30)
        assert code == 0, process.stderr.read() if process.stderr else ""


def test_serve_monitor_asks_the_control_plane(plane: Plane, tmp_path: Path) -> None:
    serve_config = tmp_path / "serve.toml"
    serve_config.write_text('[monitor]\ninterval = "1s"\n')
    replica = tmp_path / "replica-home"
    env = {"MODELPORT_REGISTRY_URL": plane.server.url, "MODELPORT_API_KEY": plane.tokens["admin"]}
    args = ["churn@production", "--monitor", "--config", str(serve_config)]
    with serving(replica, args, **env) as server:
        _wait_for(lambda: len(plane.receiver.requests) == 1, "the control plane's webhook")
        evaluated = _evaluated_at(plane)
        _wait_for(lambda: _evaluated_at(plane) != evaluated, "the next round")
        assert server.stop() == 0
    log = server.stderr.read_text()
    assert "evaluate its alert rules every" in log and "alert errors: firing" in log
    assert len(plane.receiver.requests) == 1


def _evaluated_at(plane: Plane) -> str | None:
    answer = httpx.get(
        f"{plane.server.url}/api/monitoring/churn/alerts",
        headers={"authorization": f"Bearer {plane.tokens['reader']}"},
        timeout=30,
    )
    state = answer.json()["rules"][0]["state"]
    return state["evaluated_at"] if state else None


def test_ui_monitor_evaluates_the_rules_in_the_control_plane(tmp_path: Path) -> None:
    home = tmp_path / "plane"
    _register(home)
    _log(home)
    tokens = _keys(home)
    with webhook_receiver() as receiver:
        config = tmp_path / "rules.toml"
        rules = RULE.format(url=receiver.url) + OUTGOING_LOOPBACK
        config.write_text('[monitor]\ninterval = "1s"\n' + rules)
        args = ["--config", str(config), "--monitor"]
        with control_plane(home, args, MODELPORT_SECURITY__AUTH="on") as server:
            plane = Plane(server, home, config, receiver, tokens)
            _wait_for(lambda: len(receiver.requests) == 1, "the control plane's own round")
            evaluated = _evaluated_at(plane)
            _wait_for(lambda: _evaluated_at(plane) != evaluated, "the next round")
            remote = plane.remote("reader", "monitor", "alerts", "churn", "--json")
            assert json.loads(remote.stdout)["rules"][0]["state"]["status"] == "firing"
            assert server.stop() == 0
        assert len(receiver.requests) == 1
    assert "evaluating 1 alert rules every" in server.stderr.read_text()


def test_the_monitoring_routes_answer_bad_requests_with_errors_not_internals(
    tmp_path: Path,
) -> None:
    home = tmp_path / "plane"
    _register(home)
    internals = re.compile(r"Traceback|File \"|\.py\b|/tmp/|sqlite://|artifact_key")
    report = "/api/monitoring/{}/report"
    requests: list[tuple[str, str, dict[str, str]]] = [
        *[("GET", report.format(name), {}) for name in ("ghost", "..%2F..%2Fetc", "x" * 300)],
        *[
            ("GET", report.format("churn"), query)
            for query in (
                {"version": "one"},
                {"version": "0"},
                {"version": "7"},
                {"version": "1", "alias": "production"},
                {"alias": "nope"},
                {"since": "soon"},
                {"until": "2020-13-45"},
                {"format": "pdf"},
                {"method": "a"},
                {"method": "a=magic"},
                {"threshold": "a=high"},
                {"colour": "red"},
            )
        ],
        ("GET", "/api/monitoring/alerts", {"limit": "0"}),
        ("GET", "/api/monitoring/alerts", {"limit": "many"}),
        ("POST", "/api/monitoring/alerts/evaluate", {}),  # no rules on this control plane
        ("POST", "/api/monitoring/alerts/evaluate", {"now": "x"}),
    ]
    with control_plane(home) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        for method, path, params in requests:
            answer = http.request(method, path, params=params)
            where = (method, path, params, answer.status_code, answer.text[:300])
            assert 400 <= answer.status_code < 500, where
            data = answer.json()
            if "no route" not in data["error"]:  # the router's own 404 is not the route's
                assert str(data.get("kind", "")).endswith("Error"), where
            assert not internals.search(answer.text), where
        alerts = http.get("/api/monitoring/alerts").json()
        assert alerts == {"model": None, "rules": [], "events": [], "deliveries": []}
        empty = http.get(report.format("churn"), params={"format": "json"})
        assert empty.status_code == 200
        assert json.loads(empty.headers["x-modelport-report"])["predictions"] == 0
