"""Per-model rate limits on a server without keys: what V2 and MLflow clients get back
(429, Retry-After, a message naming the limit), what /metrics counts, and that other
models and the probes are not held."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_server_app
from modelport.config import RateLimitSettings, SecuritySettings
from modelport.serving.sources import parse_source
from testing_redis import reachable_redis_url, redis_keys, redis_prefix
from testing_server import Catalog

ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


@contextmanager
def limited(
    catalog: Catalog, served: list[str], url: str | None = None, **limits: Any
) -> Iterator[TestClient]:
    security = SecuritySettings(auth="off", rate_limits=RateLimitSettings(**limits))
    update = {"security": security, "rate_limit_url": url}
    settings = catalog.settings.model_copy(update=update)
    app = build_server_app(
        settings,
        [parse_source(m) for m in served],
        worker_index=0,
        workers=1,
        on_ready=lambda: None,
        on_failed=lambda message: None,
    )
    with TestClient(app.asgi) as client:
        yield client


def test_a_model_limit_answers_429_with_retry_after_naming_the_limit(catalog: Catalog) -> None:
    limits = {"models": {"echo": {"rate": "1/m", "burst": 3}}}
    with limited(catalog, ["echo@production", "regressor@production"], **limits) as client:
        answers = [client.post("/v2/models/echo/infer", json=ROW) for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        refused = answers[3]
        assert 55 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["error"].startswith("rate limit of model 'echo' (1/m) exceeded")
        # The same bucket, whichever protocol or path names the model.
        mlflow = client.post("/models/echo/invocations", json={"inputs": [[1.0, 2.0, 3.0]]})
        assert mlflow.status_code == 429
        assert mlflow.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert "rate limit of model 'echo'" in mlflow.json()["message"]
        versioned = client.post("/v2/models/echo/versions/1/infer", json=ROW)
        assert versioned.status_code == 429
        # Another model and the probes are not held by it.
        regressor = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64",
                                 "data": [1, 2, 3]}]}  # fmt: skip
        assert client.post("/v2/models/regressor/infer", json=regressor).status_code == 200
        assert client.get("/v2/health/ready").status_code == 200
        metrics = client.get("/metrics").text
        info = client.get("/api").json()
    assert info["rate_limits"].startswith("counted in each server process (approximate")
    assert 'modelport_rate_limited_total{limit="model",model="echo"} 4.0' in metrics


def test_names_not_served_are_counted_as_unknown(catalog: Catalog) -> None:
    limits = {"models": {"ghost": {"rate": "1/h", "burst": 1}}}
    with limited(catalog, ["echo@production"], **limits) as client:
        client.post("/v2/models/ghost/infer", json=ROW)
        assert client.post("/v2/models/ghost/infer", json=ROW).status_code == 429
        metrics = client.get("/metrics").text
    assert 'modelport_rate_limited_total{limit="model",model="_unknown"} 1.0' in metrics
    assert 'model="ghost"' not in metrics


@pytest.mark.redis
def test_servers_given_one_redis_share_one_count(catalog: Catalog) -> None:
    url = reachable_redis_url()
    with redis_prefix(url) as prefix:
        limits = {"models": {"echo": {"rate": "1/h", "burst": 4}}, "redis_prefix": prefix}
        with (
            limited(catalog, ["echo@production"], url, **limits) as first,
            limited(catalog, ["echo@production"], url, **limits) as second,
        ):
            codes = [
                client.post("/v2/models/echo/infer", json=ROW).status_code
                for client in (first, second) * 4
            ]
            assert f"name={prefix}limiter " in client_list(url)  # named for operators
            assert "counted in Redis" in first.get("/api").json()["rate_limits"]
        assert codes == [200] * 4 + [429] * 4
        assert redis_keys(url, prefix).keys() == {f"{prefix}m:echo"}
        # The servers closed their connections to Redis when they stopped.
        assert f"name={prefix}limiter " not in client_list(url)


def client_list(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return " ".join(f"name={entry['name']} " for entry in client.client_list())
    finally:
        client.close()


def test_a_server_without_limits_says_so(catalog: Catalog) -> None:
    with limited(catalog, ["echo@production"]) as client:
        assert client.get("/api").json()["rate_limits"] is None
        assert all(client.post("/v2/models/echo/infer", json=ROW).status_code == 200
                   for _ in range(5))  # fmt: skip
