"""The real Redis server for tests (127.0.0.1:6379, or ``MODELPORT_TEST_REDIS_URL``).

The server is shared (with other test runs, and other people): each test gets a key
prefix of its own, and the keys under it are deleted afterwards. Never FLUSHDB.
When the server cannot be reached, those tests fail (they do not skip).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

REDIS_URL_VARIABLE = "MODELPORT_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def reachable_redis_url() -> str:
    """URL of the test Redis server; fails the calling test when it is unreachable."""
    import redis

    url = os.environ.get(REDIS_URL_VARIABLE, DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(
            f"Redis is not reachable at {url} ({error}). Start it with `redis-server "
            f"--daemonize yes`, or set {REDIS_URL_VARIABLE} to a reachable server.",
            pytrace=False,
        )
    finally:
        client.close()
    return url


@contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    """A key prefix of one test's own; every key under it is deleted afterwards."""
    import redis

    prefix = f"modelport-test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def redis_keys(url: str, prefix: str) -> dict[str, int]:
    """The keys under ``prefix`` and the milliseconds each has left to live (-1: forever)."""
    import redis

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return {key: int(client.pttl(key)) for key in client.scan_iter(match=prefix + "*")}
    finally:
        client.close()
