"""OWASP API6:2023 Unrestricted Access to Sensitive Business Flows: a key that may send
labels or predictions cannot do so without end. Feedback cannot be flooded (the labels
past the key's rate are refused, not stored), a key's daily quota trips, and the
server's default per-key rate holds keys that have none of their own."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry
from modelport.config import RateLimitSettings, SecuritySettings
from modelport.monitoring.feedback.store import labels_dir
from modelport.security.key_admin import KeyAdmin
from testing_security import ROW, KeyedCatalog, bearer, build_keyed_catalog, keyed_server


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> KeyedCatalog:
    """A registry of this module's own: the labels it stores are only these tests'."""
    return build_keyed_catalog(tmp_path_factory.mktemp("api6-registry"))


def new_key(catalog: KeyedCatalog, scopes: list[str], **limits: Any) -> str:
    """A key of a name of its own, with its own limits (``rate_limit``, ``daily_quota``)."""
    with build_registry(catalog.settings) as registry:
        name = f"k-{uuid.uuid4().hex[:8]}"
        return KeyAdmin(registry.metadata).create(name, scopes, actor="tester", **limits)[1]


@contextmanager
def limited_server(catalog: KeyedCatalog, **limits: Any) -> Iterator[TestClient]:
    security = SecuritySettings(auth="on", rate_limits=RateLimitSettings(**limits))
    with keyed_server(catalog.settings.model_copy(update={"security": security})) as client:
        yield client


def stored_labels(catalog: KeyedCatalog, model: str) -> int:
    directory = Path(labels_dir(catalog.settings.resolved_prediction_log_uri, model))
    if not directory.exists():
        return 0
    return ds.dataset(directory, format="parquet").count_rows()


def test_feedback_cannot_be_flooded(catalog: KeyedCatalog) -> None:
    token = new_key(catalog, ["feedback:alpha"], rate_limit="5/h")
    with limited_server(catalog) as client:
        answers = [
            client.post(
                "/api/feedback",
                json={"model": "alpha", "prediction_id": f"flood-{i}-0", "label": 1},
                headers=bearer(token),
            )
            for i in range(30)
        ]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 25
    assert sum(a.json()["accepted"] for a in answers[:5]) == 5
    refused = answers[5]
    assert int(refused.headers["retry-after"]) > 600
    assert "rate limit of key" in refused.json()["error"] and "(5/h)" in refused.json()["error"]
    # What was refused was not stored.
    assert stored_labels(catalog, "alpha") == 5


def test_a_keys_daily_quota_trips_and_other_keys_go_on(catalog: KeyedCatalog) -> None:
    spender = new_key(catalog, ["predict:alpha"], daily_quota=3)
    other = new_key(catalog, ["predict:alpha"])
    with limited_server(catalog) as client:
        codes = [
            client.post("/v2/models/alpha/infer", json=ROW, headers=bearer(spender)).status_code
            for _ in range(4)
        ]
        refused = client.post("/v2/models/alpha/infer", json=ROW, headers=bearer(spender))
        assert (
            client.post("/v2/models/alpha/infer", json=ROW, headers=bearer(other)).status_code
            == 200
        )
    assert codes == [200, 200, 200, 429]
    assert refused.status_code == 429
    to_midnight = 86400 - time.time() % 86400
    assert abs(int(refused.headers["retry-after"]) - to_midnight) < 10
    assert "daily quota of key" in refused.json()["error"]
    assert "(3 requests per UTC day) spent" in refused.json()["error"]


def test_the_default_rate_holds_keys_without_their_own(catalog: KeyedCatalog) -> None:
    plain = new_key(catalog, ["predict:alpha"])
    own = new_key(catalog, ["predict:alpha"], rate_limit="100/s")
    with limited_server(catalog, per_key="2/h") as client:
        plain_codes = [
            client.post("/v2/models/alpha/infer", json=ROW, headers=bearer(plain)).status_code
            for _ in range(3)
        ]
        own_codes = [
            client.post("/v2/models/alpha/infer", json=ROW, headers=bearer(own)).status_code
            for _ in range(3)
        ]
    assert plain_codes == [200, 200, 429]
    assert own_codes == [200, 200, 200]


def test_a_request_refused_403_spends_none_of_the_keys_rate(catalog: KeyedCatalog) -> None:
    # A key without the scope gets 403 and spends nothing of its rate.
    token = new_key(catalog, ["predict:alpha"], rate_limit="2/h")
    with limited_server(catalog) as client:
        denied = [
            client.post("/v2/models/beta/infer", json=ROW, headers=bearer(token)).status_code
            for _ in range(5)
        ]
        allowed = [
            client.post("/v2/models/alpha/infer", json=ROW, headers=bearer(token)).status_code
            for _ in range(3)
        ]
    assert denied == [403] * 5
    assert allowed == [200, 200, 429]
