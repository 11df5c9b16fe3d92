"""OWASP API2 (2023), broken authentication: missing, malformed, unknown, wrong-secret,
revoked and expired keys all get the same 401 with ``WWW-Authenticate``; revocation
reaches a running server within ``keys_refresh_s``; repeated failures from one address
get 429; secrets are compared in constant time; a server that must check keys and has
none refuses to start."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry
from modelport.config import SecuritySettings, ServeSettings, Settings
from modelport.errors import InvalidArgumentError
from modelport.metadata.memory import MemoryMetadataStore
from modelport.security import keys as key_format
from modelport.security.key_admin import KeyAdmin
from modelport.security.server_auth import server_auth
from testing_security import ROW, KeyedCatalog, keyed_server, request

INFER = "/v2/models/alpha/infer"


def _bad_headers(keyed: KeyedCatalog) -> dict[str, dict[str, str]]:
    admin = keyed.tokens["admin"]
    key_id = admin.split("_")[1]
    other_secret = key_format.issue_key().token.split("_", 2)[2]
    unknown = key_format.issue_key().token
    return {
        "missing": {},
        "empty bearer": {"Authorization": "Bearer "},
        "basic scheme": {"Authorization": f"Basic {admin}"},
        "no scheme": {"Authorization": admin},
        "malformed": {"Authorization": "Bearer mp_short_secret"},
        "truncated": {"Authorization": f"Bearer {admin[:-1]}"},
        "unknown id": {"Authorization": f"Bearer {unknown}"},
        "wrong secret": {"Authorization": f"Bearer mp_{key_id}_{other_secret}"},
        "revoked": {"Authorization": f"Bearer {keyed.tokens['revoked']}"},
        "expired": {"Authorization": f"Bearer {keyed.tokens['expired']}"},
    }


def test_every_unusable_key_gets_the_same_401(keyed: KeyedCatalog) -> None:
    with keyed_server(keyed.settings) as client:
        bodies = set()
        bad = _bad_headers(keyed)
        attempts = [("POST", INFER, what) for what in bad]  # 14 failures: under the throttle
        attempts += [(m, p, w) for m, p in (("GET", "/api/keys"), ("GET", "/metrics"))
                     for w in ("missing", "wrong secret")]  # fmt: skip
        for method, path, what in attempts:
            response = client.request(method, path, headers=bad[what], json=ROW)
            assert response.status_code == 401, (what, path, response.text)
            assert response.headers["www-authenticate"] == 'Bearer realm="modelport"'
            bodies.add(response.text)
        # One message for every reason: nothing tells which key ids exist.
        assert len(bodies) == 1
        good = request(client, "POST", INFER, keyed.tokens["admin"], json=ROW)
        assert good.status_code == 200, good.text


def test_probes_stay_open_and_mlflow_routes_answer_401_in_their_dialect(
    keyed: KeyedCatalog,
) -> None:
    with keyed_server(keyed.settings) as client:
        for path in ("/v2/health/live", "/v2/health/ready", "/ping", "/health"):
            assert client.get(path).status_code == 200, path
        refused = client.post("/invocations?model=alpha", json={"inputs": [[1, 2, 3]]})
        assert refused.status_code == 401
        assert refused.json()["error_code"] == "UNAUTHENTICATED"


def test_revocation_reaches_a_running_server_within_the_refresh(keyed: KeyedCatalog) -> None:
    security = SecuritySettings(auth="on", keys_refresh_s=0.2)
    settings = keyed.settings.model_copy(update={"security": security})
    with build_registry(settings) as registry:
        admin = KeyAdmin(registry.metadata)
        with keyed_server(settings) as client:
            _, token = admin.create("short-lived", ["predict:alpha"], actor="tester")
            assert _status_within(client, token, 200, seconds=3)
            admin.revoke("short-lived", actor="tester")
            assert _status_within(client, token, 401, seconds=3)


def _status_within(client: TestClient, token: str, status: int, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if request(client, "POST", INFER, token, json=ROW).status_code == status:
            return True
        time.sleep(0.05)
    return False


def test_repeated_failures_from_one_address_get_429_even_with_a_good_key(
    keyed: KeyedCatalog,
) -> None:
    with keyed_server(keyed.settings) as client:
        bad = {"Authorization": f"Bearer {key_format.issue_key().token}"}
        statuses = [client.post(INFER, headers=bad, json=ROW).status_code for _ in range(21)]
        assert statuses == [401] * 20 + [429]
        blocked = request(client, "POST", INFER, keyed.tokens["admin"], json=ROW)
        assert blocked.status_code == 429
        assert 0 < int(blocked.headers["retry-after"]) <= 60
        assert "failed authentications" in blocked.json()["error"]
        # The probes are not behind the guard: load balancers keep seeing the server.
        assert client.get("/v2/health/ready").status_code == 200


def test_secrets_are_compared_in_constant_time(
    keyed: KeyedCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[str, str]] = []
    real = key_format.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(key_format.hmac, "compare_digest", spy)
    with keyed_server(keyed.settings) as client:
        request(client, "POST", INFER, keyed.tokens["admin"], json=ROW)
        request(client, "POST", INFER, key_format.issue_key().token, json=ROW)
    # Both the known key and an unknown id went through one constant-time comparison.
    assert len(compared) == 2
    assert all(len(a) == len(b) == 64 for a, b in compared)


def test_a_server_that_needs_keys_and_has_none_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, serve=ServeSettings(host="0.0.0.0"))
    with pytest.raises(InvalidArgumentError) as refused:
        server_auth(settings, MemoryMetadataStore)
    message = str(refused.value)
    assert "modelport key create --name admin --scope admin" in message
    assert "--insecure-no-auth" in message
    insecure = settings.model_copy(update={"security": SecuritySettings(insecure_no_auth=True)})
    auth = server_auth(insecure, MemoryMetadataStore)
    assert (auth.mode, auth.keys) == ("insecure-no-auth", None)
    assert auth.warning is not None and "INSECURE" in auth.warning
    loopback = server_auth(Settings(home=tmp_path), MemoryMetadataStore)
    assert (loopback.mode, loopback.keys) == ("off", None)


def test_get_api_says_how_the_server_authenticates(keyed: KeyedCatalog) -> None:
    with keyed_server(keyed.settings) as client:
        info = request(client, "GET", "/api", keyed.tokens["read-alpha"]).json()
        assert (info["auth"], info["tls"], info["warning"]) == ("api-keys", False, None)
        assert "HMAC-SHA256" in info["keys"]
        assert client.get("/metrics").status_code == 401
    public = SecuritySettings(auth="on", metrics_public=True)
    with keyed_server(keyed.settings.model_copy(update={"security": public})) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/api/models").status_code == 401
    insecure = keyed.settings.model_copy(
        update={
            "serve": ServeSettings(host="0.0.0.0"),
            "security": SecuritySettings(insecure_no_auth=True),
        }
    )
    with keyed_server(insecure) as client:
        info = client.get("/api").json()
        assert info["auth"] == "insecure-no-auth"
        assert "INSECURE" in info["warning"]
        assert client.post(INFER, json=ROW).status_code == 200
