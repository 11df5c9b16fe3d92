"""A busy worker sheds keep-alive connections, so that the kernel places them again."""

from __future__ import annotations

import asyncio
from typing import Any

from modelport.server.http.connections import ConnectionRecycler
from modelport.server.process.spec import Message, Receive, Scope, Send


class Recorder:
    """An app whose requests wait until released, and the headers each response got."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.closed: dict[int, bool] = {}

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/wait":
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})

    def send_for(self, port: int) -> Send:
        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.closed[port] = (b"connection", b"close") in message["headers"]

        return send


async def receive() -> Message:
    return {"type": "http.disconnect"}


def request(port: int, path: str = "/") -> dict[str, Any]:
    return {"type": "http", "http_version": "1.1", "client": ("127.0.0.1", port), "path": path}


def test_an_idle_worker_keeps_its_connections_open() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        recycler = ConnectionRecycler(recorder.app, 100, busy_interval_s=0.0)
        for port in range(20):  # one request at a time: never busy
            await recycler(request(port), receive, recorder.send_for(port))
        assert not any(recorder.closed.values())

    asyncio.run(scenario())


def test_a_busy_worker_closes_one_connection_per_interval() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        recycler = ConnectionRecycler(recorder.app, 100, busy_interval_s=3600)
        waiting = asyncio.create_task(recycler(request(1, "/wait"), receive, recorder.send_for(1)))
        await asyncio.sleep(0)  # request 1 is in flight from now on
        for port in (2, 3, 4):
            await recycler(request(port), receive, recorder.send_for(port))
        recorder.release.set()
        await waiting
        # The first request that found the worker busy closes its connection; the
        # next ones within the interval keep theirs, and so does the one that waited.
        assert recorder.closed == {1: False, 2: True, 3: False, 4: False}

    asyncio.run(scenario())


def test_a_worker_that_stays_busy_sheds_again_after_the_interval() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        recycler = ConnectionRecycler(recorder.app, 100, busy_interval_s=0.05)
        waiting = asyncio.create_task(recycler(request(1, "/wait"), receive, recorder.send_for(1)))
        await asyncio.sleep(0)
        await recycler(request(2), receive, recorder.send_for(2))
        await recycler(request(3), receive, recorder.send_for(3))
        await asyncio.sleep(0.06)
        await recycler(request(4), receive, recorder.send_for(4))
        recorder.release.set()
        await waiting
        assert recorder.closed == {1: False, 2: True, 3: False, 4: True}
        assert recycler.tracked == 2  # closed connections are no longer counted

    asyncio.run(scenario())
