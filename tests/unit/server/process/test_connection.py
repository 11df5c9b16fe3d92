"""``WorkerConnection`` relies on uvicorn's httptools protocol and server internals: these
tests fail loudly when an upgrade of uvicorn changes them. They serve one request on a
real loopback socket, in process, and look at the objects the connection reads."""

from __future__ import annotations

import asyncio
import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import uvicorn
from packaging.requirements import Requirement
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from modelport.config import ConnectionSettings
from modelport.server.process.connection import ConnectionsState, WorkerConnection

PYPROJECT = Path(__file__).resolve().parents[4] / "pyproject.toml"


def test_uvicorn_is_within_the_versions_the_connection_was_written_for() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (uvicorn_requirement,) = (Requirement(d) for d in dependencies if d.startswith("uvicorn"))
    assert version("uvicorn") in uvicorn_requirement.specifier, (
        f"uvicorn {version('uvicorn')} is outside {uvicorn_requirement.specifier}: check "
        "modelport.server.process.connection and worker_server against its source"
    )
    assert "<" in str(uvicorn_requirement.specifier)  # an upper bound: internals are used


def test_the_protocol_methods_and_server_attributes_it_replaces_or_calls_exist() -> None:
    for name in (
        "_unset_keepalive_if_required",
        "send_400_response",
        "on_message_begin",
        "on_headers_complete",
        "on_response_complete",
        "on_url",
        "on_header",
        "data_received",
    ):
        assert callable(getattr(HttpToolsProtocol, name)), name
    assert STATUS_LINE[431] == b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    assert list(inspect.signature(uvicorn.Server.shutdown).parameters) == ["self", "sockets"]
    assert list(inspect.signature(uvicorn.Server.on_tick).parameters) == ["self", "counter"]
    server = uvicorn.Server(uvicorn.Config(app=None))
    for name in ("server_state", "should_exit", "force_exit", "started", "config"):
        assert hasattr(server, name), name


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_the_connection_state_it_reads_is_uvicorns() -> None:
    asyncio.run(_serve_one_request())


async def _serve_one_request() -> None:
    config = uvicorn.Config(_app, http=WorkerConnection, lifespan="off", log_config=None)
    config.load()
    state = ConnectionsState(ConnectionSettings())
    made: list[WorkerConnection] = []

    def connection() -> WorkerConnection:
        made.append(WorkerConnection(config=config, server_state=state, app_state={}))
        return made[-1]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
    assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200 OK\r\n")
    (protocol,) = made
    cycle = protocol.cycle
    assert (cycle.response_started, cycle.response_complete) == (True, True)
    assert (cycle.more_body, cycle.keep_alive, cycle.disconnected) == (False, True, False)
    assert isinstance(cycle.message_event, asyncio.Event)
    assert protocol.flow.read_paused is False
    assert list(protocol.pipeline) == []
    assert protocol.timeout_keep_alive_task is not None  # armed by on_response_complete
    assert (protocol.url, protocol.headers[0]) == (b"/", (b"host", b"t"))
    assert protocol in state.connections
    assert state.total_requests == 1
    writer.close()
    server.close()
    await server.wait_closed()
