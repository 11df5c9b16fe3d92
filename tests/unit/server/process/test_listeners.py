"""The server's port and the sockets its workers accept on (real loopback sockets)."""

from __future__ import annotations

import contextlib
import select
import socket
import sys
from collections.abc import Iterator

import pytest

from modelport.errors import ModelportError
from modelport.server.process.listeners import (
    Listeners,
    accept_queued,
    queue_length,
    stop_listening,
)

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-worker sockets need Linux's SO_REUSEPORT"
)


@contextlib.contextmanager
def opened(workers: int, port: int = 0) -> Iterator[Listeners]:
    listeners = Listeners.open("127.0.0.1", port, workers=workers)
    try:
        yield listeners
    finally:
        listeners.close()


def accepted(listening: list[socket.socket], connections: int) -> list[int]:
    """How many of ``connections`` new connections each listening socket received."""
    counts = [0] * len(listening)
    waiting = dict(enumerate(listening))
    while sum(counts) < connections:
        ready, _, _ = select.select(list(waiting.values()), [], [], 5)
        assert ready, f"only {sum(counts)} of {connections} connections arrived"
        for index, sock in waiting.items():
            if sock in ready:
                connection, _ = sock.accept()
                connection.close()
                counts[index] += 1
    return counts


@linux_only
def test_the_kernel_spreads_new_connections_over_the_workers_sockets() -> None:
    with opened(workers=2) as listeners:
        assert listeners.per_worker
        worker_sockets = [listeners.for_worker(), listeners.for_worker()]
        for sock in worker_sockets:
            sock.listen()
        try:
            clients = [
                socket.create_connection(("127.0.0.1", listeners.port), timeout=5)
                for _ in range(64)
            ]
            counts = accepted(worker_sockets, len(clients))
            for client in clients:
                client.close()
        finally:
            for sock in worker_sockets:
                sock.close()
    # A fair coin puts fewer than 8 of 64 on one side once in ~10^10 runs.
    assert min(counts) >= 8, counts


@linux_only
def test_nothing_is_accepted_before_a_worker_listens() -> None:
    with opened(workers=2) as listeners:
        waiting = listeners.for_worker()  # a worker still loading its models
        with waiting, pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", listeners.port), timeout=5)


@linux_only
def test_a_dead_workers_socket_leaves_and_the_others_take_every_connection() -> None:
    with opened(workers=2) as listeners:
        survivor, dead = listeners.for_worker(), listeners.for_worker()
        with survivor:
            survivor.listen()
            dead.listen()
            dead.close()
            clients = [
                socket.create_connection(("127.0.0.1", listeners.port), timeout=5)
                for _ in range(16)
            ]
            assert accepted([survivor], len(clients)) == [16]
            for client in clients:
                client.close()


def test_one_worker_accepts_on_the_supervisors_socket() -> None:
    with opened(workers=1) as listeners:
        assert not listeners.per_worker
        client = socket.create_connection(("127.0.0.1", listeners.port), timeout=5)
        with client, listeners.for_worker() as shared:
            assert accepted([shared], 1) == [1]  # queued before the worker took its copy


@pytest.mark.parametrize("workers", [1, 2])
def test_a_port_in_use_is_refused_with_one_clear_error(workers: int) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ModelportError) as raised:
            Listeners.open("127.0.0.1", port, workers=workers)
    assert raised.value.message == f"cannot listen on 127.0.0.1:{port}: Address already in use"


@linux_only
def test_a_second_server_cannot_join_the_port_of_a_running_one() -> None:
    with opened(workers=2) as first:
        with first.for_worker() as serving:
            serving.listen()
            with pytest.raises(ModelportError, match="Address already in use"):
                Listeners.open("127.0.0.1", first.port, workers=2)
        with pytest.raises(ModelportError, match="Address already in use"):
            Listeners.open("127.0.0.1", first.port, workers=2)  # held while no worker listens


@pytest.mark.parametrize("workers_before", [1, 2])
def test_a_restart_on_the_same_port_is_not_refused_for_its_old_connections(
    workers_before: int,
) -> None:
    with opened(workers=workers_before) as first:
        port = first.port
        with first.for_worker() as serving:
            if first.per_worker:
                serving.listen()
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            connection, _ = serving.accept()
            connection.close()  # closed by the server first: its end waits in TIME_WAIT
            client.close()
    with opened(workers=2, port=port) as again:
        assert again.port == port


@linux_only
def test_a_stopping_worker_takes_what_waits_in_its_queue_then_stops_listening() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        clients = [socket.create_connection(listener.getsockname()) for _ in range(5)]
        try:
            deadline = 50
            while queue_length(listener) < 5 and deadline:  # the handshakes complete
                select.select([], [], [], 0.01)
                deadline -= 1
            assert queue_length(listener) == 5
            waiting, left = stop_listening(listener)
            assert (len(waiting), left) == (5, 0)
            assert accept_queued(listener) == []
            with pytest.raises(ConnectionRefusedError):  # no longer listening...
                socket.create_connection(listener.getsockname(), timeout=2)
            assert listener.fileno() >= 0  # ... though the socket is still its owner's to close
            for connection in waiting:
                connection.close()
        finally:
            for client in clients:
                client.close()
