"""OWASP API7:2023 Server Side Request Forgery: modelport calls only the hosts it may.

Every URL modelport calls comes from configuration (webhooks, alert and retrain
webhooks, rollout webhooks, ``monitor.metrics_urls``, http(s) artifact stores). Internal
addresses (loopback, private networks, link-local with the cloud metadata service) and
other schemes are refused when the configuration loads and again after DNS resolution
at each delivery; redirects are never followed. The tests call loopback only, allowing
it explicitly where a delivery must succeed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from modelport.cli.main import main
from modelport.config import RolloutWebhook, Settings, WebhookSettings
from modelport.errors import UnavailableError
from modelport.monitoring.alerts.scrape import DropCounter
from modelport.outgoing import DEFAULT_POLICY, OutgoingPolicy, UrlRefusedError
from modelport.rollout.notify import DecisionNotifier
from modelport.webhooks.dispatcher import deliver
from modelport.webhooks.envelope import Envelope
from modelport.webhooks.sending import pinned_request
from testing_hostile import hostile_server
from testing_webhook import webhook_receiver

LOOPBACK = OutgoingPolicy(allowed_hosts=("127.0.0.1",))
T0 = datetime(2026, 1, 1, tzinfo=UTC)
REFUSED_URLS = [
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
    "http://[fd00:ec2::254]/latest/meta-data/",  # its IPv6 address (a private one)
    "http://metadata.localhost/",
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # loopback written as IPv6
    "http://10.0.0.5/hook",
    "http://192.168.1.1/hook",
    "http://172.16.0.1/hook",
    "http://0.0.0.0/hook",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://example.com/file",
]


def hook_settings(url: str, **outgoing: Any) -> dict[str, Any]:
    return {"webhooks": {"ci": {"url": url}}, "outgoing": outgoing}


def alert_settings(action: dict[str, Any]) -> dict[str, Any]:
    rule = {"model": "churn", "signal": "volume", "comparison": ">", "threshold": 1}
    return {"monitor": {"alerts": {"hot": {**rule, "actions": [action]}}}}


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_internal_addresses_and_other_schemes_are_refused_when_the_config_loads(
    url: str,
) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings.model_validate(hook_settings(url))
    message = str(refused.value)
    assert "webhooks.ci.url" in message or "http:// or https://" in message


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        (alert_settings({"type": "webhook", "url": "http://169.254.169.254/"}),
         "monitor.alerts.hot.actions[0].url"),
        (alert_settings({"type": "retrain", "url": "http://10.1.2.3/retrain"}),
         "monitor.alerts.hot.actions[0].url"),
        ({"monitor": {"metrics_urls": ["http://127.0.0.1:9090/metrics"]}}, "monitor.metrics_urls"),
        ({"rollout": {"webhooks": [{"url": "http://192.168.0.10/"}]}}, "rollout.webhooks[0].url"),
        ({"artifacts_uri": "http://169.254.169.254/artifacts"}, "artifacts_uri"),
    ],
)  # fmt: skip
def test_every_outgoing_url_in_the_config_is_checked(settings: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError, match=r"does not call it unless allowed") as refused:
        Settings.model_validate(settings)
    assert where in str(refused.value)


def test_the_refusal_names_the_address_kind_and_the_fix() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings.model_validate(hook_settings("http://169.254.169.254/"))
    message = str(refused.value)
    assert "link-local" in message and "metadata" in message
    assert "list 169.254.169.254 in [outgoing] allowed_hosts" in message
    with pytest.raises(ValidationError) as refused:
        Settings.model_validate(hook_settings("http://10.0.0.5/"))
    message = str(refused.value)
    assert "private network" in message
    assert "allowed_hosts" in message and "allow_private_networks = true" in message


def test_loopback_and_private_networks_are_allowed_only_when_the_config_says_so() -> None:
    assert Settings.model_validate(
        hook_settings("http://127.0.0.1:9/hook", allowed_hosts=["127.0.0.1"])
    )
    assert Settings.model_validate(hook_settings("http://10.0.0.5/", allow_private_networks=True))
    assert Settings.model_validate(hook_settings("http://10.0.0.5/", allowed_hosts=["10.0.0.0/8"]))
    # allow_private_networks never opens the metadata service: only listing it does.
    with pytest.raises(ValidationError, match="link-local"):
        Settings.model_validate(
            hook_settings("http://169.254.169.254/", allow_private_networks=True)
        )


def test_a_non_empty_allow_list_refuses_every_other_host() -> None:
    allowed = {"allowed_hosts": ["hooks.example.com", "*.ci.example.com"]}
    assert Settings.model_validate(hook_settings("https://hooks.example.com/x", **allowed))
    assert Settings.model_validate(hook_settings("https://a.ci.example.com/x", **allowed))
    with pytest.raises(ValidationError, match="not in \\[outgoing\\] allowed_hosts"):
        Settings.model_validate(hook_settings("https://evil.example.net/x", **allowed))


def test_bad_allow_list_entries_are_refused_naming_the_accepted_forms() -> None:
    with pytest.raises(ValidationError, match="use a host name"):
        Settings.model_validate({"outgoing": {"allowed_hosts": ["http://x/"]}})


def test_public_hosts_pass_by_default() -> None:
    assert Settings.model_validate(hook_settings("https://hooks.example.com/modelport"))


@pytest.mark.parametrize(
    "addresses",
    [["10.0.0.7"], ["169.254.169.254"], ["93.184.216.34", "127.0.0.1"], ["::1"], ["fe80::1"]],
)
def test_after_dns_resolution_every_address_must_be_allowed(addresses: list[str]) -> None:
    """A public name that resolves to an internal address (a DNS answer the attacker
    controls) is refused at delivery time, even when only one of its addresses is."""
    with pytest.raises(UrlRefusedError):
        DEFAULT_POLICY.resolve("https://hooks.example.com/x", resolver=lambda host, port: addresses)
    public = DEFAULT_POLICY.resolve(
        "https://hooks.example.com/", resolver=lambda h, p: ["93.184.216.34"]
    )
    assert public == "93.184.216.34"


def envelope() -> Envelope:
    return Envelope("model_version.created", {"name": "churn", "version": 1})


def test_a_name_that_resolves_to_loopback_is_refused_at_delivery() -> None:
    """``127.1`` passes the check at load (it is not written as an address) but the
    system resolver turns it into 127.0.0.1: nothing is sent."""
    with webhook_receiver() as receiver:
        url = receiver.url.replace("127.0.0.1", "127.1")
        hook = WebhookSettings(url=url, retries=2)
        attempts = deliver("ci", hook, envelope(), policy=DEFAULT_POLICY)
    assert receiver.requests == []
    assert len(attempts) == 1  # a refusal is final: no retries
    assert attempts[0].error is not None and "loopback" in attempts[0].error


def test_an_allowed_receiver_gets_the_delivery() -> None:
    with webhook_receiver() as receiver:
        attempts = deliver("ci", WebhookSettings(url=receiver.url), envelope(), policy=LOOPBACK)
    assert [a.ok for a in attempts] == [True]
    assert len(receiver.requests) == 1


def test_redirects_are_never_followed() -> None:
    """An allowed receiver answering 302 towards another address gets one failed
    attempt; the address it points to is never called."""
    with webhook_receiver() as target:
        redirect = (
            f"HTTP/1.1 302 Found\r\nLocation: {target.url}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        with hostile_server([(redirect, 0)]) as hostile:
            hook = WebhookSettings(url=hostile.url, retries=2, backoff=timedelta(0))
            attempts = deliver("ci", hook, envelope(), policy=LOOPBACK)
        assert target.requests == []
    assert [a.code for a in attempts] == [302]  # a 3xx is final, not retried
    assert not attempts[0].ok


def test_rollout_decisions_are_checked_at_delivery_too() -> None:
    with webhook_receiver() as receiver:
        url = receiver.url.replace("127.0.0.1", "127.1")
        notifier = DecisionNotifier([RolloutWebhook(url=url, retries=0)], sleep=lambda _: None)
        notifier.send(1, {"decision": "advance"})
        notifier.close(10)
    assert receiver.requests == [] and notifier.failed == 1


def test_metrics_scrapes_are_checked_at_delivery_too() -> None:
    counter = DropCounter(["http://127.1:9/metrics"], DEFAULT_POLICY)
    with pytest.raises(UnavailableError, match="loopback"):
        counter.increase("k", "churn", since=T0, until=T0)


def test_a_pinned_request_goes_to_the_checked_address_with_the_original_host() -> None:
    """The connection is made to the address that was checked, so a second, different
    DNS answer (DNS rebinding) is never used; the host name still travels in ``Host``."""
    policy = OutgoingPolicy(allowed_hosts=("localhost",))
    with httpx.Client() as client:
        request = pinned_request(client, "POST", "http://localhost:8/hook", policy)
    assert request.url.host in ("127.0.0.1", "::1")
    assert request.headers["host"] == "localhost:8"


def test_the_cli_refuses_to_start_on_a_refused_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "modelport.toml"
    config.write_text('[webhooks.ci]\nurl = "http://169.254.169.254/latest/meta-data/"\n')
    monkeypatch.setenv("MODELPORT_CONFIG", str(config))
    with pytest.raises(SystemExit) as exited:
        main(["webhooks", "list"])
    assert exited.value.code == 1
    error = capsys.readouterr().err
    assert "webhooks.ci.url" in error and "link-local" in error
    assert "list 169.254.169.254 in [outgoing] allowed_hosts" in error
