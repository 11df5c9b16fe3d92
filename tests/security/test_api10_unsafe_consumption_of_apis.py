"""OWASP API10:2023 Unsafe Consumption of APIs: what modelport gets back from the
services it calls is never trusted.

Webhook receivers (registry events, alert actions, rollout decisions share one sender)
are trusted for their status code only: the body is never read, so a huge, endless or
slow one costs nothing; a redirect is a refusal (see API7); garbage that is not HTTP is a
failed attempt, retried, never a crash. A scraped ``/metrics`` page is read up to a size
and a time limit and must parse, or the reading is unavailable (never a partial value).
A shadow model that hangs or answers nonsense never reaches the caller's answer or its
latency.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app, resolve_sources
from modelport.config import PredictionLogSettings, WebhookSettings
from modelport.errors import UnavailableError
from modelport.monitoring.alerts import scrape
from modelport.monitoring.alerts.scrape import MAX_SCRAPE_BYTES, DropCounter
from modelport.outgoing import OutgoingPolicy
from modelport.serving.sources import parse_source
from modelport.webhooks.dispatcher import deliver
from modelport.webhooks.envelope import Envelope
from testing_hostile import Script, hostile_server
from testing_server import Catalog

LOOPBACK = OutgoingPolicy(allowed_hosts=("127.0.0.1",))
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
ENDLESS_OK: Script = [
    (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n",
        0,
    ),
    *[(b'{"state": "resolved", "admin": true, ' * 100, 0.2)] * 100,
]


def post(url: str, **options: object) -> list:  # type: ignore[type-arg]
    hook = WebhookSettings.model_validate({"url": url, "backoff": timedelta(0), **options})
    envelope = Envelope("model_version.created", {"name": "churn", "version": 1})
    return deliver("ci", hook, envelope, policy=LOOPBACK, sleep=lambda _: None)


def test_a_receivers_body_is_never_read_however_large_or_slow() -> None:
    with hostile_server(ENDLESS_OK) as receiver:
        started = time.monotonic()
        attempts = post(receiver.url, timeout=timedelta(seconds=5))
        took = time.monotonic() - started
    assert [(a.ok, a.code) for a in attempts] == [(True, 200)]
    assert took < 2  # the 10 GB body that drips for 20 s was never waited for


def test_garbage_that_is_not_http_is_a_failed_attempt_retried() -> None:
    with hostile_server([(b"\x00\xffSSH-2.0-not-http\r\n\r\n", 0)]) as receiver:
        attempts = post(receiver.url, retries=2, timeout=timedelta(seconds=2))
    assert [a.ok for a in attempts] == [False, False, False]
    assert all(a.code is None and a.error for a in attempts)
    assert len(receiver.requests) == 3


def test_a_receiver_that_never_answers_costs_the_timeout_per_attempt() -> None:
    with hostile_server([(b"", 30)]) as receiver:
        started = time.monotonic()
        attempts = post(receiver.url, retries=1, timeout=timedelta(seconds=0.5))
        took = time.monotonic() - started
    assert [a.ok for a in attempts] == [False, False]
    assert all("Timeout" in (a.error or "") for a in attempts)
    assert took < 3


def test_a_receivers_error_status_is_only_a_status() -> None:
    evil = b'HTTP/1.1 500 Oops\r\nContent-Length: 27\r\n\r\n{"retry": false, "ok": true}'
    with hostile_server([(evil, 0)]) as receiver:
        attempts = post(receiver.url, retries=1)
    assert [(a.ok, a.code, a.error) for a in attempts] == [(False, 500, "HTTP 500")] * 2


def metrics_page(body: bytes, pause: float = 0) -> Script:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    return [(head, 0), (body, pause)]


def drops(url: str) -> tuple[float | None, int]:
    return DropCounter([url], LOOPBACK).increase("k", "churn", since=T0, until=T0)


def test_a_metrics_page_over_the_size_limit_is_no_reading() -> None:
    page = metrics_page(b"#" * (MAX_SCRAPE_BYTES + 1))
    with hostile_server(page) as server, pytest.raises(UnavailableError, match="more than"):
        drops(server.url)


def test_a_metrics_page_that_drips_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scrape, "_SCRAPE_TIMEOUT_S", 0.5)
    line = b"# HELP x y\n"
    drip: Script = [(f"HTTP/1.1 200 OK\r\nContent-Length: {len(line) * 50}\r\n\r\n".encode(), 0)]
    drip += [(line, 0.1)] * 50  # 5 s in all, each piece well within the read timeout
    with hostile_server(drip) as server:
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="not read within"):
            drops(server.url)
        assert time.monotonic() - started < 1.5


def test_a_metrics_page_that_is_not_prometheus_text_is_no_reading() -> None:
    garbage = b'modelport_prediction_log_dropped_total{model="churn" 1e400 junk\n\x00\xff'
    not_text = pytest.raises(UnavailableError, match="not Prometheus text")
    with hostile_server(metrics_page(garbage)) as server, not_text:
        drops(server.url)


@contextmanager
def serving_deployment(catalog: Catalog, name: str, shadow: str, log: Path) -> Iterator[TestClient]:
    settings = catalog.settings.model_copy(
        update={"prediction_log": PredictionLogSettings(uri=str(log))}
    )
    with build_registry(settings) as registry:
        registry.create_deployment(name, 1, model="echo")
        registry.deploy_shadow(name, 1, 1.0, model=shadow)
    sources = resolve_sources(settings, [parse_source(name)])
    app = build_server_app(
        settings, sources, worker_index=0, workers=1, on_ready=lambda: None, on_failed=print
    )
    try:
        with TestClient(app.asgi) as client:
            yield client
    finally:
        with build_registry(settings) as registry:
            registry.delete_deployment(name, reason="test clean-up")


def shadow_calls(client: TestClient, outcome: str) -> float:
    families = text_string_to_metric_families(client.get("/metrics").text)
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "modelport_arm_requests_total"
        and sample.labels.get("arm") == "shadow"
        and sample.labels.get("outcome") == outcome
    )


@pytest.mark.parametrize(("shadow", "outcome"), [("hang", "ok"), ("garbage", "error")])
def test_a_shadow_that_hangs_or_answers_garbage_never_touches_the_primary(
    attack_catalog: Catalog, tmp_path: Path, shadow: str, outcome: str
) -> None:
    with serving_deployment(attack_catalog, f"guarded-{shadow}", shadow, tmp_path) as client:
        for _ in range(5):
            started = time.monotonic()
            response = client.post(f"/v2/models/guarded-{shadow}/infer", json=ROW)
            assert time.monotonic() - started < 1.0  # the hanging shadow takes 2 s a call
            assert response.status_code == 200, response.text
            assert response.json()["outputs"][0]["data"] == [6.0]
            assert response.headers["x-modelport-arm"] == "champion"
        deadline = time.monotonic() + 20
        while shadow_calls(client, outcome) == 0:  # the copies did reach the shadow
            assert time.monotonic() < deadline, "the shadow never got a copy"
            time.sleep(0.1)
