"""Registry events reach a real receiver on loopback: signed, retried, in the background,
and delivered before the registry (or a CLI command) closes."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.cli.main import main
from modelport.config import REGISTRY_EVENTS, WebhookSettings
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService
from modelport.webhooks.dispatcher import WebhookDispatcher
from testing_webhook import LOOPBACK, OUTGOING_LOOPBACK, Received, Receiver, webhook_receiver

SECRET = "a-test-secret"
SECRET_ENV = "MODELPORT_TEST_HOOK_SECRET"
Data = tuple[pd.DataFrame, np.ndarray]


@pytest.fixture(autouse=True)
def hook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def hook(receiver: Receiver, **options: Any) -> WebhookSettings:
    return WebhookSettings(url=receiver.url, secret_env=SECRET_ENV, **options)


def verified(request: Received) -> dict[str, Any]:
    """The delivery's document, after checking its signature the way a receiver does."""
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Modelport-Signature"], expected)
    document = json.loads(request.body)
    assert request.headers["X-Modelport-Event"] == document["id"]
    assert request.headers["X-Modelport-Event-Name"] == document["event"]
    assert document["timestamp"].endswith("Z")
    return document


def events_of(receiver: Receiver) -> list[tuple[str, dict[str, Any]]]:
    return [(doc["event"], doc["payload"]) for doc in map(verified, receiver.requests)]


def register(registry: RegistryService, model: Any, data: Data) -> int:
    frame, _ = data
    options = PackageOptions(sample_input=frame.head(20), accelerate=False, tags={"team": "risk"})
    return registry.register(model, "churn", options).version


def test_registration_alias_and_tag_changes_each_deliver_a_signed_event(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    with webhook_receiver() as receiver:
        registry.context.on_event = WebhookDispatcher({"ci": hook(receiver)}, policy=LOOPBACK)
        first = register(registry, churn_model, churn_data)
        second = register(registry, churn_model, churn_data)
        registry.set_alias("churn", "champion", first)
        registry.set_alias("churn", "champion", first)  # no move: no event
        registry.promote("churn", second, "staging")
        registry.set_version_tags("churn", first, {"reviewed": "yes"})
        registry.delete_version_tags("churn", first, ["reviewed", "absent"])
        registry.delete_alias("churn", "champion")
        digests = {v.version: v.manifest_digest for v in registry.list_versions("churn")}
        registry.close()  # delivers what is queued before it returns

        assert events_of(receiver) == [
            ("registered_model.created", {
                "name": "churn", "tags": {}, "description": "", "actor": "alice",
            }),
            ("model_version.created", {
                "name": "churn", "version": first, "source": f"models:/churn/{first}",
                "flavor": "sklearn", "tags": {"team": "risk"}, "description": "",
                "manifest_digest": digests[first],
                "actor": "alice",
            }),
            ("model_version.created", {
                "name": "churn", "version": second, "source": f"models:/churn/{second}",
                "flavor": "sklearn", "tags": {"team": "risk"}, "description": "",
                "manifest_digest": digests[second],
                "actor": "alice",
            }),
            ("model_version_alias.created", {
                "name": "churn", "alias": "champion", "version": first,
                "previous_version": None, "stage": False, "actor": "alice",
            }),
            ("model_version_alias.created", {
                "name": "churn", "alias": "staging", "version": second,
                "previous_version": None, "stage": True, "actor": "alice",
            }),
            ("model_version_tag.set", {
                "name": "churn", "version": first, "key": "reviewed", "value": "yes",
                "actor": "alice",
            }),
            ("model_version_tag.deleted", {
                "name": "churn", "version": first, "key": "reviewed", "actor": "alice",
            }),
            ("model_version_alias.deleted", {
                "name": "churn", "alias": "champion", "version": first, "stage": False,
                "reason": "deleted", "actor": "alice",
            }),
        ]  # fmt: skip
        assert {name for name, _ in events_of(receiver)} <= set(REGISTRY_EVENTS)


def test_archiving_the_previous_stage_holder_deletes_its_aliases(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    first = register(registry, churn_model, churn_data)
    second = register(registry, churn_model, churn_data)
    registry.promote("churn", first, "production")
    registry.set_alias("churn", "champion", first)
    with webhook_receiver() as receiver:
        registry.context.on_event = WebhookDispatcher({"ci": hook(receiver)}, policy=LOOPBACK)
        registry.promote("churn", second, "production", archive_previous=True)
        registry.close()
        events = events_of(receiver)
    assert events[0] == (
        "model_version_alias.created",
        {
            "name": "churn", "alias": "production", "version": second,
            "previous_version": first, "stage": True, "actor": "alice",
        },
    )  # fmt: skip
    deleted = sorted((p["alias"], p["version"], p["reason"]) for _, p in events[1:])
    assert deleted == [("champion", first, "archived")]


def test_a_refused_receiver_is_retried_with_back_off_and_the_same_id(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    waits: list[float] = []
    with webhook_receiver([500, 503]) as receiver:
        settings = hook(receiver, events=["model_version.created"], backoff=timedelta(seconds=2))
        registry.context.on_event = WebhookDispatcher(
            {"ci": settings}, policy=LOOPBACK, sleep=waits.append
        )
        register(registry, churn_model, churn_data)
        registry.close()
        documents = [verified(request) for request in receiver.requests]
    assert len(documents) == 3 and waits == [2.0, 4.0]
    assert len({document["id"] for document in documents}) == 1
    assert {document["event"] for document in documents} == {"model_version.created"}


def test_a_receiver_gets_only_its_events_and_a_bad_one_is_logged_by_name(
    registry: RegistryService,
    churn_model: Any,
    churn_data: Data,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with webhook_receiver() as good, webhook_receiver([404]) as refusing:
        registry.context.on_event = WebhookDispatcher(
            {
                "aliases": hook(good, events=["model_version_alias.created"]),
                "refusing": hook(refusing, events=["model_version.created"]),
            },
            policy=LOOPBACK,
        )
        with caplog.at_level(logging.WARNING, logger="modelport.webhooks"):
            version = register(registry, churn_model, churn_data)
            registry.set_alias("churn", "champion", version)
            registry.close()
        assert [name for name, _ in events_of(good)] == ["model_version_alias.created"]
        assert len(refusing.requests) == 1  # a 4xx other than 429 is final
    failures = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()]
    assert any("HTTP 404" in message for message in failures)
    assert any("gave up" in message for message in failures)


def test_a_write_does_not_wait_for_a_slow_receiver(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    version = register(registry, churn_model, churn_data)
    answer = threading.Event()
    with webhook_receiver(hold=answer) as receiver:
        registry.context.on_event = WebhookDispatcher(
            {"ci": hook(receiver, timeout=timedelta(hours=1))}, policy=LOOPBACK
        )
        # The receiver answers nothing until told to: were the write waiting for it, this
        # would not return.
        registry.set_alias("churn", "champion", version)
        assert registry.get_version("churn", version).aliases == ("champion",)
        answer.set()
        registry.close()
        assert [name for name, _ in events_of(receiver)] == ["model_version_alias.created"]


def test_close_gives_up_on_a_receiver_that_never_answers_in_time(
    registry: RegistryService, churn_model: Any, churn_data: Data, caplog: pytest.LogCaptureFixture
) -> None:
    version = register(registry, churn_model, churn_data)
    answer = threading.Event()
    with webhook_receiver(hold=answer) as receiver:
        dispatcher = WebhookDispatcher({"slow": hook(receiver)}, policy=LOOPBACK, close_wait_s=0.2)
        registry.context.on_event = dispatcher
        registry.set_alias("churn", "champion", version)
        with caplog.at_level(logging.ERROR, logger="modelport.webhooks"):
            registry.close()
        answer.set()
        assert dispatcher.flush(60) == {}  # the thread still delivers it
    assert any("slow: 1 event(s) still undelivered" in r.getMessage() for r in caplog.records)
    assert len(receiver.requests) == 1


# ---------------------------------------------------------------------------- the CLI


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def config_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    config = tmp_path / "modelport.toml"
    config.write_text(
        f'[webhooks.ci]\nurl = "{receiver.url}?token=hidden"\nsecret_env = "{SECRET_ENV}"\n'
        'events = ["model_version.created", "model_version_alias.created"]\n'
        'backoff = "10ms"\n' + OUTGOING_LOOPBACK
    )
    monkeypatch.setenv("MODELPORT_CONFIG", str(config))


def test_a_cli_command_delivers_its_event_before_it_exits(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    churn_model: Any,
    churn_data: Data,
) -> None:
    import joblib

    frame, _ = churn_data
    joblib.dump(churn_model, tmp_path / "churn.joblib")
    frame.head(20).to_csv(tmp_path / "sample.csv", index=False)
    with webhook_receiver([500]) as receiver:
        config_for(tmp_path, monkeypatch, receiver)
        register = ["model", "register", str(tmp_path / "churn.joblib"), "--name", "churn"]
        code, _, _ = run(capsys, *register, "--sample", str(tmp_path / "sample.csv"))
        assert code == 0
        assert [name for name, _ in events_of(receiver)] == ["model_version.created"] * 2
        code, _, _ = run(capsys, "alias", "set", "churn", "champion", "1")
        assert code == 0
        assert events_of(receiver)[-1][0] == "model_version_alias.created"


def test_webhooks_list_and_test(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook_receiver([503]) as receiver:
        config_for(tmp_path, monkeypatch, receiver)
        code, out, _ = run(capsys, "webhooks", "list", "--json")
        assert code == 0
        (listed,) = json.loads(out)
        assert listed["name"] == "ci" and listed["url"] == receiver.url  # the token hidden
        assert listed["signed"] is True and listed["secret_env"] == SECRET_ENV
        assert listed["events"] == ["model_version.created", "model_version_alias.created"]

        code, out, _ = run(capsys, "webhooks", "test", "ci", "--json")
        assert code == 0
        result = json.loads(out)
        assert result["delivered"] is True
        assert [a["code"] for a in result["attempts"]] == [503, 200]
        document = verified(receiver.requests[-1])
        assert document["event"] == "webhook.test" and document["payload"]["webhook"] == "ci"

        code, _, err = run(capsys, "webhooks", "test", "nope")
        assert code == 1 and "no webhook 'nope'; configured: ci" in err


def test_webhooks_test_exits_1_when_the_receiver_refuses(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook_receiver([400]) as receiver:
        config_for(tmp_path, monkeypatch, receiver)
        code, out, _ = run(capsys, "webhooks", "test", "ci")
    assert code == 1
    assert "attempt 1" in out and "HTTP 400" in out and "ci: not delivered" in out


def test_a_deployment_change_is_delivered(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    version = register(registry, churn_model, churn_data)
    with webhook_receiver() as receiver:
        registry.context.on_event = WebhookDispatcher({"ci": hook(receiver)}, policy=LOOPBACK)
        registry.create_deployment("churn", version, reason="first")
        registry.close()
        ((event, payload),) = events_of(receiver)
    assert event == "deployment.changed"
    assert payload["deployment"] == "churn" and payload["action"] == "deployment.create"
    assert payload["reason"] == "first" and payload["deleted"] is False
