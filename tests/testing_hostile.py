"""A hostile HTTP peer on loopback, for the server-side request forgery and unsafe
consumption tests: each connection gets the same script of ``(bytes, pause)`` steps
(a redirect, a body that never ends, garbage that is not HTTP...), and every request
it was sent is kept."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

Script = Sequence[tuple[bytes, float]]


@dataclass
class Hostile:
    """The peer's URL (path ``/hook``) and the raw requests it received."""

    url: str
    port: int
    requests: list[bytes] = field(default_factory=list)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@contextmanager
def hostile_server(script: Script) -> Iterator[Hostile]:
    """A peer at ``hostile.url`` playing ``script`` to every connection; stopped (its
    pauses cut short) after the block."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    port = listener.getsockname()[1]
    hostile = Hostile(f"http://127.0.0.1:{port}/hook", port)
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def play(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                hostile.requests.append(_read_request(conn))
                for chunk, pause in script:
                    conn.sendall(chunk)
                    if pause and stop.wait(pause):
                        return
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=play, args=(conn,), daemon=True)
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield hostile
    finally:
        stop.set()
        acceptor.join()
        for thread in threads:
            thread.join(10)
        listener.close()
