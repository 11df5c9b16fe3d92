"""The warning ``modelport serve`` prints when other machines would reach it over plain
HTTP, and the proxy settings it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.cli.serve import build_settings, plain_http_warning, proxy_hint
from modelport.config import ServeSettings, TlsSettings
from modelport.errors import InvalidArgumentError


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.1.2.3", "serving.internal"])
def test_plain_http_off_loopback_is_warned_about_naming_both_fixes(host: str) -> None:
    warning = plain_http_warning(ServeSettings(host=host))
    assert warning is not None
    assert warning.startswith("warning: serving plain HTTP on ")
    assert "--tls-cert FILE --tls-key FILE" in warning
    assert "--behind-proxy" in warning
    assert "\n" not in warning


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_is_not_warned_about(host: str) -> None:
    assert plain_http_warning(ServeSettings(host=host)) is None


def test_tls_or_a_proxy_silences_it() -> None:
    tls = TlsSettings(cert=Path("server.pem"))
    assert plain_http_warning(ServeSettings(host="0.0.0.0", tls=tls)) is None
    assert plain_http_warning(ServeSettings(host="0.0.0.0", behind_proxy=True)) is None


def test_forwarded_allow_ips_are_comma_separated_addresses_or_networks() -> None:
    settings = build_settings(None, behind_proxy=True, forwarded_allow_ips="10.0.0.5, 10.1.0.0/16")
    assert settings.serve.behind_proxy
    assert settings.serve.forwarded_allow_ips == ["10.0.0.5/32", "10.1.0.0/16"]
    assert ServeSettings().forwarded_allow_ips == ["127.0.0.1/32", "::1/128"]


def test_a_bad_proxy_address_names_the_option() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        build_settings(None, forwarded_allow_ips="10.0.0.5,proxy.internal")
    assert "--forwarded-allow-ips" in caught.value.message
    assert "'proxy.internal' is not an IP address or network" in caught.value.message


def test_the_command_prints_the_warning_before_it_binds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from modelport.cli.main import main

    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the bind fails before any
    # worker starts or the registry is read, and nothing listens. (Without keys, a
    # non-loopback server refuses to start before the bind: --insecure-no-auth gets there.)
    with pytest.raises(SystemExit) as info:
        main(["serve", "--host", "192.0.2.1", "--port", "0", "--insecure-no-auth", "churn@prod"])
    err = capsys.readouterr().err.splitlines()
    assert info.value.code == 1
    assert err[0].startswith("warning: serving plain HTTP on 192.0.2.1, which other machines")
    assert err[-1].startswith("error: cannot listen on 192.0.2.1:0")


def test_a_reachable_proxy_setup_trusting_only_loopback_gets_a_hint() -> None:
    hint = proxy_hint(ServeSettings(host="0.0.0.0", behind_proxy=True))
    assert hint is not None
    assert "only from 127.0.0.1/32, ::1/128" in hint
    assert "--forwarded-allow-ips" in hint
    named = ServeSettings(host="0.0.0.0", behind_proxy=True, forwarded_allow_ips=["10.0.0.0/8"])
    assert proxy_hint(named) is None
    assert proxy_hint(ServeSettings(behind_proxy=True)) is None  # a proxy on this machine
    assert proxy_hint(ServeSettings(host="0.0.0.0")) is None
