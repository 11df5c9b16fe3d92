"""Types shared by the in-process server tests (see tests/integration/server/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.testclient import TestClient

from modelport.config import Settings
from modelport.server.http.app import ServerApp


@dataclass
class Served:
    """What a test gets: the HTTP client, the app, and the native models to compare with."""

    client: TestClient
    app: ServerApp
    models: dict[str, Any]
    data: dict[str, Any]


@dataclass(frozen=True)
class Catalog:
    """The session's registry: its settings, the native models and their data."""

    settings: Settings
    models: dict[str, Any]
    data: dict[str, Any]


ServeFn = Callable[..., Served]
"""``serve(["forest@production"], max_queue=2)``: a running server with those settings."""
