"""Overload, deadlines and model failures: fast, clear answers, and the server lives on."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np

from testing_server import ServeFn

ROW = {"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}


def test_a_full_queue_answers_503_with_retry_after_at_once(serve: ServeFn) -> None:
    served = serve(["slow"], batching={"max_batch_size": 1, "max_queue": 2})
    # ``slow`` sleeps 0.3 s per call: 1 running + 2 queued fill it; the rest must be refused.

    async def burst() -> list[tuple[int, float, str | None]]:
        transport = httpx.ASGITransport(app=served.app.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def one() -> tuple[int, float, str | None]:
                started = time.monotonic()
                response = await client.post("/v2/models/slow/infer", json={"inputs": [ROW]})
                return (
                    response.status_code,
                    time.monotonic() - started,
                    response.headers.get("retry-after"),
                )

            first = asyncio.create_task(one())
            await asyncio.sleep(0.1)  # the first request is now running in the model
            rest = await asyncio.gather(*(one() for _ in range(7)))
            return [await first, *rest]

    results = served.client.portal.call(burst)  # on the app's own event loop
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(ok) == 3 and len(refused) == 5
    assert all(retry == "1" for _, _, retry in refused)
    assert all(seconds < 0.25 for _, seconds, _ in refused)  # refused at once, not after a wait
    assert served.client.get("/v2/health/live").status_code == 200


def test_a_request_past_its_deadline_gets_504(serve: ServeFn) -> None:
    served = serve(["slow"])
    body = {"inputs": [ROW], "parameters": {"timeout": 50_000}}  # 50 ms, in microseconds
    response = served.client.post("/v2/models/slow/infer", json=body)
    assert response.status_code == 504
    assert "deadline" in response.json()["error"]
    assert served.client.get("/v2/health/live").status_code == 200


def test_a_server_timeout_also_gives_504(serve: ServeFn) -> None:
    served = serve(["slow"], request_timeout_s=0.05)
    response = served.client.post("/invocations", json={"inputs": [[1.0, 2.0, 3.0]]})
    assert response.status_code == 504
    assert response.json()["error_code"] == "DEADLINE_EXCEEDED"


def test_a_model_failure_is_500_without_a_stack_trace(serve: ServeFn) -> None:
    served = serve(["failing"])
    bad = {"inputs": [{**ROW, "data": [13.0, 0.0, 0.0]}]}
    response = served.client.post("/v2/models/failing/infer", json=bad)
    assert response.status_code == 500
    assert "this row makes the model fail" in response.json()["error"]
    assert "Traceback" not in response.text
    good = served.client.post("/v2/models/failing/infer", json={"inputs": [ROW]})
    assert good.status_code == 200
    assert np.asarray(good.json()["outputs"][0]["data"]).tolist() == [6.0]
