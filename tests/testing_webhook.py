"""A real webhook receiver on loopback for alert and event tests: answers with the
statuses it is given (then 200) and keeps every request it received; with ``hold``, it
answers only once that event is set. modelport calls no loopback address unless allowed:
pass ``LOOPBACK`` (or set ``OUTGOING_LOOPBACK`` in a config) wherever it should reach one."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from modelport.outgoing import OutgoingPolicy

LOOPBACK = OutgoingPolicy(allowed_hosts=("127.0.0.1",))
"""The outgoing policy that lets modelport call receivers on 127.0.0.1."""
OUTGOING_LOOPBACK = '\n[outgoing]\nallowed_hosts = ["127.0.0.1"]\n'
"""The same, as a config file table."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    statuses: list[int]
    requests: list[Received] = field(default_factory=list)


@contextmanager
def webhook_receiver(
    statuses: Sequence[int] = (), *, hold: threading.Event | None = None
) -> Iterator[Receiver]:
    """A receiver at ``receiver.url``, stopped after the block."""
    receiver = Receiver(url="", statuses=list(statuses))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if hold is not None:
                hold.wait()
            with lock:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
