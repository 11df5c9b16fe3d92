"""Raw-socket HTTP/1.1 clients for end-to-end tests of connections: keep-alive load
that knows exactly whether each request's bytes were sent, and helpers for slow clients.

A request whose bytes were sent must get a complete answer. A client may instead see
a connection refused, or a kept-alive connection that the server closed *before* the
request was written (its end of file is seen first): nothing was sent, so nothing was
lost. Anything else after the request was written is a dropped request.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Response:
    """A parsed HTTP/1.1 response."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def closes(self) -> bool:
        """Whether the server said it closes the connection."""
        return self.headers.get("connection", "").lower() == "close"


class Incomplete(Exception):
    """The connection ended (or failed) before a whole response came."""


def read_response(sock: socket.socket, timeout: float = 10) -> Response:
    """Read one response (Content-Length framed) from ``sock``."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise Incomplete(f"end of file after {len(data)} bytes")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise Incomplete(f"end of file inside a body of {length} bytes")
            body += chunk
    except OSError as exc:
        raise Incomplete(repr(exc)) from None
    return Response(int(lines[0].split(" ")[1]), headers, body)


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (its end of file or reset is waiting)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    if isinstance(sock, ssl.SSLSocket):
        return _tls_closed(sock)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _tls_closed(sock: ssl.SSLSocket) -> bool:
    """TLS cannot peek: read, with no request out (so no answer is due). What arrived
    may be only TLS records (session tickets), which are not the end."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except ssl.SSLWantReadError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


@dataclass
class LoadOutcomes:
    """What keep-alive clients saw, counted under one lock."""

    answered: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    closing_answers: int = 0
    refused: int = 0
    closed_before_send: int = 0
    dropped: list[str] = field(default_factory=list)
    answered_after: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, name: str) -> None:
        """Remember how many requests were answered up to now, as ``name``."""
        with self.lock:
            self.answered_after[name] = self.answered


class KeepAliveLoad:
    """``clients`` threads sending ``GET path`` on kept-alive connections (TLS with a
    ``tls`` context), reconnecting when the server closes one, until ``stop()`` or
    ``duration_s``."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        *,
        clients: int = 8,
        duration_s: float = 30,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._address = (host, port)
        self._tls = tls
        self._request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + duration_s
        self.outcomes = LoadOutcomes()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> KeepAliveLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadOutcomes:
        """Stop every client and wait for it."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        return self.outcomes

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _run(self) -> None:
        sock: socket.socket | None = None
        outcomes = self.outcomes
        answered_here = 0  # requests answered on this connection so far
        while self._running():
            if sock is not None and closed_by_peer(sock):
                sock.close()
                sock = None
                with outcomes.lock:
                    outcomes.closed_before_send += 1
            if sock is None:
                sock, answered_here = self._connect(), 0
                if sock is None:
                    continue
            try:
                sock.sendall(self._request)
                response = read_response(sock)
            except (OSError, Incomplete) as exc:
                where = "a kept-alive connection" if answered_here else "a new connection"
                with outcomes.lock:
                    outcomes.dropped.append(f"{where} at {time.monotonic():.6f}: {exc!r}")
                sock.close()
                sock = None
                continue
            answered_here += 1
            with outcomes.lock:
                outcomes.answered += 1
                outcomes.statuses[response.status] += 1
                outcomes.closing_answers += response.closes
            if response.closes:
                sock.close()
                sock = None
        if sock is not None:
            sock.close()

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(self._address, timeout=5)
            if self._tls is None:
                return sock
            return self._tls.wrap_socket(sock, server_hostname=self._address[0])
        except ConnectionRefusedError:
            with self.outcomes.lock:
                self.outcomes.refused += 1
            time.sleep(0.01)
        except OSError:  # a reset while connecting: nothing was sent either
            with self.outcomes.lock:
                self.outcomes.refused += 1
            time.sleep(0.01)
        return None


def open_connection(port: int, data: bytes = b"", host: str = "127.0.0.1") -> socket.socket:
    """A connection to the server that has sent ``data`` (and then nothing more)."""
    sock = socket.create_connection((host, port), timeout=5)
    if data:
        sock.sendall(data)
    return sock


def wait_closed(sock: socket.socket, timeout: float) -> bytes | None:
    """What the server sent before closing ``sock``; None if it is still open after
    ``timeout`` seconds."""
    sock.settimeout(0.2)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return received
        if not chunk:
            return received
        received += chunk
    return None


def status_of(raw: bytes) -> int | None:
    """The status code at the start of ``raw``, if it holds a status line."""
    if not raw.startswith(b"HTTP/1.1 "):
        return None
    with contextlib.suppress(ValueError, IndexError):
        return int(raw.split(b" ", 2)[1])
    return None
