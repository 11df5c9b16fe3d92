"""OWASP API4:2023 Unrestricted Resource Consumption: every request is bounded.

Bodies over ``max_body_bytes`` (before or after decompression: a gzip bomb costs the
server nothing) and more tensor elements than ``max_elements`` (a huge batch, or a shape
whose product overflows) get 413 naming the limit, as Triton answers; JSON nested past any
use, lying shapes and too many inputs get 400; a full model queue gets 503 with
Retry-After at once, and a body that stops arriving 408 (on a real socket). Every
refusal is fast and the server stays live.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib

import httpx
import pytest

from testing_clients import open_connection, status_of, wait_closed
from testing_process import ServerProcess
from testing_server import Served, ServeFn

LIMIT = 64 * 1024
ROW = {"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}


@pytest.fixture
def served(serve_app: ServeFn) -> Served:
    served: Served = serve_app(["echo@production"], max_body_bytes=LIMIT, max_elements=3000)
    return served


def refused(served: Served, response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json().get("error") or response.json().get("message")
    assert all(word in error for word in words), error
    assert served.client.get("/v2/health/live").status_code == 200


def bomb(size: int, wbits: int) -> bytes:
    """``size`` zero bytes compressed (gzip: wbits 31, deflate: 15), built in pieces."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    piece = bytes(1024 * 1024)
    chunks = [compressor.compress(piece) for _ in range(size // len(piece))]
    return b"".join([*chunks, compressor.flush()])


def test_a_body_over_the_limit_gets_413(served: Served) -> None:
    body = b'{"inputs": [' + b" " * LIMIT + b"]}"
    json_type = {"content-type": "application/json"}
    for path in ("/v2/models/echo/infer", "/invocations", "/api/feedback"):
        response = served.client.post(path, content=body, headers=json_type)
        refused(served, response, 413, str(LIMIT))


@pytest.mark.parametrize(("encoding", "wbits"), [("gzip", 31), ("deflate", 15)])
def test_a_compression_bomb_gets_413_without_being_inflated(
    served: Served, encoding: str, wbits: int
) -> None:
    body = bomb(48 * 1024 * 1024, wbits)  # 48 MiB of zeros in about 48 KB
    assert len(body) < LIMIT  # within the limit as sent: only inflating it passes it
    started = time.monotonic()
    response = served.client.post(
        "/v2/models/echo/infer", content=body, headers={"content-encoding": encoding}
    )
    refused(served, response, 413, "decompressed", str(LIMIT))
    assert time.monotonic() - started < 2  # stopped at the limit, not after inflating it all


def test_json_nested_past_any_use_gets_400(served: Served) -> None:
    deep = b"[" * 20_000 + b"]" * 20_000
    for path in ("/v2/models/echo/infer", "/invocations"):
        response = served.client.post(
            path, content=deep, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
    assert served.client.get("/v2/health/live").status_code == 200


@pytest.mark.parametrize("shape", [[2**62, 2**62], [2**31, 2**31, 4], [2**64 - 1, 2]])
def test_shapes_whose_product_overflows_get_413_naming_the_limit(
    served: Served, shape: list[int]
) -> None:
    body = {"inputs": [{**ROW, "shape": shape}]}
    response = served.client.post("/v2/models/echo/infer", json=body)
    refused(served, response, 413, "max_elements")


@pytest.mark.parametrize("shape", [[-1, 3], [10**30, 3], [1] * 1000, [2, 3], []])
def test_shapes_that_lie_get_400(served: Served, shape: list[int]) -> None:
    body = {"inputs": [{**ROW, "shape": shape}]}
    response = served.client.post("/v2/models/echo/infer", json=body)
    assert response.status_code == 400, response.text
    assert served.client.get("/v2/health/live").status_code == 200


def test_a_batch_over_max_elements_gets_413_naming_the_limit(served: Served) -> None:
    rows = 1001  # 3003 elements > 3000
    big = {"inputs": [{**ROW, "shape": [rows, 3], "data": [1.0] * (rows * 3)}]}
    refused(served, served.client.post("/v2/models/echo/infer", json=big), 413, "max_elements")
    claimed = {"inputs": [{**ROW, "shape": [10**6, 3], "data": [1.0, 2.0, 3.0]}]}
    refused(served, served.client.post("/v2/models/echo/infer", json=claimed), 413)
    mlflow = {"inputs": [[1.0, 2.0, 3.0]] * rows}
    response = served.client.post("/invocations", json=mlflow)
    assert response.status_code in (400, 413), response.text
    assert "the limit is 3000" in response.json()["message"]


def test_many_inputs_in_one_request_get_400(served: Served) -> None:
    many = {"inputs": [{**ROW, "name": f"i{i}"} for i in range(300)]}  # max_inputs: 256
    response = served.client.post("/v2/models/echo/infer", content=json.dumps(many).encode())
    assert response.status_code == 400
    assert served.client.get("/v2/health/live").status_code == 200


def test_a_full_queue_refuses_at_once_with_503_and_retry_after(serve_app: ServeFn) -> None:
    served = serve_app(["slow@production"], batching={"max_batch_size": 1, "max_queue": 1})

    async def burst() -> list[tuple[int, float]]:
        transport = httpx.ASGITransport(app=served.app.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def one() -> tuple[int, float]:
                started = time.monotonic()
                response = await client.post("/v2/models/slow/infer", json={"inputs": [ROW]})
                assert response.status_code != 503 or response.headers["retry-after"] == "1"
                return response.status_code, time.monotonic() - started

            first = asyncio.create_task(one())
            await asyncio.sleep(0.1)  # the first request is in the model now
            return [await first, *await asyncio.gather(*(one() for _ in range(10)))]

    results = served.client.portal.call(burst)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 200] + [503] * 9
    assert all(seconds < 0.25 for status, seconds in results if status == 503)
    assert served.client.get("/v2/health/live").status_code == 200


def test_a_body_that_stops_arriving_is_cut_off_with_408(
    real_server: ServerProcess, body_timeout_s: float
) -> None:
    head = b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n"
    started = time.monotonic()
    with open_connection(real_server.port, head + b'{"inputs": [') as sock:
        received = wait_closed(sock, body_timeout_s + 5)
    assert received is not None, "the server kept the connection open"
    assert status_of(received) == 408
    assert time.monotonic() - started < body_timeout_s + 4
    assert httpx.get(real_server.url + "/v2/health/live", timeout=5).status_code == 200
