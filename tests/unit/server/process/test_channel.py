"""The start message a spawned worker waits for: its work and the listening socket."""

from __future__ import annotations

import socket
from pathlib import Path

from modelport.server.process.channel import receive_start, send_start


def test_the_start_message_carries_the_spec_and_a_usable_listening_socket() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    ours, theirs = socket.socketpair()
    with listener, ours, theirs:
        send_start(
            ours,
            spec_path=Path("/private/worker.json"),
            index=2,
            pins_path=None,
            listen_fd=listener.fileno(),
        )
        start = receive_start(theirs)
        assert start is not None
        assert (start.spec_path, start.index, start.pins_path) == (
            Path("/private/worker.json"),
            2,
            None,
        )
        assert start.listen_fd != listener.fileno()  # a descriptor of the receiver's own
        with socket.socket(fileno=start.listen_fd) as received:
            assert received.getsockname() == listener.getsockname()
            client = socket.create_connection(listener.getsockname(), timeout=5)
            with client:
                connection, _ = received.accept()  # the same listening socket
                connection.close()


def test_a_closed_channel_means_no_work() -> None:
    ours, theirs = socket.socketpair()
    ours.close()
    with theirs:
        assert receive_start(theirs) is None
