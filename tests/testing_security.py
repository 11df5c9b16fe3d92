"""API keys for the security tests: a registry with two models and one key per kind of
holder, and an in-process server that checks them (see tests/security/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry, build_server_app
from modelport.config import SecuritySettings, Settings
from modelport.package.options import PackageOptions
from modelport.security.key_admin import KeyAdmin
from modelport.serving.sources import parse_source
from testing_models import EchoModel

MODELS = ("alpha", "beta")
ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
# key name -> scopes; "expired" and "revoked" hold admin and still get nothing.
KEYS: dict[str, tuple[str, ...]] = {
    "admin": ("admin",),
    "predict-alpha": ("predict:alpha",),
    "read-alpha": ("read:alpha",),
    "feedback-alpha": ("feedback:alpha",),
    "deploy-alpha": ("deploy:alpha",),
    "predict-any": ("predict",),
    "metrics": ("metrics",),
}


@dataclass(frozen=True)
class KeyedCatalog:
    """Settings whose server checks keys, and each key's token by name."""

    settings: Settings
    tokens: dict[str, str]


def build_keyed_catalog(home: Path) -> KeyedCatalog:
    """Register ``alpha`` and ``beta`` (production), make the keys of ``KEYS`` plus an
    expired and a revoked admin key."""
    settings = Settings(home=home, user="tester", security=SecuritySettings(auth="on"))
    tokens: dict[str, str] = {}
    with build_registry(settings) as registry:
        sample = np.zeros((3, 3))
        for name in MODELS:
            version = registry.register(EchoModel(), name, PackageOptions(sample_input=sample))
            registry.promote(name, version.version, "production")
        admin = KeyAdmin(registry.metadata)
        for name, scopes in KEYS.items():
            tokens[name] = admin.create(name, scopes, actor="tester")[1]
        past = KeyAdmin(registry.metadata, clock=lambda: datetime.now(UTC) - timedelta(days=2))
        tokens["expired"] = past.create(
            "expired", ["admin"], actor="tester", expires_in=timedelta(days=1)
        )[1]
        tokens["revoked"] = admin.create("revoked", ["admin"], actor="tester")[1]
        admin.revoke("revoked", actor="tester")
    return KeyedCatalog(settings, tokens)


@contextmanager
def keyed_server(settings: Settings, models: tuple[str, ...] = MODELS) -> Iterator[TestClient]:
    """An in-process server of ``models`` (production) checking keys."""
    app = build_server_app(
        settings,
        [parse_source(f"{name}@production") for name in models],
        worker_index=0,
        workers=1,
        on_ready=lambda: None,
        on_failed=lambda message: None,
    )
    with TestClient(app.asgi, raise_server_exceptions=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    """The header that carries ``token``."""
    return {"Authorization": f"Bearer {token}"}


def request(client: TestClient, method: str, path: str, token: str | None, **kwargs: Any) -> Any:
    """``method path`` with ``token`` (None: no Authorization header)."""
    headers = bearer(token) if token is not None else {}
    return client.request(method, path, headers=headers, **kwargs)
