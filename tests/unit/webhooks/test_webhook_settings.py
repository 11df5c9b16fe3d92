"""``[webhooks.NAME]`` in the config file, and the document a receiver gets."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from modelport.config import REGISTRY_EVENTS, Settings
from modelport.webhooks.envelope import Envelope
from modelport.webhooks.sending import redacted, signature


def settings_from(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "modelport.toml"
    path.write_text(text)
    return Settings(config=path)


def test_a_webhook_defaults_to_every_event_and_reads_its_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_HOOK_SECRET", "s3cret")
    text = '[webhooks.ci]\nurl = "https://ci.example.com/hook"\nsecret_env = "CI_HOOK_SECRET"\n'
    hook = settings_from(tmp_path, text + 'timeout = "5s"\nretries = 1\n').webhooks["ci"]
    assert hook.events == list(REGISTRY_EVENTS) and hook.wants("deployment.changed")
    assert hook.secret_value() == "s3cret"
    assert hook.timeout == timedelta(seconds=5) and hook.retries == 1
    assert hook.backoff == timedelta(seconds=1)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('secret = "s3cret"', "a literal secret is not accepted in the config file"),
        ('events = ["model.created"]', "registered_model.created"),
        ("events = []", "at least 1 item"),
        ("retries = 11", "less than or equal to 10"),
        ('unknown = "x"', "Extra inputs are not permitted"),
    ],
)
def test_bad_webhook_settings_are_refused_clearly(tmp_path: Path, body: str, message: str) -> None:
    text = f'[webhooks.ci]\nurl = "https://ci.example.com/hook"\n{body}\n'
    with pytest.raises(ValidationError) as info:
        settings_from(tmp_path, text)
    assert message in str(info.value)
    assert "s3cret" not in str(info.value)


def test_a_webhook_needs_an_http_url_and_a_plain_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is not an http:// or https:// URL"):
        settings_from(tmp_path, '[webhooks.ci]\nurl = "ftp://example.com"\n')
    with pytest.raises(ValidationError, match="webhook name 'a b'"):
        settings_from(tmp_path, '[webhooks."a b"]\nurl = "https://example.com"\n')


def test_the_envelope_is_the_signed_bytes() -> None:
    when = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    envelope = Envelope("model_version.created", {"name": "churn", "version": 3}, "abc", when)
    body = envelope.body()
    assert json.loads(body) == {
        "event": "model_version.created",
        "id": "abc",
        "timestamp": "2026-12-06T12:00:00Z",
        "payload": {"name": "churn", "version": 3},
    }
    digest = hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert signature("key", body) == f"sha256={digest}"


def test_logged_urls_hide_credentials_and_queries() -> None:
    assert redacted("https://user:pw@hooks.example.com/x?token=t") == "https://hooks.example.com/x"


DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)


def test_the_documented_config_is_valid(tmp_path: Path) -> None:
    hooks = settings_from(tmp_path, doc_blocks("toml")[0]).webhooks
    assert hooks["ci"].events == ["model_version.created", "model_version_alias.created"]
    assert hooks["audit"].events == list(REGISTRY_EVENTS)


def test_the_documented_body_and_signature_check_match_what_is_sent() -> None:
    documented = json.loads(doc_blocks("json")[0])
    sent = Envelope(documented["event"], documented["payload"]).document()
    assert list(sent) == list(documented)
    namespace: dict[str, Any] = {}
    exec(doc_blocks("python")[0], namespace)  # the receiver's snippet, as documented
    body = Envelope("model_version.created", {"name": "churn"}).body()
    check = namespace["is_from_modelport"]
    assert check(body, signature("key", body), "key")
    assert not check(body, signature("other", body), "key")
    assert not check(body + b" ", signature("key", body), "key")


def test_every_event_is_documented() -> None:
    text = DOCS.read_text()
    assert all(f"| `{event}` |" in text for event in REGISTRY_EVENTS)


def test_webhook_settings_survive_a_json_round_trip(tmp_path: Path) -> None:
    # Server workers receive the settings as JSON, and write to the registry (REST).
    settings = settings_from(tmp_path, doc_blocks("toml")[0])
    again = Settings.model_validate(settings.model_dump(mode="json"))
    assert again.webhooks == settings.webhooks
