"""``modelport monitor report``: a registered scikit-learn model, its real prediction log,
the page written by the CLI and opened in headless Chromium."""

from __future__ import annotations

import importlib.util
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelport
from modelport.bootstrap import build_registry
from modelport.cli.main import main
from modelport.config import Settings
from modelport.domain.alerts import AlertStatus, NewAlertEvent
from modelport.monitoring.feedback.intake import labels_table, receive
from modelport.monitoring.feedback.store import PREDICTION_ID, Label
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord

pytestmark = pytest.mark.timeout(240)

CHROMIUM = Path("/usr/bin/chromium")
DAYS = 10


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def served(churn_model: Any, churn_data: tuple[pd.DataFrame, np.ndarray]) -> str:
    """churn@production registered with reference statistics and metrics, DAYS of its
    predictions in the prediction log (written by the real writer), the last days with
    longer tenures than the training data, labels for every other prediction (sent
    through the feedback intake) and two alert state changes in the metadata store."""
    frame, _ = churn_data
    version = modelport.register(
        churn_model, "churn", sample_input=frame, metrics={"accuracy": 0.93, "auc": 0.97}
    )
    modelport.set_alias("churn", "production", version.version)
    uri = Settings().resolved_prediction_log_uri
    writer = PredictionLogWriter(uri, flush_interval_s=60, max_queue_rows=100_000)
    rng, noise = np.random.default_rng(11), np.random.default_rng(12)
    now = datetime.now(UTC)
    labels: list[Label] = []
    for day in range(DAYS):
        batch = frame.sample(60, replace=True, random_state=day).reset_index(drop=True)
        if day >= DAYS - 3:
            batch["tenure"] = batch["tenure"] + 40
        predictions = churn_model.predict(batch)
        probabilities = churn_model.predict_proba(batch)
        failed_requests = set(rng.choice(20, size=1, replace=False).tolist())
        for i, row in batch.iterrows():
            request = f"d{day}r{int(i) // 3}"
            failed = int(i) // 3 in failed_requests
            record = PredictionRecord(
                prediction_id=f"{request}-{int(i) % 3}",
                request_id=request,
                time=now - timedelta(days=DAYS - day, minutes=int(i) * 7),
                model="churn",
                version=str(version.version),
                protocol="v2",
                latency_s=float(rng.gamma(2.0, 0.003)),
                status=500 if failed else 200,
                inputs={} if failed else row.to_dict(),
                outputs={}
                if failed
                else {
                    "predictions": int(predictions[int(i)]),
                    "probabilities": [float(p) for p in probabilities[int(i)]],
                },
            )
            assert writer.put(record)
            if not failed and int(i) % 2 == 0:
                truth = int(row["contract"] == "monthly" and row["tenure"] < 24)
                truth = 1 - truth if noise.random() < 0.1 else truth  # a model is rarely perfect
                labels.append(Label.of(PREDICTION_ID, record.prediction_id, truth))
    writer.close()
    receive(uri, "churn", labels_table(labels), actor="test", source="test")
    with build_registry(Settings()) as registry, registry.metadata.transaction() as session:
        for hours, before, after, value in (
            (30, "pending", "firing", 0.61),
            (2, "firing", "resolved", 0.2),
        ):
            session.add_alert_event(
                NewAlertEvent(
                    rule="churn_drift", model="churn@production",
                    time=now - timedelta(hours=hours),
                    from_status=AlertStatus(before), to_status=AlertStatus(after),
                    value=value, samples=180, message=f"dataset drift share {value}",
                )
            )  # fmt: skip
    return uri


def test_the_cli_writes_a_page_and_its_json_twin(
    capsys: pytest.CaptureFixture[str], served: str, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    code, out, err = run(
        capsys, "monitor", "report", "churn@production", "--since", "30d", "--out", str(page)
    )
    assert code == 0, err
    assert out.startswith(f"wrote {page} (")
    assert "churn version 1, 570 predictions" in out  # 10 requests of 3 rows failed
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    assert "<h1>churn" in text

    code, out, err = run(
        capsys, "monitor", "report", "churn@production", "--since", "30d",
        "--out", str(tmp_path / "report.json"), "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["format"] == "json"  # from the suffix
    assert summary["predictions"] == 570
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["model"] == "churn"
    assert data["version"] == "1"
    assert data["serving"]["rows"] == 570
    assert data["serving"]["requests"] == 200
    assert data["serving"]["errors"] == 10
    assert data["window"]["bucket"] == "day"
    assert {h["column"] for h in data["histograms"]} >= {"tenure", "charges", "contract"}
    tenure = next(h for h in data["histograms"] if h["column"] == "tenure")
    assert sum(tenure["current"]) == 570  # failed requests log no inputs
    performance = data["performance"]
    assert performance["task"] == "classification"
    assert performance["labeled"] == 285  # every other answered row
    assert performance["coverage"] == pytest.approx(0.5)
    metrics = {m["name"]: m for m in performance["metrics"]}
    assert metrics["accuracy"]["registered"] == 0.93
    assert metrics["roc_auc"]["registered"] == 0.97  # registered as "auc"
    assert 0 <= metrics["accuracy"]["live"] <= 1
    assert data["timeline_metric"] == "accuracy"
    assert [(a["previous"], a["state"]) for a in data["alerts"]] == [
        ("firing", "resolved"),
        ("pending", "firing"),
    ]
    drift = data["drift"]
    assert drift["rows"] == 570
    assert {c["column"] for c in drift["columns"] if c["drifted"]} >= {"tenure"}


def test_drift_options_as_for_monitor_drift(
    capsys: pytest.CaptureFixture[str], served: str, tmp_path: Path
) -> None:
    out_file = tmp_path / "report.json"
    code, _, err = run(
        capsys, "monitor", "report", "churn@production", "--since", "30d", "--out", str(out_file),
        "--method", "charges=psi", "--threshold", "charges=0.5",
    )  # fmt: skip
    assert code == 0, err
    columns = json.loads(out_file.read_text(encoding="utf-8"))["drift"]["columns"]
    charges = next(c for c in columns if c["column"] == "charges")
    assert (charges["method"], charges["threshold"]) == ("psi", 0.5)


def test_a_bad_window_is_a_clear_error(capsys: pytest.CaptureFixture[str], served: str) -> None:
    code, _, err = run(capsys, "monitor", "report", "churn@production", "--since", "soon", "--json")
    assert code == 1
    error = json.loads(err.strip().splitlines()[-1])
    assert "since='soon' is neither a duration nor a timestamp" in error["error"]
    assert error["code"] == "INVALID_ARGUMENT"


def browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright)"
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
def test_the_page_renders_offline_in_chromium(
    capsys: pytest.CaptureFixture[str], served: str, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "report.html"
    code, _, err = run(
        capsys, "monitor", "report", "churn@production", "--since", "30d", "--out", str(page_file)
    )
    assert code == 0, err
    screenshot = tmp_path / "report.png"
    console: list[str] = []
    requests: list[str] = []
    failures: list[str] = []
    executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: failures.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failures.append(r.url))
            page.goto(page_file.as_uri(), wait_until="load")
            title = page.title()
            drift_rows = page.locator("#drift tbody tr").count()
            charts = page.locator("svg.chart").count()
            cards = page.locator(".card").count()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    print(f"screenshot of the report: {screenshot}")
    assert [m for m in console if m.startswith(("error", "warning"))] == []
    assert failures == []
    assert requests == [page_file.as_uri()]  # the file itself, nothing else
    assert title.startswith("churn v1")
    assert cards == 6
    assert drift_rows >= 4
    assert charts >= 7  # three over time at least, one histogram per logged column
    assert screenshot.stat().st_size > 10_000
