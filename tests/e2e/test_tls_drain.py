"""The drain and the connection timeouts over TLS: ``modelport serve --tls-cert`` (the
tiny app) restarted under keep-alive load, and clients that shake no hands or send
nothing, on real loopback sockets."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

from testing_clients import KeepAliveLoad, open_connection, read_response, wait_closed
from testing_supervisor import START_TIMEOUT_S, Server, launch, read_line, refused, serving, stop
from testing_tls import Pki, make_pki

GET_PID = b"GET /pid HTTP/1.1\r\nHost: test\r\n\r\n"


def drain_lines(server: Server) -> list[dict[str, Any]]:
    """The workers' "drained" log lines (as in test_drain.py)."""
    lines = [json.loads(line) for line in server.stderr().splitlines() if line.startswith("{")]
    return [line for line in lines if line["message"].startswith("drained in ")]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_args(pki: Pki) -> tuple[str, ...]:
    return ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))


def tls_connection(pki: Pki, port: int, data: bytes = b"") -> ssl.SSLSocket:
    sock = pki.client_context().wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1"
    )
    if data:
        sock.sendall(data)
    return sock


def test_sigterm_under_tls_keep_alive_load_answers_every_request_it_received(
    tmp_path: Path, pki: Pki
) -> None:
    with serving(tmp_path, "--workers", "2", *tls_args(pki)) as server:
        assert server.url.startswith("https://127.0.0.1:")
        load = KeepAliveLoad("127.0.0.1", server.port, "/pid", clients=8, tls=pki.client_context())
        with load:
            deadline = time.monotonic() + 10
            while load.outcomes.answered < 300 and time.monotonic() < deadline:
                time.sleep(0.05)
            load.outcomes.mark("signal")
            server.process.send_signal(signal.SIGTERM)
            assert server.wait(20) == 0
            outcomes = load.stop()
        drained = drain_lines(server)
    assert outcomes.answered_after["signal"] >= 300
    assert set(outcomes.statuses) == {200}
    assert len(drained) == 2, server.stderr()
    kept_alive = [drop for drop in outcomes.dropped if "kept-alive" in drop]
    assert kept_alive == []
    reported = sum(line["reset_at_close"] + line["cut_at_timeout"] for line in drained)
    assert len(outcomes.dropped) <= reported + len(drained), (outcomes.dropped, drained)


def test_a_tls_drain_answers_what_arrives_and_does_not_wait_for_idle_clients(
    tmp_path: Path, pki: Pki
) -> None:
    args = ("--workers", "1", "--drain-timeout", "20", *tls_args(pki))
    with serving(tmp_path, *args) as server:
        kept = tls_connection(pki, server.port, GET_PID)
        idle = tls_connection(pki, server.port, GET_PID)  # never reads again, never closes
        slow = tls_connection(pki, server.port, b"GET /slow?s=2 HTTP/1.1\r\nHost: t\r\n\r\n")
        with kept, idle, slow:
            assert read_response(kept).status == 200
            assert read_response(idle).status == 200
            time.sleep(0.2)  # the slow request is under way
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            while not refused(server.port):  # the worker stopped accepting: it drains
                assert time.monotonic() < signalled + 2
                time.sleep(0.02)
            kept.sendall(GET_PID)
            answer = read_response(kept)
            assert (answer.status, answer.closes) == (200, True)
            late = read_response(slow)
            assert (late.status, late.closes) == (200, True)
            assert server.wait(15) == 0
            # The idle client answers no close_notify: the worker gives up on it within
            # seconds, not asyncio's 30 s nor the 20 s drain timeout.
            assert time.monotonic() - signalled < 10
        (drained,) = drain_lines(server)
    assert drained["answered_after_signal"] == 2
    assert (drained["reset_at_close"], drained["cut_at_timeout"]) == (0, 0)


def test_a_client_that_never_shakes_hands_or_sends_a_request_is_cut_off(
    tmp_path: Path, pki: Pki
) -> None:
    timeouts = {
        "MODELPORT_SERVE__CONNECTIONS__HEADER_TIMEOUT_S": "1",
        "MODELPORT_SERVE__CONNECTIONS__BODY_TIMEOUT_S": "1",
    }
    with serving(tmp_path, "--workers", "1", *tls_args(pki), **timeouts) as server:
        silent_tcp = open_connection(server.port)  # no ClientHello
        half = open_connection(server.port, b"\x16\x03\x01")  # a third of a record header
        silent_tls = tls_connection(pki, server.port)  # a handshake, then no request
        partial = tls_connection(pki, server.port, b"GET /pid HTTP/1.1\r\n")
        stalled = b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12"
        body = tls_connection(pki, server.port, stalled)
        with silent_tcp, half, silent_tls, partial, body:
            started = time.monotonic()
            assert wait_closed(silent_tcp, 5) == b""
            assert wait_closed(half, 5) == b""
            assert wait_closed(silent_tls, 5) == b""
            assert (wait_closed(partial, 5) or b"").startswith(b"HTTP/1.1 408 ")
            assert (wait_closed(body, 5) or b"").startswith(b"HTTP/1.1 408 ")
            assert time.monotonic() - started < 8
            with tls_connection(pki, server.port, GET_PID) as fresh:  # still serving
                assert read_response(fresh).status == 200


def test_plain_http_on_the_tls_port_is_not_served(tmp_path: Path, pki: Pki) -> None:
    with serving(tmp_path, "--workers", "1", *tls_args(pki)) as server:
        with open_connection(server.port, GET_PID) as plain:
            assert b"pid" not in (wait_closed(plain, 5) or b"")
        with tls_connection(pki, server.port, GET_PID) as fresh:
            assert read_response(fresh).status == 200


def test_a_bad_certificate_fails_the_start_naming_the_file(tmp_path: Path, pki: Pki) -> None:
    missing = tmp_path / "missing.pem"
    server = launch(tmp_path, "--tls-cert", str(pki.server_cert), "--tls-key", str(missing))
    try:
        assert server.wait(START_TIMEOUT_S) == 1
        assert read_line(server.process, 5) == ""  # nothing on stdout
        assert server.stderr().splitlines() == [
            f"error: cannot use the TLS private key file {missing} (--tls-key, "
            "serve.tls.key): no such file"
        ]
    finally:
        stop(server)


def test_a_handshake_under_way_when_the_worker_stops_accepting_is_served(
    tmp_path: Path, pki: Pki
) -> None:
    # The worker took the connection from its queue, but the client has not finished
    # the handshake when the worker stops accepting (TLS 1.3: the client may already
    # send its request while the server still waits for its Finished): the drain must
    # wait for it instead of ending with it unseen.
    with serving(tmp_path, "--workers", "1", *tls_args(pki)) as server:
        pending = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        with pending:
            time.sleep(0.3)  # the worker's loop accepts it and waits for a ClientHello
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            while not refused(server.port):  # the worker stopped accepting: it drains
                assert time.monotonic() < signalled + 10
                time.sleep(0.02)
            time.sleep(0.3)
            context = pki.client_context()
            with context.wrap_socket(pending, server_hostname="127.0.0.1") as tls:
                tls.sendall(GET_PID)
                answer = read_response(tls)
            assert (answer.status, answer.closes) == (200, True)
        assert server.wait(15) == 0
        (drained,) = drain_lines(server)
    assert drained["answered_after_signal"] == 1
