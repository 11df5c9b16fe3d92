"""Connections that never finish, and limits, against ``modelport serve`` on real sockets.

One server (the tiny app, one worker) runs for the module with short timeouts and small
limits (``LIMITS``), set the way users set them: ``MODELPORT_SERVE__CONNECTIONS__*``.
The clients are raw sockets, so that they can send nothing, half a request, or too much.
The server checks timeouts once a second, so a timeout of 2 s fires within 2 to 3 s.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing_clients import open_connection, read_response, status_of, wait_closed
from testing_supervisor import Server, launch, read_line, stop

TIMEOUT_S = 2
MAX_HEADERS = 20
MAX_HEADER_BYTES = 4096
MAX_CONNECTIONS = 40
MAX_BODY_BYTES = 65536
LIMITS = {
    "MODELPORT_SERVE__CONNECTIONS__KEEP_ALIVE_S": str(TIMEOUT_S),
    "MODELPORT_SERVE__CONNECTIONS__HEADER_TIMEOUT_S": str(TIMEOUT_S),
    "MODELPORT_SERVE__CONNECTIONS__BODY_TIMEOUT_S": str(TIMEOUT_S),
    "MODELPORT_SERVE__CONNECTIONS__MAX_HEADERS": str(MAX_HEADERS),
    "MODELPORT_SERVE__CONNECTIONS__MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    "MODELPORT_SERVE__CONNECTIONS__MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    "MODELPORT_SERVE__MAX_BODY_BYTES": str(MAX_BODY_BYTES),
}
GET_PID = b"GET /pid HTTP/1.1\r\nHost: test\r\n\r\n"
# Long enough for any timeout here to fire, with the once-a-second check and a busy machine.
CLOSE_WITHIN_S = TIMEOUT_S + 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = launch(tmp_path_factory.mktemp("limits"), **LIMITS)
    try:
        line = read_line(started.process, 30)
        assert " on http://127.0.0.1:" in line, line + started.stderr()
        started.url = line.split(" on ")[1].split(" ")[0]
        started.port = int(started.url.rsplit(":", 1)[1])
        yield started
    finally:
        stop(started)


def request(server: Server, data: bytes = GET_PID) -> tuple[int | None, bytes]:
    """Send ``data`` on a new connection; the status and everything received until the
    server closed it."""
    with open_connection(server.port, data) as sock:
        received = wait_closed(sock, CLOSE_WITHIN_S)
    assert received is not None, "the server never closed the connection"
    return status_of(received), received


def select_readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def error_of(raw: bytes) -> str:
    return str(json.loads(raw.partition(b"\r\n\r\n")[2])["error"])


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(server: Server) -> None:
    with open_connection(server.port) as sock:
        assert wait_closed(sock, TIMEOUT_S - 0.5) is None  # not before the timeout
        assert wait_closed(sock, CLOSE_WITHIN_S) == b""


def test_half_a_header_block_is_answered_408_then_closed(server: Server) -> None:
    status, raw = request(server, b"GET /pid HTTP/1.1\r\nHost: test\r\nX-Slow: 1")
    assert status == 408
    assert b"connection: close" in raw
    assert error_of(raw) == f"no complete request headers within {TIMEOUT_S} s"


def test_half_a_body_is_answered_408_then_closed(server: Server) -> None:
    head = b"POST /body HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n"
    status, raw = request(server, head + b"x" * 10)
    assert status == 408
    assert error_of(raw) == f"no more of the request body within {TIMEOUT_S} s"


def test_a_slow_body_that_keeps_arriving_is_read_whole(server: Server) -> None:
    pieces = 8  # one every 0.5 s: 3.5 s in all, longer than the body timeout
    head = f"POST /body HTTP/1.1\r\nHost: test\r\nContent-Length: {pieces}\r\n\r\n"
    with open_connection(server.port, head.encode()) as sock:
        for _ in range(pieces):
            time.sleep(0.5)
            sock.sendall(b"x")
        response = read_response(sock)
    assert (response.status, response.body) == (200, b"8")


def test_an_idle_kept_alive_connection_closes_after_the_keep_alive_timeout(
    server: Server,
) -> None:
    with open_connection(server.port, GET_PID) as sock:
        assert read_response(sock).status == 200
        assert wait_closed(sock, TIMEOUT_S - 0.5) is None
        assert wait_closed(sock, CLOSE_WITHIN_S) == b""


def test_too_many_header_fields_get_431(server: Server) -> None:
    fields = "".join(f"X-Field-{n}: {n}\r\n" for n in range(MAX_HEADERS + 1))
    status, raw = request(server, f"GET /pid HTTP/1.1\r\n{fields}\r\n".encode())
    assert status == 431
    assert error_of(raw) == f"more than {MAX_HEADERS} header fields"
    fields = "".join(f"X-Field-{n}: {n}\r\n" for n in range(MAX_HEADERS - 2))
    status, _ = request(
        server, f"GET /pid HTTP/1.1\r\nHost: t\r\n{fields}Connection: close\r\n\r\n".encode()
    )
    assert status == 200  # the limit itself is allowed


def test_one_huge_header_gets_431_before_it_has_all_arrived(server: Server) -> None:
    with open_connection(server.port, b"GET /pid HTTP/1.1\r\nX-Huge: ") as sock:
        sent = 0
        sock.settimeout(5)
        while sent < 1024 * 1024 and not select_readable(sock):  # 1 MB of one header...
            sock.sendall(b"a" * 4096)
            sent += 4096
        received = wait_closed(sock, CLOSE_WITHIN_S)
    # ... that never ends: a 431 (not a 408 for the header timeout) shows that it was
    # counted and refused as it arrived.
    assert received is not None
    assert status_of(received) == 431


def test_a_request_target_over_the_limit_gets_414(server: Server) -> None:
    status, _ = request(server, b"GET /" + b"a" * MAX_HEADER_BYTES + b" HTTP/1.1\r\n\r\n")
    assert status == 414


def test_a_chunked_body_is_refused_413_as_soon_as_it_passes_the_limit(server: Server) -> None:
    head = b"POST /body HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n%s\r\n" % (8192, b"x" * 8192)
    with open_connection(server.port, head) as sock:
        sent = 0
        while sent < 16 * MAX_BODY_BYTES and not select_readable(sock):
            sock.sendall(chunk)  # never the last chunk: the body never ends
            sent += 8192
        response = read_response(sock)
        # The body never ended: a 413 (not a 408 for the body timeout) shows that it was
        # counted and refused as it arrived, not held whole first.
        assert response.status == 413
        # The rest of the body is not parsed: the server ends the connection.
        assert wait_closed(sock, CLOSE_WITHIN_S) is not None


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    server: Server,
) -> None:
    head = b"POST /body HTTP/1.1\r\nHost: test\r\nContent-Length: 10000000\r\n\r\n"
    with open_connection(server.port, head) as sock:
        response = read_response(sock)
        assert (response.status, response.closes) == (413, True)
        assert wait_closed(sock, CLOSE_WITHIN_S) is not None  # the body is not awaited


def test_an_answer_before_the_body_has_arrived_says_the_connection_closes(
    server: Server,
) -> None:
    # A route that answers without reading the body (as a 403 for a key does): a client
    # not told that the connection ends would send its next request on it, and lose it.
    head = b"POST /pid HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\n"
    with open_connection(server.port, head) as sock:
        response = read_response(sock)
        assert (response.status, response.closes) == (200, True)
        sock.sendall(b"hello")  # the client was still sending: it reads no reset
        assert wait_closed(sock, CLOSE_WITHIN_S) == b""


def test_a_body_that_arrived_whole_but_was_not_read_keeps_the_connection(
    server: Server,
) -> None:
    post = b"POST /pid HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello"
    with open_connection(server.port, post) as sock:
        first = read_response(sock)
        assert (first.status, first.closes) == (200, False)
        sock.sendall(GET_PID)
        assert read_response(sock).status == 200


def test_a_chunked_body_within_the_limit_is_read(server: Server) -> None:
    head = b"POST /body HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n%s\r\n" % (1000, b"x" * 1000)
    with open_connection(server.port, head + chunk * 10 + b"0\r\n\r\n") as sock:
        response = read_response(sock)
    assert (response.status, response.body) == (200, b"10000")


def test_over_max_connections_the_longest_waiting_connection_makes_room(server: Server) -> None:
    idle = [open_connection(server.port)]
    time.sleep(0.25)  # the oldest by far (the server's clock ticks every 0.1 s)
    idle += [open_connection(server.port) for _ in range(MAX_CONNECTIONS - 1)]
    try:
        time.sleep(0.2)
        with open_connection(server.port, GET_PID) as sock:
            assert read_response(sock).status == 200
        assert wait_closed(idle[0], 0.5) == b""  # the oldest: closed to make room
        assert wait_closed(idle[-1], 0.1) is None  # the newest still waits
    finally:
        for sock in idle:
            sock.close()


def test_when_every_connection_has_a_request_under_way_a_new_one_gets_503(
    server: Server,
) -> None:
    slow = b"GET /slow?s=3 HTTP/1.1\r\nHost: test\r\n\r\n"
    busy = [open_connection(server.port, slow) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)
        with open_connection(server.port, GET_PID) as sock:
            response = read_response(sock)
        assert response.status == 503
        assert response.headers["retry-after"] == "1"
        assert response.closes
        assert json.loads(response.body) == {"error": "the server has too many open connections"}
    finally:
        for sock in busy:
            sock.close()


class Attackers:
    """Threads keeping ``count`` connections of one kind open, reopening those the
    server closes."""

    def __init__(self, port: int, opening: bytes, count: int) -> None:
        self._port, self._opening, self._count = port, opening, count
        self._stop = threading.Event()
        self.opened = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Attackers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        sockets: list[socket.socket] = []
        try:
            while not self._stop.is_set():
                while len(sockets) < self._count:
                    with contextlib.suppress(OSError):
                        sockets.append(open_connection(self._port, self._opening))
                        self.opened += 1
                readable, _, _ = select.select(sockets, [], [], 0.05)
                for sock in readable:  # closed (or answered) by the server: open another
                    sockets.remove(sock)
                    sock.close()
        finally:
            for sock in sockets:
                sock.close()


def test_many_slow_or_idle_clients_do_not_keep_a_normal_client_from_being_served(
    server: Server,
) -> None:
    half_header = b"GET /pid HTTP/1.1\r\nHost: test\r\n"
    half_body = b"POST /body HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nxx"
    with (
        Attackers(server.port, b"", 3 * MAX_CONNECTIONS) as idle,
        Attackers(server.port, half_header, MAX_CONNECTIONS) as headers,
        Attackers(server.port, half_body, MAX_CONNECTIONS // 2) as bodies,
    ):
        time.sleep(1)
        statuses = []
        for _ in range(20):
            with open_connection(server.port, GET_PID) as sock:
                statuses.append(read_response(sock, timeout=5).status)
            time.sleep(0.1)
        assert statuses == [200] * 20
        assert idle.opened > 3 * MAX_CONNECTIONS  # the server did close idle ones
        assert headers.opened >= MAX_CONNECTIONS
        assert bodies.opened >= MAX_CONNECTIONS // 2


def test_settings_are_checked_with_a_clear_error(tmp_path: Path) -> None:
    failing = launch(tmp_path, MODELPORT_SERVE__CONNECTIONS__HEADER_TIMEOUT_S="0")
    try:
        assert failing.wait(30) == 1
        assert failing.stderr().splitlines() == [
            "error: invalid serve.connections.header_timeout_s "
            "(MODELPORT_SERVE__CONNECTIONS__HEADER_TIMEOUT_S): Input should be greater than 0"
        ]
    finally:
        stop(failing)
