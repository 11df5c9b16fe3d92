"""A server worker's registry writes reach their webhooks before the worker exits."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_server_app
from modelport.config import OutgoingSettings, WebhookSettings
from modelport.serving.sources import parse_source
from testing_server import Catalog
from testing_webhook import webhook_receiver


def test_the_worker_delivers_its_registry_events_when_it_shuts_down(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_TEST_HOOK_SECRET", "s")
    with webhook_receiver() as receiver:
        hook = WebhookSettings(url=receiver.url, secret_env="MODELPORT_TEST_HOOK_SECRET")
        outgoing = OutgoingSettings(allowed_hosts=["127.0.0.1"])
        settings = catalog.settings.model_copy(
            update={"webhooks": {"ci": hook}, "outgoing": outgoing}
        )
        app = build_server_app(
            settings,
            [parse_source("echo@production")],
            worker_index=0,
            workers=1,
            on_ready=lambda: None,
            on_failed=lambda message: None,
        )
        with TestClient(app.asgi):
            registry = app.context.registry
            assert registry is not None
            version = registry().version_number("echo@production")
            registry().set_alias("echo", "hooked", version)
            registry().delete_alias("echo", "hooked")
        # The lifespan's shutdown closed the registry: both events were delivered.
        events = [json.loads(request.body)["event"] for request in receiver.requests]
    assert events == ["model_version_alias.created", "model_version_alias.deleted"]
