"""The dashboard in headless Chromium against live processes: ``modelport ui`` (keys
on) and ``modelport serve churn`` following the deployment the dashboard changes.

Each page loads with no console error (a blocked stylesheet or a CSP violation would
be one), passes basic accessibility checks (every form control labelled, one h1 and
no skipped heading level, text contrast of at least 4.5:1 from the computed colours)
and is saved as a screenshot in ``MODELPORT_SCREENSHOTS`` (default: pytest's tmp dir).
Promote and roll back in the UI, and the serving process answers with the version
the dashboard chose (``X-Modelport-Version``). One browser for the module.
"""

from __future__ import annotations

import os
import shutil
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

from modelport.bootstrap import build_registry
from modelport.config import Settings
from modelport.domain.alerts import AlertStatus, NewAlertEvent
from modelport.monitoring.feedback.intake import labels_table, receive
from modelport.monitoring.feedback.store import PREDICTION_ID, Label
from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord
from modelport.package.options import PackageOptions
from modelport.security.key_admin import KeyAdmin
from testing_control_plane import control_plane
from testing_process import ServerProcess, serving

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not CHROMIUM.exists() and shutil.which("chromium") is None,
        reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]
COLUMNS = ["tenure", "charges", "contract", "region"]
CHECKS = Path(__file__).with_name("dashboard_checks.js")


def churn_frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows),
            "charges": rng.normal(70, 20, rows).round(2),
            "contract": rng.choice(["monthly", "yearly", "two-year"], rows),
            "region": rng.choice(["north", "south"], rows),
        }
    )
    target = ((frame["contract"] == "monthly") & (frame["tenure"] < 24)).to_numpy().astype(int)
    return frame, target


def churn_model(frame: pd.DataFrame, target: np.ndarray, c: float) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["tenure", "charges"]),
            ("text", OneHotEncoder(handle_unknown="ignore"), ["contract", "region"]),
        ]
    )
    return make_pipeline(features, LogisticRegression(C=c, max_iter=500)).fit(frame, target)


def fill_log(settings: Settings, model: Any, frame: pd.DataFrame) -> None:
    """Five days of churn/1's predictions (the last two drifted), labels for half of
    them and two alert state changes: what the Monitoring page draws."""
    uri = settings.resolved_prediction_log_uri
    writer = PredictionLogWriter(uri, flush_interval_s=60, max_queue_rows=100_000)
    rng, now, labels = np.random.default_rng(3), datetime.now(UTC), []
    for day in range(5):
        batch = frame.sample(40, replace=True, random_state=day).reset_index(drop=True)
        if day >= 3:
            batch["tenure"] = batch["tenure"] + 40
        predictions = model.predict(batch)
        for i, row in batch.iterrows():
            record = PredictionRecord(
                prediction_id=f"d{day}r{i}-0",
                request_id=f"d{day}r{i}",
                time=now - timedelta(days=5 - day, minutes=int(i) * 11),
                model="churn",
                version="1",
                protocol="mlflow",
                latency_s=float(rng.gamma(2.0, 0.003)),
                status=200,
                inputs=row.to_dict(),
                outputs={"predictions": int(predictions[int(i)])},
            )
            assert writer.put(record)
            if int(i) % 2 == 0:
                truth = int(row["contract"] == "monthly" and row["tenure"] < 24)
                labels.append(Label.of(PREDICTION_ID, record.prediction_id, truth))
    writer.close()
    receive(uri, "churn", labels_table(labels), actor="test", source="test")
    with build_registry(settings) as registry, registry.metadata.transaction() as session:
        for hours, before, after in ((30, "pending", "firing"), (2, "firing", "resolved")):
            session.add_alert_event(
                NewAlertEvent(
                    rule="churn_drift", model="churn@production",
                    time=now - timedelta(hours=hours),
                    from_status=AlertStatus(before), to_status=AlertStatus(after),
                    value=0.5, samples=80, message="dataset drift share 0.5",
                )
            )  # fmt: skip


@dataclass(frozen=True)
class Live:
    """The running control plane and serving process, and the keys to sign in with."""

    ui: str
    serve: ServerProcess
    tokens: dict[str, str]
    frame: pd.DataFrame
    settings: Settings


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("dashboard-e2e") / "home"
    settings = Settings(home=home, user="trainer")
    frame, target = churn_frame(300, 7)
    first, second = churn_model(frame, target, 1.0), churn_model(frame, target, 0.05)
    tokens: dict[str, str] = {}
    with build_registry(settings) as registry:
        for model, metrics, params in (
            (first, {"accuracy": 0.93, "auc": 0.97}, {"C": "1.0"}),
            (second, {"accuracy": 0.95, "auc": 0.98}, {"C": "0.05"}),
        ):
            options = PackageOptions(sample_input=frame, metrics=metrics, params=params)
            registry.register(model, "churn", options)
        registry.promote("churn", 1, "production", force=True)
        registry.create_deployment("churn", 1, reason="first release")
        registry.deploy_canary("churn", 2, 10, reason="try v2")
        admin = KeyAdmin(registry.metadata)
        tokens["ops"] = admin.create("ops", ["read", "deploy"], actor="tester")[1]
        tokens["viewer"] = admin.create("viewer", ["read"], actor="tester")[1]
    fill_log(settings, first, frame)
    with (
        control_plane(home, MODELPORT_SECURITY__AUTH="on", MODELPORT_GATES__TARGETS="[]") as ui,
        serving(home, ["churn"], MODELPORT_SERVE__POLL_INTERVAL_S="0.2") as served,
    ):
        yield Live(ui.url, served, tokens, frame, settings)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("MODELPORT_SCREENSHOTS")
    directory = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class Tab:
    """One browser page that records console errors and failed requests."""

    def __init__(self, browser: Any, base: str, screenshots: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1360, "height": 900})
        self.page = self.context.new_page()
        self.base = base
        self.screenshots = screenshots
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.problems.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base + path, wait_until="load")
        assert response is not None
        return response

    def sign_in(self, token: str) -> None:
        self.open("/ui/models")
        assert "/ui/login" in self.page.url
        self.page.get_by_label("API key").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url("**/ui/models")

    def check(self, name: str) -> dict[str, Any]:
        """Screenshot the page as ``name`` and run the accessibility checks on it."""
        self.page.screenshot(path=str(self.screenshots / f"{name}.png"), full_page=True)
        found: dict[str, Any] = self.page.evaluate(CHECKS.read_text(encoding="utf-8"))
        assert found["h1"] == 1, (name, found)
        assert found["unlabelled"] == [], (name, found["unlabelled"])
        assert found["skipped_levels"] == [], (name, found["skipped_levels"])
        assert found["low_contrast"] == [], (name, found["low_contrast"][:5])
        assert self.problems == [], (name, self.problems)
        return found

    def close(self) -> None:
        self.context.close()


def predict_version(serve: ServerProcess, frame: pd.DataFrame) -> str:
    rows = frame.head(2)
    body = {"dataframe_split": {"columns": COLUMNS, "data": rows.to_numpy().tolist()}}
    response = httpx.post(f"{serve.url}/invocations", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.headers["x-modelport-version"]


def champion_answers(live: Live, version: str, seconds: float = 20) -> None:
    """Wait until the serving process's answers come from ``version`` alone (a canary
    no longer takes a share of them)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(predict_version(live.serve, live.frame) == version for _ in range(12)):
            return
        time.sleep(0.2)
    raise AssertionError(f"the serving process never answered with version {version} alone")


def test_every_page_loads_cleanly_and_accessibly(
    live: Live, browser: Any, screenshots: Path
) -> None:
    for _ in range(30):  # live traffic for the deployment's per-arm numbers
        predict_version(live.serve, live.frame)
    tab = Tab(browser, live.ui, screenshots)
    try:
        tab.open("/ui/login")
        tab.check("01-login")
        tab.sign_in(live.tokens["ops"])
        tab.check("02-models")
        tab.open("/ui/models/churn?version=2")
        assert tab.page.locator("h1").inner_text() == "churn"
        assert tab.page.get_by_text("Version 2", exact=True).count() == 1
        assert tab.page.locator("svg.chart").count() >= 2  # accuracy and auc by version
        tab.check("03-model")
        tab.open("/ui/deployments")
        tab.check("04-deployments")
        tab.open("/ui/deployments/churn")
        assert tab.page.get_by_role("link", name="Promote").count() == 1
        tab.check("05-deployment")
        tab.open("/ui/monitoring/churn?since=7d")
        assert tab.page.locator("text=Drift per feature").count() == 1
        assert tab.page.locator("svg.chart").count() >= 6
        tab.check("06-monitoring")
        tab.open("/ui/audit")
        tab.check("07-audit")
    finally:
        tab.close()


def test_the_filters_narrow_the_tables(live: Live, browser: Any, screenshots: Path) -> None:
    tab = Tab(browser, live.ui, screenshots)
    try:
        tab.sign_in(live.tokens["viewer"])
        tab.page.get_by_label("Filter").fill("metrics.accuracy > 0.94")
        tab.page.get_by_role("button", name="Search").click()
        tab.page.wait_for_url("**q=metrics.accuracy*")
        rows = tab.page.locator("section[aria-labelledby=list-title] tbody tr")
        assert rows.count() == 1
        assert "v2" in rows.first.inner_text()
        tab.check("08-models-filtered")
        tab.open("/ui/audit")
        tab.page.get_by_label("Action starts with").fill("deployment.canary")
        tab.page.get_by_role("button", name="Filter").click()
        tab.page.wait_for_url("**action=deployment.canary*")
        entries = tab.page.locator("section[aria-labelledby=entries-title] tbody tr")
        assert entries.count() == 1
        tab.check("09-audit-filtered")
    finally:
        tab.close()


def test_a_read_only_key_sees_no_action(live: Live, browser: Any, screenshots: Path) -> None:
    tab = Tab(browser, live.ui, screenshots)
    try:
        tab.sign_in(live.tokens["viewer"])
        tab.open("/ui/deployments/churn")
        for name in ("Promote", "Roll back", "Set"):
            assert tab.page.get_by_role("link", name=name).count() == 0
            assert tab.page.get_by_role("button", name=name, exact=True).count() == 0
        tab.check("10-deployment-read-only")
        refused = tab.open("/ui/deployments/churn/confirm?action=promote")
        assert refused.status == 403
    finally:
        tab.close()


def test_promote_and_rollback_in_the_ui_swap_the_serving_process(
    live: Live, browser: Any, screenshots: Path
) -> None:
    assert {predict_version(live.serve, live.frame) for _ in range(40)} <= {"1", "2"}
    tab = Tab(browser, live.ui, screenshots)
    try:
        tab.sign_in(live.tokens["ops"])
        tab.open("/ui/deployments/churn")
        tab.page.get_by_role("link", name="Promote").click()
        tab.page.wait_for_url("**/confirm?action=promote*")
        tab.page.get_by_label("Reason (kept in the audit trail)").fill("v2 is better")
        tab.check("11-confirm-promote")
        with tab.page.expect_navigation():
            tab.page.get_by_role("button", name="Yes, promote").click()
        assert "done=" in tab.page.url, tab.page.locator("main").inner_text()
        assert "Promoted: churn/2 is the champion" in tab.page.locator("[role=status]").inner_text()
        tab.check("12-promoted")
        champion_answers(live, "2")
        tab.page.get_by_role("link", name="Roll back").click()
        with tab.page.expect_navigation():
            tab.page.get_by_role("button", name="Yes, rollback").click()
        assert "done=" in tab.page.url, tab.page.locator("main").inner_text()
        champion_answers(live, "1")
        tab.open("/ui/audit?model=churn&action=deployment.")
        text = tab.page.locator("section[aria-labelledby=entries-title] tbody").inner_text()
        assert "key:ops" in text
        assert "deployment.promote" in text
        assert "deployment.rollback" in text
    finally:
        tab.close()


def test_pause_a_rollout_from_its_page(live: Live, browser: Any, screenshots: Path) -> None:
    from modelport.domain.rollout_plan import RolloutPlan
    from modelport.rollout.commands import start_rollout
    from modelport.rollout.factory import build_controller

    with build_registry(live.settings) as registry:
        registry.create_deployment("churn-next", 1, model="churn", reason="rollout trial")
        controller = build_controller(live.settings, registry)
        start_rollout(controller, "churn-next", 2, RolloutPlan(steps=(5.0, 25.0, 100.0)))
        controller.close()
    tab = Tab(browser, live.ui, screenshots)
    try:
        tab.sign_in(live.tokens["ops"])
        tab.open("/ui/deployments/churn-next")
        assert tab.page.locator(".step.now").inner_text() == "5.0%"
        tab.page.get_by_role("link", name="Pause rollout").click()
        with tab.page.expect_navigation():
            tab.page.get_by_role("button", name="Yes, pause").click()
        assert "Rollout paused" in tab.page.locator("[role=status]").inner_text()
        assert tab.page.get_by_role("link", name="Resume rollout").count() == 1
        tab.check("13-rollout-paused")
    finally:
        tab.close()
