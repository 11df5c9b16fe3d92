"""Alert rules end to end: a real prediction log, states in SQLite, a real webhook
receiver on loopback, real commands, and an evaluator that restarts."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from modelport.config import AlertRule
from modelport.domain.alerts import AlertStatus
from modelport.metadata.sql import SqlMetadataStore
from modelport.metadata.store import MetadataStore
from modelport.monitoring.alerts.actions import ActionRunner
from modelport.monitoring.alerts.engine import AlertEngine
from modelport.monitoring.alerts.history import alert_history
from modelport.monitoring.alerts.readings import SignalReader
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from testing_databases import fresh_sqlite_url
from testing_webhook import LOOPBACK, Receiver, webhook_receiver

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SECRET = "correct horse battery staple"
# Writes what the command received: its MODELPORT_* variables and its stdin.
RECORDER = (
    "import json, os, sys; data = sys.stdin.read(); "
    "env = {k: v for k, v in os.environ.items() if k.startswith('MODELPORT_')}; "
    "open(sys.argv[1], 'a').write(json.dumps({'env': env, 'stdin': json.loads(data)}) + '\\n')"
)


def log_requests(
    root: Path, start: datetime, count: int, *, failing_every: int = 0, model: str = "churn"
) -> None:
    writer = PredictionLogWriter(str(root), flush_interval_s=60)
    for i in range(count):
        status = 500 if failing_every and i % failing_every == 0 else 200
        for row in range(2):
            assert writer.put(
                PredictionRecord(
                    prediction_id=f"{start:%H%M}-r{i}-{row}",
                    request_id=f"{start:%H%M}-r{i}",
                    time=start + timedelta(seconds=10 * i),
                    model=model,
                    version="3",
                    protocol="v2",
                    latency_s=0.002,
                    status=status,
                    inputs={"age": 30 + i % 7, "plan": "pro"},
                    outputs={"churned": i % 2},
                )
            )
    writer.close()


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetadataStore]:
    sql = SqlMetadataStore(fresh_sqlite_url(tmp_path_factory))
    yield sql
    sql.close()


def errors_rule(receiver: Receiver, out: Path) -> AlertRule:
    return AlertRule.model_validate(
        {
            "model": "churn/3",
            "signal": "error_rate",
            "comparison": ">",
            "threshold": 0.05,
            "window": "1h",
            "min_samples": 50,
            "for": "0s",
            "cooldown": "1h",
            "labels": {"severity": "page"},
            "actions": [
                {
                    "type": "webhook",
                    "url": receiver.url,
                    "secret_env": "MODELPORT_TEST_HOOK_SECRET",
                    "backoff": "1s",
                    "retries": 3,
                },
                {"type": "command", "run": [sys.executable, "-c", RECORDER, str(out)]},
                {"type": "retrain", "run": [sys.executable, "-c", RECORDER, str(out) + ".retrain"]},
            ],
        }
    )


def engine_for(
    store: MetadataStore, rules: dict[str, AlertRule], log: Path, retrain: Path
) -> tuple[AlertEngine, list[float]]:
    waits: list[float] = []
    actions = ActionRunner(
        store, log_uri=str(log), retrain_dir=str(retrain), policy=LOOPBACK, sleep=waits.append
    )
    return AlertEngine(rules, store, SignalReader(str(log)), actions), waits


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_error_spike_fires_notifies_and_resolves_across_a_restart(
    tmp_path: Path, store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_TEST_HOOK_SECRET", SECRET)
    log, out = tmp_path / "log", tmp_path / "command.jsonl"
    log_requests(log, T0 - timedelta(minutes=30), 100, failing_every=5)  # 20% errors
    with webhook_receiver([500, 503]) as receiver:
        rules = {"errors": errors_rule(receiver, out)}
        engine, waits = engine_for(store, rules, log, tmp_path / "retrain")
        (outcome,) = engine.evaluate(T0)
        assert outcome.notified and outcome.state is not None
        assert outcome.state.status is AlertStatus.FIRING
        assert outcome.state.value == pytest.approx(0.2)

        # The webhook: refused twice (5xx), retried after 1 s then 2 s, signed each time.
        assert len(receiver.requests) == 3 and waits == [1.0, 2.0]
        for request in receiver.requests:
            expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
            assert request.headers["X-Modelport-Signature"] == f"sha256={expected}"
        notice = json.loads(receiver.requests[-1].body)
        assert notice["alert"] == "errors" and notice["status"] == "firing"
        assert notice["value"] == pytest.approx(0.2) and notice["samples"] == 100
        assert notice["threshold"] == 0.05 and notice["labels"] == {"severity": "page"}

        # The command: the alert in its environment and on stdin.
        (ran,) = read_lines(out)
        assert ran["env"]["MODELPORT_ALERT_NAME"] == "errors"
        assert ran["env"]["MODELPORT_ALERT_STATUS"] == "firing"
        assert float(ran["env"]["MODELPORT_ALERT_VALUE"]) == pytest.approx(0.2)
        assert ran["stdin"]["event_id"] == notice["event_id"]

        # The retraining trigger: the window's rows exported, the path handed over.
        (retrain,) = read_lines(Path(str(out) + ".retrain"))
        path = retrain["env"]["MODELPORT_RETRAIN_PATH"]
        assert retrain["stdin"]["retrain"]["path"] == path
        assert "error_rate 0.2 > 0.05" in retrain["stdin"]["retrain"]["reason"]
        exported = pq.read_table(path)
        assert exported.num_rows == 160  # the answered rows: 5xx requests have no outputs
        assert {"prediction_id", "in_age", "in_plan", "out_churned", "label"} <= set(
            exported.column_names
        )
        assert retrain["stdin"]["retrain"]["labeled"] == 0  # no label arrived

        history = alert_history(store, rules)
        attempts = [(d["action"], d["attempt"], d["ok"], d["code"]) for d in history["deliveries"]]
        assert sorted(attempts) == [
            ("command", 1, True, 0),
            ("retrain", 1, True, 0),
            ("webhook", 1, False, 500),
            ("webhook", 2, False, 503),
            ("webhook", 3, True, 200),
        ]
        assert all(SECRET not in json.dumps(d) for d in history["deliveries"])

        # A new evaluator (a restart) carries on: still firing, nothing sent again.
        restarted, _ = engine_for(store, rules, log, tmp_path / "retrain")
        (again,) = restarted.evaluate(T0 + timedelta(minutes=1))
        assert again.state is not None and again.state.status is AlertStatus.FIRING
        assert not again.changed and len(receiver.requests) == 3

        # Clean traffic later: resolved; the webhook hears it, the command does not.
        log_requests(log, T0 + timedelta(hours=2), 100)
        (resolved,) = restarted.evaluate(T0 + timedelta(hours=2, minutes=20))
        assert resolved.state is not None and resolved.state.status is AlertStatus.RESOLVED
        assert json.loads(receiver.requests[-1].body)["status"] == "resolved"
        assert len(read_lines(out)) == 1

    events = [(e["from"], e["to"]) for e in alert_history(store, rules)["events"]]
    assert events == [("firing", "resolved"), ("inactive", "firing")]


def test_two_evaluators_notify_once(tmp_path: Path, store: MetadataStore) -> None:
    log = tmp_path / "log"
    log_requests(log, T0 - timedelta(minutes=30), 100, failing_every=5)
    with webhook_receiver() as receiver:
        rule = AlertRule.model_validate(
            {
                "model": "churn",
                "signal": "error_rate",
                "comparison": ">",
                "threshold": 0.05,
                "actions": [{"type": "webhook", "url": receiver.url}],
            }
        )
        first, _ = engine_for(store, {"errors": rule}, log, tmp_path)
        second, _ = engine_for(store, {"errors": rule}, log, tmp_path)
        # Both read the state before either saves: the second one's save loses.
        with store.reader() as session:
            assert session.get_alert_state("errors") is None
        (won,) = first.evaluate(T0)
        lost = second._apply(  # the same reading, computed from the state both read
            second._reader.request("errors", rule, since=T0 - rule.window, until=T0),
            None,
            second._reader.read(
                second._reader.request("errors", rule, since=T0 - rule.window, until=T0)
            ),
            now=T0,
        )
        assert won.notified and lost.lost_race and not lost.notified
        assert len(receiver.requests) == 1
        assert "X-Modelport-Signature" not in receiver.requests[0].headers  # no secret set


def test_a_failing_command_and_an_unreachable_webhook_are_logged(
    tmp_path: Path, store: MetadataStore
) -> None:
    log = tmp_path / "log"
    log_requests(log, T0 - timedelta(minutes=30), 100)
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('no disk'); sys.exit(3)"]
    rule = AlertRule.model_validate(
        {
            "model": "churn",
            "signal": "volume",
            "comparison": ">=",
            "threshold": 10,
            "actions": [
                {"type": "webhook", "url": "http://127.0.0.1:9/closed", "retries": 1},
                {"type": "command", "run": failing},
                {"type": "command", "run": [str(tmp_path / "missing-program")]},
            ],
        }
    )
    engine, waits = engine_for(store, {"volume": rule}, log, tmp_path)
    (outcome,) = engine.evaluate(T0)
    assert outcome.notified and outcome.state is not None and outcome.state.value == 200
    with store.reader() as session:
        log_rows = session.list_alert_deliveries()
    by_target = {(d.action, d.target, d.attempt): d for d in log_rows}
    assert by_target[("webhook", "http://127.0.0.1:9/closed", 2)].error.startswith("Connect")  # type: ignore[union-attr]
    assert by_target[("command", sys.executable, 1)].error == "exit code 3: no disk"
    assert "cannot run" in (
        by_target[("command", str(tmp_path / "missing-program"), 1)].error or ""
    )
    assert not any(d.ok for d in log_rows) and waits == [1.0]


def test_an_unreadable_signal_keeps_the_state_and_says_why(
    tmp_path: Path, store: MetadataStore
) -> None:
    rule = AlertRule.model_validate(
        {"model": "churn@production", "signal": "error_rate", "comparison": ">", "threshold": 0.1}
    )
    engine, _ = engine_for(store, {"errors": rule}, tmp_path / "log", tmp_path)
    (outcome,) = engine.evaluate(T0)
    assert outcome.state is None and not outcome.changed
    assert outcome.error is not None and "needs the registry" in outcome.error


def test_the_server_shows_a_models_alerts(tmp_path: Path) -> None:
    import numpy as np
    from starlette.testclient import TestClient

    from modelport.bootstrap import build_registry, build_server_app
    from modelport.config import Settings
    from modelport.package.options import PackageOptions
    from modelport.server.http.rest_schemas import AlertsResponse
    from modelport.serving.sources import parse_source
    from testing_models import EchoModel

    log = tmp_path / "predictions"
    log_requests(log, T0 - timedelta(minutes=30), 100, failing_every=5, model="echo")
    rule = {"model": "echo", "signal": "error_rate", "comparison": ">", "threshold": 0.05}
    settings = Settings(
        home=tmp_path, user="tester", monitor={"alerts": {"errors": rule, "other": {
            **rule, "model": "fraud"}}},
    )  # fmt: skip
    with build_registry(settings) as registry:
        sample = np.arange(6, dtype=float).reshape(3, 2)
        registry.register(EchoModel(), "echo", PackageOptions(sample_input=sample))
        reader = SignalReader(str(log), registry=registry)
        engine = AlertEngine(
            settings.monitor.alerts,
            registry.metadata,
            reader,
            ActionRunner(registry.metadata, log_uri=str(log), retrain_dir=str(tmp_path)),
        )
        engine.evaluate(T0)
    app = build_server_app(
        settings,
        [parse_source("echo")],
        worker_index=0,
        workers=1,
        on_ready=lambda: None,
        on_failed=lambda message: None,
    )
    with TestClient(app.asgi) as client:
        answer = client.get("/api/monitoring/echo/alerts", params={"limit": 5})
        refused = client.get("/api/monitoring/echo/alerts", params={"limit": "lots"})
    assert answer.status_code == 200
    body = answer.json()
    AlertsResponse.model_validate(body)  # as the OpenAPI document describes it
    assert [r["name"] for r in body["rules"]] == ["errors"]
    assert body["rules"][0]["state"]["status"] == "firing"
    assert [(e["from"], e["to"]) for e in body["events"]] == [("inactive", "firing")]
    assert refused.status_code == 400 and "limit" in refused.json()["error"]


def test_prediction_log_drops_from_the_servers_metrics(
    tmp_path: Path, store: MetadataStore
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prometheus_client import CollectorRegistry, Counter, generate_latest

    registry = CollectorRegistry()
    dropped = Counter(
        "modelport_prediction_log_dropped", "Rows dropped.", ("model",), registry=registry
    )
    dropped.labels("fraud").inc(1000)  # another model's drops do not count

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    rule = AlertRule.model_validate(
        {"model": "churn", "signal": "prediction_log_drops", "comparison": ">", "threshold": 0}
    )
    reader = SignalReader(str(tmp_path), metrics_urls=[url], policy=LOOPBACK)
    actions = ActionRunner(store, log_uri=str(tmp_path), retrain_dir=str(tmp_path))
    engine = AlertEngine({"drops": rule}, store, reader, actions)
    try:
        dropped.labels("churn").inc(5)
        (first,) = engine.evaluate(T0)  # one scrape: no increase known yet
        assert first.state is not None and first.state.value is None
        (quiet,) = engine.evaluate(T0 + timedelta(minutes=1))
        assert quiet.state is not None and quiet.state.value == 0
        assert quiet.state.status is AlertStatus.INACTIVE
        dropped.labels("churn").inc(7)
        (fired,) = engine.evaluate(T0 + timedelta(minutes=2))
        assert fired.state is not None and fired.state.status is AlertStatus.FIRING
        assert fired.state.value == 7
        # Two hours on, the samples that saw the drops are out of the window.
        engine.evaluate(T0 + timedelta(hours=2))
        (calm,) = engine.evaluate(T0 + timedelta(hours=2, minutes=1))
        assert calm.state is not None and calm.state.status is AlertStatus.RESOLVED
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    unreachable = SignalReader(str(tmp_path), metrics_urls=[url], policy=LOOPBACK)
    lost = AlertEngine({"drops": rule}, store, unreachable, actions).evaluate(T0)[0]
    assert lost.error is not None and "cannot read metrics" in lost.error


def test_a_corrupt_segment_is_reported_and_other_rules_still_run(
    tmp_path: Path, store: MetadataStore
) -> None:
    log = tmp_path / "log"
    log_requests(log, T0 - timedelta(minutes=30), 10)
    log_requests(log, T0 - timedelta(minutes=30), 10, model="fraud")
    day = log / "churn" / "3" / T0.date().isoformat()
    (day / "999-broken-0.parquet").write_bytes(b"not parquet at all")
    base = {"signal": "volume", "comparison": ">", "threshold": 5}
    rules = {
        "churn": AlertRule.model_validate({**base, "model": "churn"}),
        "fraud": AlertRule.model_validate({**base, "model": "fraud"}),
    }
    engine, _ = engine_for(store, rules, log, tmp_path)
    broken, fine = engine.evaluate(T0)
    assert broken.error is not None and broken.state is None
    assert fine.error is None and fine.state is not None
    assert fine.state.status is AlertStatus.FIRING
