"""Ground truth on a real ``modelport serve`` (two workers, loopback): POST /api/feedback,
GET /api/monitoring/{model}/performance and the live performance gauges in /metrics.

The prediction log is written here with the log's own writer into the server's default
log location (``MODELPORT_HOME/predictions``), as the server's workers write it."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn import metrics as skm

import modelport
from modelport.monitoring.feedback.store import label_files
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from modelport.package.options import PackageOptions
from testing_models import EchoModel
from testing_process import serving

pytestmark = pytest.mark.timeout(120)


def log_predictions(home: Path, count: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    p1 = rng.random(count)
    writer = PredictionLogWriter(str(home / "predictions"), flush_interval_s=60)
    now = datetime.now(UTC)
    ids = []
    for i in range(count):
        ids.append(f"req{i}-0")
        outputs = {"predictions": int(p1[i] > 0.5), "probabilities": [1 - p1[i], p1[i]]}
        writer.put(
            PredictionRecord(
                ids[-1],
                f"req{i}",
                now - timedelta(minutes=10) + timedelta(seconds=i),
                "echo",
                "1",
                "v2",
                0.001,
                200,
                {"input": float(i)},
                outputs,
            )
        )
    writer.close()
    return ids, (p1 > 0.5).astype(int), p1


def test_feedback_performance_and_gauges_on_a_real_server(isolated_home: Path) -> None:
    with modelport.connect() as registry:
        options = PackageOptions(sample_input=np.zeros((4, 3)))
        registry.register(EchoModel(), "echo", options)
    ids, y_pred, p1 = log_predictions(isolated_home, 40)
    y_true = (np.arange(40) % 3 == 0).astype(int)
    with (
        serving(
            isolated_home,
            ["echo/1", "--workers", "2"],
            MODELPORT_LIVE_PERFORMANCE__INTERVAL_S="1",
        ) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        # 30 labels one by one in a list, one for an id the log does not have, one bad item
        items = [
            {"model": "echo", "prediction_id": ids[i], "label": int(y_true[i])} for i in range(30)
        ]
        items += [{"model": "echo", "prediction_id": "late-0", "label": 1}, {"model": "echo"}]
        answer = client.post("/api/feedback", json=items, headers={"X-Modelport-Actor": "qa"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["accepted"], body["unknown"], body["corrected"], body["rejected"]) == (
            31,
            1,
            0,
            1,
        )
        assert body["errors"] == [{"index": 31, "error": "'label' is missing"}]
        # the rest in the wrapped form, with a correction of label 0
        rest = [{"prediction_id": ids[i], "label": int(y_true[i])} for i in range(30, 40)]
        rest.append({"prediction_id": ids[0], "label": int(1 - y_true[0])})
        answer = client.post("/api/feedback", json={"model": "echo", "labels": rest})
        assert answer.json()["corrected"] == 1
        y_true[0] = 1 - y_true[0]

        report = client.get("/api/monitoring/echo/performance", params={"since": "1h"}).json()
        assert (report["predictions"], report["labeled"], report["coverage"]) == (40, 40, 1.0)
        assert report["unmatched_labels"] == 1
        assert report["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
        assert report["metrics"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, p1))
        assert report["version"] is None and report["task"] == "classification"
        only_v1 = client.get("/api/monitoring/echo/performance?since=1h&version=1").json()
        assert only_v1["version"] == "1" and only_v1["labeled"] == 40

        # bad requests: a clear 400/404/415 each
        bad_body = client.post(
            "/api/feedback", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert bad_body.status_code == 400 and "not valid JSON" in bad_body.json()["error"]
        assert client.post("/api/feedback", json=3).status_code == 400
        single = client.post("/api/feedback", json={"model": "echo", "label": 1})
        assert single.status_code == 400 and "exactly one key" in single.json()["error"]
        unserved = client.post(
            "/api/feedback", json={"model": "ghost", "prediction_id": "a", "label": 1}
        )
        assert unserved.status_code == 400 and "not served here" in unserved.json()["error"]
        text = client.post("/api/feedback", content=b"a,b", headers={"content-type": "text/csv"})
        assert text.status_code == 415
        assert client.get("/api/monitoring/ghost/performance").status_code == 404
        window = client.get("/api/monitoring/echo/performance?since=yesterday")
        assert window.status_code == 400 and "duration" in window.json()["error"]
        unknown = client.get("/api/monitoring/echo/performance?sinse=1h")
        assert unknown.status_code == 400 and "accepted: since" in unknown.json()["error"]

        # worker 0 computes the gauges every second, window by window; a computation may have
        # run while the second POST was stored, so wait for one that saw every label (coverage
        # 1.0 in both windows) and read accuracy from that same scrape
        accuracy = None
        deadline = time.monotonic() + 30
        while accuracy is None and time.monotonic() < deadline:
            metrics = client.get("/metrics").text
            covered = all(
                re.search(
                    rf'^modelport_label_coverage\{{model="echo",version="1",window="{window}"\}}'
                    r" 1\.0$",
                    metrics,
                    re.MULTILINE,
                )
                for window in ("1h", "24h")
            )
            found = re.search(
                r'^modelport_live_metric\{metric="accuracy",model="echo",version="1",'
                r'window="1h"\} (\S+)$',
                metrics,
                re.MULTILINE,
            )
            if covered and found:
                accuracy = float(found.group(1))
            else:
                time.sleep(0.3)
        assert accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred)), metrics
    _, files = label_files(str(isolated_home / "predictions"), "echo")
    assert len(files) == 2  # one segment per request that stored labels
