"""The pure rules behind API keys: when a server requires them, the failure throttle's
window, the key format, and which scopes allow what."""

from __future__ import annotations

import pytest

from modelport.config import SecuritySettings
from modelport.errors import PermissionDeniedError, RateLimitedError
from modelport.security.failures import FailureThrottle
from modelport.security.keys import issue_key, secret_matches, split_token
from modelport.security.principal import Principal
from modelport.server.http.access import Access, require


@pytest.mark.parametrize(
    ("settings", "host", "required"),
    [
        (SecuritySettings(), "127.0.0.1", False),
        (SecuritySettings(), "localhost", False),
        (SecuritySettings(), "::1", False),
        (SecuritySettings(), "0.0.0.0", True),
        (SecuritySettings(), "", True),
        (SecuritySettings(), "models.internal", True),
        (SecuritySettings(auth="on"), "127.0.0.1", True),
        (SecuritySettings(auth="off"), "0.0.0.0", False),
        (SecuritySettings(insecure_no_auth=True), "0.0.0.0", False),
        (SecuritySettings(auth="on", insecure_no_auth=True), "127.0.0.1", False),
    ],
)
def test_keys_are_required_off_loopback_unless_turned_off(
    settings: SecuritySettings, host: str, required: bool
) -> None:
    assert settings.auth_required(host) is required


def test_the_throttle_refuses_an_address_for_the_rest_of_its_window() -> None:
    now = [0.0]
    throttle = FailureThrottle(limit=3, window_s=60, max_addresses=2, clock=lambda: now[0])
    for _ in range(3):
        throttle.check("10.0.0.1")
        throttle.failed("10.0.0.1")
    now[0] = 10.5
    with pytest.raises(RateLimitedError) as refused:
        throttle.check("10.0.0.1")
    assert (refused.value.retry_after, refused.value.limit) == (50, "auth")
    throttle.check("10.0.0.2")  # other addresses are not affected
    now[0] = 60.0
    throttle.check("10.0.0.1")  # a new window
    throttle.failed("10.0.0.1")
    throttle.check("10.0.0.1")


def test_the_throttle_forgets_the_oldest_address_beyond_its_size() -> None:
    throttle = FailureThrottle(limit=1, window_s=60, max_addresses=2, clock=lambda: 0.0)
    for address in ("a", "b", "c"):
        throttle.failed(address)
    throttle.check("a")  # dropped to make room for "c"
    with pytest.raises(RateLimitedError):
        throttle.check("c")


def test_a_key_is_its_id_and_a_secret_and_only_its_secret_matches() -> None:
    issued = issue_key()
    parts = split_token(issued.token)
    assert parts is not None and parts[0] == issued.key_id and len(parts[1]) == 43
    assert secret_matches(*parts, issued.secret_hash)
    other = split_token(issue_key().token)
    assert other is not None and not secret_matches(issued.key_id, other[1], issued.secret_hash)
    for bad in ("", "mp_", issued.token + "x", issued.token.replace("mp_", "sk_"), "mp_a_b"):
        assert split_token(bad) is None


CHURN_ONLY = Principal("id", "ci", frozenset({"predict:churn", "read"}))


@pytest.mark.parametrize(
    ("access", "method", "model", "allowed"),
    [
        (Access(("predict",), "name"), "POST", "churn", True),
        (Access(("predict",), "name"), "POST", "fraud", False),
        (Access(("read", "predict"), "name"), "GET", "fraud", True),  # unscoped read
        (Access(("predict",)), "POST", None, True),  # some model: churn
        (Access(("deploy",)), "POST", None, False),
        (Access(("read",), "name", unscoped=True), "GET", None, True),
        (Access(("predict",), unscoped=True), "GET", None, False),  # churn only, not all
        (Access(("read",), "name", writes=("deploy",)), "GET", "churn", True),
        (Access(("read",), "name", writes=("deploy",)), "PUT", "churn", False),
        (Access(), "GET", None, True),  # any valid key
    ],
)
def test_scopes_allow_their_action_on_their_model(
    access: Access, method: str, model: str | None, allowed: bool
) -> None:
    if allowed:
        require(CHURN_ONLY, access, method, model)
    else:
        with pytest.raises(PermissionDeniedError, match="lacks the scope"):
            require(CHURN_ONLY, access, method, model)
    require(Principal("id", "root", frozenset({"admin"})), access, method, model)
