"""Rate limits on real ``modelport serve`` processes: two servers (two workers each)
sharing one Redis server hold a client to one exact limit; without Redis each process
counts on its own."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

import modelport
from modelport.package.options import PackageOptions
from testing_models import EchoModel
from testing_process import MODELPORT, ServerProcess, env_for, serving
from testing_redis import reachable_redis_url, redis_prefix

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

# Exact shared counts need every answer to come from Redis: on a loaded test machine a
# round trip can take longer than the default 100 ms, and a worker would count alone.
PATIENT = "redis_timeout_ms = 10000"

ROW = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_prefix(reachable_redis_url()) as chosen:
        yield chosen


def register_echo() -> None:
    with modelport.connect() as registry:
        registry.register(EchoModel(), "echo", PackageOptions(sample_input=np.zeros((4, 3))))


def create_key(home: Path, name: str, *limits: str) -> str:
    """``modelport key create`` (the real command), the key it prints."""
    created = subprocess.run(
        [str(MODELPORT), "key", "create", "--name", name, "--scope", "predict:echo", *limits,
         "--json"],
        env=env_for(home), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    token: str = json.loads(created.stdout)["key"]
    return token


def statuses(servers: list[ServerProcess], requests: int, token: str | None = None) -> list[int]:
    """``requests`` inferences spread over the servers, 8 at a time, on new connections
    (so that they land on every worker)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def one(index: int) -> int:
        url = servers[index % len(servers)].url
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            return client.post("/v2/models/echo/infer", json=ROW).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(requests)))


def assert_counted_in_redis(*servers: ServerProcess) -> None:
    for server in servers:
        log = server.stderr.read_text()
        assert "cannot be reached" not in log, log


@pytest.mark.redis
def test_two_servers_sharing_redis_enforce_one_exact_model_limit(
    isolated_home: Path, tmp_path: Path, prefix: str
) -> None:
    register_echo()
    config = tmp_path / "limits.toml"
    config.write_text(
        f'rate_limit_url = "{reachable_redis_url()}"\n'
        "[security.rate_limits]\n"
        f'redis_prefix = "{prefix}"\n'
        f"{PATIENT}\n"
        "[security.rate_limits.models.echo]\n"
        'rate = "1/h"\n'
        "burst = 12\n"
    )
    args = ["echo/1", "--workers", "2", "--config", str(config)]
    with serving(isolated_home, args) as first, serving(isolated_home, args) as second:
        answered = statuses([first, second], 40)
        assert answered.count(200) == 12
        assert answered.count(429) == 28
        with httpx.Client(base_url=first.url, timeout=30) as client:
            refused = client.post("/v2/models/echo/infer", json=ROW)
            assert refused.status_code == 429
            assert 3000 < int(refused.headers["retry-after"]) <= 3600
            assert "rate limit of model 'echo' (1/h) exceeded" in refused.json()["error"]
            # Other routes, and the health probes, are not held by echo's limit.
            assert client.get("/v2/health/ready").status_code == 200
            metrics = client.get("/metrics").text
    assert_counted_in_redis(first, second)
    # Each server counts its own refusals (28 between the two, plus the one above).
    assert 'modelport_rate_limited_total{limit="model",model="echo"}' in metrics


@pytest.mark.redis
def test_a_keys_rate_and_daily_quota_hold_across_two_servers(
    isolated_home: Path, tmp_path: Path, prefix: str
) -> None:
    register_echo()
    limited = create_key(isolated_home, "ci", "--rate-limit", "8/h")
    quota = create_key(isolated_home, "nightly", "--daily-quota", "6")
    config = tmp_path / "limits.toml"
    config.write_text(
        f'rate_limit_url = "{reachable_redis_url()}"\n'
        "[security]\n"
        'auth = "on"\n'
        "[security.rate_limits]\n"
        f'redis_prefix = "{prefix}"\n'
        f"{PATIENT}\n"
    )
    args = ["echo/1", "--workers", "2", "--config", str(config)]
    with serving(isolated_home, args) as first, serving(isolated_home, args) as second:
        assert statuses([first, second], 4) == [401] * 4  # keys are on
        assert statuses([first, second], 24, limited).count(200) == 8
        assert statuses([first, second], 24, quota).count(200) == 6
        with httpx.Client(base_url=second.url, timeout=30) as client:
            spent = client.post(
                "/v2/models/echo/infer", json=ROW, headers={"Authorization": f"Bearer {quota}"}
            )
    assert_counted_in_redis(first, second)
    assert spent.status_code == 429
    assert "daily quota of key 'nightly' (6 requests per UTC day) spent" in spent.json()["error"]


def test_without_redis_each_process_counts_on_its_own(isolated_home: Path, tmp_path: Path) -> None:
    register_echo()
    config = tmp_path / "limits.toml"
    config.write_text('[security.rate_limits.models.echo]\nrate = "1/h"\nburst = 5\n')
    with (
        serving(isolated_home, ["echo/1", "--config", str(config)]) as first,
        serving(isolated_home, ["echo/1", "--config", str(config)]) as second,
    ):
        answered = statuses([first, second], 20)
    assert answered.count(200) == 10  # 5 per server: approximate, as documented
