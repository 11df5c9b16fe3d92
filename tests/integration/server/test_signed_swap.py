"""A server that takes signed versions only for production: it starts only on a version
whose signature holds, and a swap to an unsigned, tampered or wrongly signed version is
refused while the old version keeps serving."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app, resolve_sources
from modelport.config import Settings
from modelport.errors import SignatureVerificationError
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService
from modelport.security.signing_keys import generate_key_pair
from modelport.server.http.app import ServerApp
from modelport.serving.sources import parse_source
from testing_models import EchoModel

pytest.importorskip("model_signing")

X = np.zeros((4, 3))
Spoil = Callable[[RegistryService, Path, int], str]
BODY = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir()
    generate_key_pair(folder / "trusted")
    generate_key_pair(folder / "other")
    return folder


@pytest.fixture
def settings(tmp_path: Path, keys: Path) -> Settings:
    """The server's settings: production takes versions signed by trusted.pub only."""
    signing = {"trusted_keys": [str(keys / "trusted.pub")], "require_signed": ["production"]}
    return Settings(
        home=tmp_path / "home",
        serve={"poll_interval_s": 0.1},
        gates={"targets": []},
        signing=signing,
    )


def lax(settings: Settings) -> Settings:
    """The same registry without the policy: the server's own check is under test, so
    bad versions reach production past the registry's."""
    return settings.model_copy(update={"signing": type(settings.signing)()})


def register(registry: RegistryService, offset: int) -> int:
    options = PackageOptions(sample_input=X, flavor_options={"config": {"offset": offset}})
    return registry.register(EchoModel(), "echo", options).version


def server(settings: Settings) -> ServerApp:
    sources = resolve_sources(settings, [parse_source("echo@production")])
    return build_server_app(
        settings, sources, worker_index=0, workers=1,
        on_ready=lambda: None, on_failed=lambda message: None,
    )  # fmt: skip


@pytest.fixture
def client(settings: Settings, keys: Path) -> Iterator[TestClient]:
    with build_registry(settings) as registry:
        register(registry, offset=0)
        registry.sign_version("echo/1", keys / "trusted.pem")
        registry.promote("echo", 1, "production")
    with TestClient(server(settings).asgi) as test_client:
        yield test_client


def answer(client: TestClient) -> tuple[str, float]:
    response = client.post("/v2/models/echo/infer", json=BODY)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["model_version"], body["outputs"][0]["data"][0]


def refusal(client: TestClient, version: int, seconds: float = 10) -> str:
    """Why the server did not swap to ``version`` (waits until it says so)."""
    deadline = time.monotonic() + seconds
    while True:
        route = client.get("/api/models/echo").json()
        stale = route.get("stale") or {}
        if stale.get("version") == version and stale.get("reason") == "load_failed":
            return str(stale["detail"])
        assert time.monotonic() < deadline, f"version {version} was never refused: {route}"
        time.sleep(0.05)


def flip_a_byte(registry: RegistryService, keys: Path, number: int) -> str:
    registry.sign_version(f"echo/{number}", keys / "trusted.pem")
    directory = registry.artifacts.local_path(registry.get_version("echo", number).artifact_key)
    target = directory / "model" / "code" / "testing_models.py"
    target.write_bytes(target.read_bytes().replace(b"import", b"imporT", 1))
    return "'model/code/testing_models.py' differs from the signed file"


def sign_with_another_key(registry: RegistryService, keys: Path, number: int) -> str:
    registry.sign_version(f"echo/{number}", keys / "other.pem")
    return "was not made by a trusted key"


def leave_unsigned(registry: RegistryService, keys: Path, number: int) -> str:
    return "is not signed (no model.sig)"


@pytest.mark.parametrize("spoil", [leave_unsigned, flip_a_byte, sign_with_another_key])
def test_a_swap_to_a_version_whose_signature_fails_keeps_the_old_one_serving(
    client: TestClient,
    settings: Settings,
    keys: Path,
    spoil: Callable[[RegistryService, Path, int], str],
) -> None:
    assert answer(client) == ("1", 6.0)
    with build_registry(lax(settings)) as registry:
        number = register(registry, offset=100)
        expected = spoil(registry, keys, number)
        registry.promote("echo", number, "production")
    detail = refusal(client, number)
    assert expected in detail
    assert answer(client) == ("1", 6.0)
    assert client.get("/v2/health/ready").status_code == 200
    # A version signed by the trusted key is taken as usual.
    with build_registry(settings) as registry:
        good = register(registry, offset=7)
        registry.sign_version(f"echo/{good}", keys / "trusted.pem")
        registry.promote("echo", good, "production")
    deadline = time.monotonic() + 10
    while answer(client)[0] != str(good):
        assert time.monotonic() < deadline, "the signed version was never served"
        time.sleep(0.05)
    assert answer(client) == (str(good), 13.0)


def test_a_server_does_not_start_on_an_unsigned_production_version(
    settings: Settings, keys: Path
) -> None:
    with build_registry(lax(settings)) as registry:
        register(registry, offset=0)
        registry.promote("echo", 1, "production")
    app = server(settings)
    with pytest.raises(SignatureVerificationError) as info, TestClient(app.asgi):
        pass
    assert info.value.reason == "unsigned" and info.value.field == "model.sig"


def test_a_version_signed_again_since_the_start_is_verified_with_its_new_signature(
    client: TestClient, settings: Settings, keys: Path
) -> None:
    # Version 1's signature was pinned at start-up; signing it again replaces (and
    # deletes) that file. Moving back to version 1 verifies the current signature.
    with build_registry(settings) as registry:
        good = register(registry, offset=7)
        registry.sign_version(f"echo/{good}", keys / "trusted.pem")
        registry.promote("echo", good, "production")
    wait_for(client, str(good))
    with build_registry(settings) as registry:
        registry.sign_version("echo/1", keys / "trusted.pem")
        registry.promote("echo", 1, "production")
    wait_for(client, "1")
    assert answer(client) == ("1", 6.0)


def wait_for(client: TestClient, version: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while answer(client)[0] != version:
        assert time.monotonic() < deadline, f"version {version} was never served"
        time.sleep(0.05)


def test_the_rest_api_refuses_to_promote_an_unsigned_candidate(
    client: TestClient, settings: Settings
) -> None:
    with build_registry(lax(settings)) as registry:
        unsigned = register(registry, offset=3)
        registry.create_deployment("echo-live", 1, model="echo")
        registry.deploy_canary("echo-live", unsigned, 10, model="echo")
    refused = client.post("/api/deployments/echo-live/promote", json={"skip_gates": "urgent"})
    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "SIGNATURE_VERIFICATION_FAILED"
    assert f"echo/{unsigned} is not signed" in body["error"]
