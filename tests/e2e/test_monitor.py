"""The alert evaluator as real processes: ``modelport monitor run`` in the foreground and
``modelport serve --monitor``, over a real prediction log, notifying a real receiver."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelport.bootstrap import build_registry
from modelport.config import Settings
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from modelport.package.options import PackageOptions
from testing_models import EchoModel
from testing_process import MODELPORT, env_for, serving
from testing_webhook import OUTGOING_LOOPBACK, Receiver, webhook_receiver

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def log_errors(home: Path, model: str) -> None:
    """100 requests in the last ten minutes, one in five answered 500."""
    now = datetime.now(UTC)
    writer = PredictionLogWriter(str(home / "predictions"), flush_interval_s=60)
    for i in range(100):
        assert writer.put(
            PredictionRecord(
                prediction_id=f"r{i}-0",
                request_id=f"r{i}",
                time=now - timedelta(minutes=10) + timedelta(seconds=5 * i),
                model=model,
                version="1",
                protocol="v2",
                latency_s=0.001,
                status=500 if i % 5 == 0 else 200,
                inputs={"x": float(i)},
            )
        )
    writer.close()


def write_config(path: Path, receiver: Receiver, model: str) -> Path:
    path.write_text(
        f"""
[monitor]
interval = "1s"

[monitor.alerts.errors]
model = "{model}"
signal = "error_rate"
comparison = ">"
threshold = 0.05
min_samples = 50

[[monitor.alerts.errors.actions]]
type = "webhook"
url = "{receiver.url}"
{OUTGOING_LOOPBACK}"""
    )
    return path


def wait_for(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_monitor_run_fires_once_and_stops_on_sigterm(isolated_home: Path, tmp_path: Path) -> None:
    log_errors(isolated_home, "churn")
    with webhook_receiver() as receiver:
        config = write_config(tmp_path / "rules.toml", receiver, "churn")
        with subprocess.Popen(
            [str(MODELPORT), "monitor", "run", "--config", str(config), "--json"],
            env=env_for(isolated_home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as process:  # fmt: skip
            try:
                assert process.stdout is not None
                first = json.loads(process.stdout.readline())
                assert first["rule"] == "errors" and first["state"]["status"] == "firing"
                assert first["notified"] is True
                wait_for(lambda: len(receiver.requests) == 1, "the webhook")
                time.sleep(2.5)  # two more evaluations: still firing, nothing sent again
                assert len(receiver.requests) == 1
            finally:
                process.send_signal(signal.SIGTERM)
                code = process.wait(30)
            assert code == 0, process.stderr.read() if process.stderr else ""
    assert json.loads(receiver.requests[0].body)["status"] == "firing"


def test_serve_monitor_fires_on_the_servers_own_failures(
    isolated_home: Path, tmp_path: Path
) -> None:
    # Rows whose first value is 13 make the model fail: the server answers 500 and logs it.
    failing = PackageOptions(
        sample_input=np.arange(6, dtype=float).reshape(3, 2),
        flavor_options={"config": {"fail_on": 13}},
    )
    with build_registry(Settings(home=isolated_home)) as registry:
        registry.register(EchoModel(), "echo", failing)
    with webhook_receiver() as receiver:
        config = write_config(tmp_path / "rules.toml", receiver, "echo")
        drops = '[monitor.alerts.drops]\nmodel = "echo"\nsignal = "prediction_log_drops"\n'
        config.write_text(config.read_text() + drops + 'comparison = ">"\nthreshold = 0\n')
        with serving(isolated_home, ["echo", "--monitor", "--config", str(config)]) as server:
            infer = f"{server.url}/v2/models/echo/infer"
            for i in range(60):
                first = 13.0 if i % 5 == 0 else float(i % 5)
                body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64",
                                    "data": [first, 1.0]}]}  # fmt: skip
                answer = httpx.post(infer, json=body)
                assert answer.status_code == (500 if i % 5 == 0 else 200), answer.text

            def states() -> dict[str, Any]:
                answer = httpx.get(f"{server.url}/api/monitoring/echo/alerts").json()
                return {rule["name"]: rule["state"] or {} for rule in answer["rules"]}

            wait_for(lambda: states()["errors"].get("status") == "firing", "the rule to fire")
            wait_for(lambda: len(receiver.requests) == 1, "the webhook")
            # The server's own /metrics: nothing dropped between two evaluations.
            wait_for(lambda: states()["drops"].get("value") == 0, "the drop counter")
            assert states()["drops"]["status"] == "inactive"
            assert server.stop() == 0
        notice = json.loads(receiver.requests[0].body)
    # The evaluator may fire while requests still arrive: on at least min_samples of them,
    # one in five failed.
    assert notice["alert"] == "errors" and 50 <= notice["samples"] <= 60
    failed = round(notice["value"] * notice["samples"])
    assert notice["value"] == pytest.approx(failed / notice["samples"])
    assert abs(failed - notice["samples"] / 5) <= 1
