"""Drift on a running server: the on-demand route over the prediction log, and the live
gauges fed by the requests it answers."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

import modelport
from drift_logs import log_table, write_log
from modelport.bootstrap import build_server_app
from modelport.config import MonitorSettings, PredictionLogSettings
from modelport.monitoring import drift_live
from modelport.package.sample_schema import infer_signature
from modelport.server.http.rest_schemas import DriftResponse
from modelport.serving.sources import parse_source
from testing_server import Catalog


class DriftServer:
    def __init__(self, client: TestClient, log: Path, version: str) -> None:
        self.client, self.log, self.version = client, log, version

    def gauges(self, *, wait_s: float = 20.0) -> dict[tuple[str, ...], float]:
        """The drift gauges, once they show (the drift thread loads its modules a few
        seconds after the start, then folds what was queued meanwhile)."""
        deadline = time.monotonic() + wait_s
        found = self._scrape()
        while not found and time.monotonic() < deadline:
            time.sleep(0.2)
            found = self._scrape()
        return found

    def _scrape(self) -> dict[tuple[str, ...], float]:
        text = self.client.get("/metrics").text
        found = {}
        for line in text.splitlines():
            match = re.match(
                r"(modelport_(?:feature_drift|dataset_drift_share))\{(.*)\} (\S+)", line
            )
            if match:
                labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
                key = (match.group(1), labels.get("feature", ""), labels.get("method", ""))
                found[key] = float(match.group(3))
        return found


@pytest.fixture
def drift_server(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """``start(models)``: a server whose prediction log is its own, live drift on."""
    monkeypatch.setattr(drift_live, "START_DELAY_S", 0.2)
    stack = []

    def start(models: list[str], **monitor: Any) -> DriftServer:
        log = tmp_path / f"log-{len(stack)}"
        settings = catalog.settings.model_copy(
            update={
                "prediction_log": PredictionLogSettings(uri=str(log)),
                "monitor": MonitorSettings(drift_min_rows=50, **monitor),
            }
        )
        app = build_server_app(
            settings, [parse_source(m) for m in models], worker_index=0, workers=1,
            on_ready=lambda: None, on_failed=lambda message: None,
        )  # fmt: skip
        client = TestClient(app.asgi)
        client.__enter__()
        stack.append(client)
        name = parse_source(models[0]).name
        version = app.context.runtime.get(name).version_label
        return DriftServer(client, log, version)

    yield start
    for client in reversed(stack):
        client.__exit__(None, None, None)


def _rows(frame: pd.DataFrame, rows: int, seed: int, shift: bool) -> pd.DataFrame:
    sample = frame.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    if shift:
        rng = np.random.default_rng(seed)
        sample["tenure"] = sample["tenure"] + 40
        sample["charges"] = (sample["charges"] + rng.normal(30, 5, rows)).round(2)
        sample["contract"] = "monthly"
    return sample


def test_drift_route_reads_the_log_window(drift_server: Any, catalog: Catalog) -> None:
    server = drift_server(["churn@production"])
    frame = catalog.data["churn"]
    now = datetime.now(UTC)
    for rows, start, shift in (
        (1500, now - timedelta(hours=5), False),
        (1500, now - timedelta(minutes=10), True),
    ):
        table = log_table(
            _rows(frame, rows, rows, shift), model="churn", version=server.version, start=start
        )
        write_log(server.log, table, model="churn", version=server.version)

    recent = server.client.get("/api/monitoring/churn/drift", params={"since": "1h"})
    older = server.client.get(
        "/api/monitoring/churn/drift",
        params={
            "since": "6h",
            "until": (now - timedelta(hours=1)).isoformat(),
            "version": server.version,
        },
    )

    assert recent.status_code == 200, recent.text
    body = DriftResponse.model_validate(recent.json())
    assert body.rows == 1500 and body.dataset_drift
    assert {c.column for c in body.columns if c.drifted} >= {"tenure", "charges", "contract"}
    assert older.status_code == 200 and older.json()["rows"] == 1500
    assert older.json()["dataset_drift"] is False

    options = {"since": "1h", "method.tenure": "psi", "threshold.tenure": "9"}
    columns = server.client.get("/api/monitoring/churn/drift", params=options).json()["columns"]
    tenure = next(c for c in columns if c["column"] == "tenure")
    assert (tenure["method"], tenure["threshold"], tenure["drifted"]) == ("psi", 9.0, False)


def test_drift_route_errors(drift_server: Any, catalog: Catalog, tmp_path: Path) -> None:
    frame = catalog.data["churn"]
    package = tmp_path / "bare"
    modelport.save(
        catalog.models["churn"], package, signature=infer_signature(frame, np.zeros(len(frame))),
        accelerate=False,
    )  # fmt: skip
    server = drift_server(["churn@production", f"bare={package}"])
    get = server.client.get

    cases = [
        ("/api/monitoring/ghost/drift", {}, 404, "'ghost' is not served"),
        ("/api/monitoring/churn/drift", {"version": "99"}, 404, "modelport monitor drift churn/99"),
        ("/api/monitoring/churn/drift", {"since": "soon"}, 400, "ISO-8601"),
        ("/api/monitoring/churn/drift", {"method.tenure": "magic"}, 400, "unknown drift method"),
        ("/api/monitoring/churn/drift", {"method.nope": "ks"}, 400, "unknown columns"),
        ("/api/monitoring/bare/drift", {}, 409, "modelport version stats"),
    ]
    for path, params, status, text in cases:
        response = get(path, params=params)
        assert response.status_code == status, (path, params, response.text)
        assert text in response.json()["error"]


_V2_TYPES = {"tenure": "INT64", "charges": "FP64", "contract": "BYTES", "region": "BYTES"}


def _send(server: DriftServer, frame: pd.DataFrame, batch: int = 20) -> None:
    """V2 requests (every output: predictions and probabilities)."""
    for start in range(0, len(frame), batch):
        part = frame.iloc[start : start + batch]
        inputs = [
            {"name": name, "shape": [len(part)], "datatype": kind, "data": part[name].tolist()}
            for name, kind in _V2_TYPES.items()
        ]
        response = server.client.post("/v2/models/churn/infer", json={"inputs": inputs})
        assert response.status_code == 200, response.text


def test_live_gauges_stay_low_for_reference_like_traffic(
    drift_server: Any, catalog: Catalog
) -> None:
    server = drift_server(["churn@production"])
    _send(server, _rows(catalog.data["churn"], 600, 3, shift=False))

    gauges = server.gauges()

    share = gauges[("modelport_dataset_drift_share", "", "")]
    assert share < 0.5
    methods = {feature: method for (_, feature, method) in gauges if feature}
    assert methods["tenure"] == "ks" and methods["contract"] == "chisquare"
    assert methods["region"] == "z" and "prediction" in methods and "probability.1" in methods


def test_live_gauges_flag_shifted_traffic(drift_server: Any, catalog: Catalog) -> None:
    server = drift_server(["churn@production"])
    _send(server, _rows(catalog.data["churn"], 600, 4, shift=True))

    gauges = server.gauges()

    assert gauges[("modelport_dataset_drift_share", "", "")] >= 0.5
    assert gauges[("modelport_feature_drift", "tenure", "ks")] < 0.05
    assert gauges[("modelport_feature_drift", "contract", "chisquare")] < 0.05


def test_live_drift_can_be_turned_off(drift_server: Any, catalog: Catalog) -> None:
    server = drift_server(["churn@production"], live_drift=False)
    _send(server, _rows(catalog.data["churn"], 100, 5, shift=True))
    assert server.gauges(wait_s=3) == {}
