"""The hint ``modelport serve`` prints for a server other machines reach, with no drain
delay."""

from __future__ import annotations

import pytest

from modelport.cli.serve import drain_delay_hint
from modelport.config import ServeSettings


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.1.2.3", "serving.internal"])
def test_a_reachable_server_without_a_drain_delay_gets_the_hint(host: str) -> None:
    hint = drain_delay_hint(ServeSettings(host=host))
    assert hint is not None
    assert hint.startswith("hint: --drain-delay is 0")
    assert "\n" not in hint


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_a_loopback_server_gets_none(host: str) -> None:
    assert drain_delay_hint(ServeSettings(host=host)) is None


def test_a_drain_delay_silences_it() -> None:
    assert drain_delay_hint(ServeSettings(host="0.0.0.0", drain_delay_s=5)) is None
