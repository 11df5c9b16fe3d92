"""A TCP proxy on loopback that a test can cut and restore, to put a real service (the
PostgreSQL server) out of a program's reach without stopping the service itself."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class CuttableProxy:
    """Forwards connections from ``127.0.0.1:port`` to ``target``; ``cut`` closes every
    connection and refuses new ones, ``restore`` accepts again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._open = threading.Event()
        self._drop = False  # set by cut(); the proxy's thread closes its connections
        self._dropped = threading.Event()
        self._stopped = False
        self._open.set()
        self._thread = threading.Thread(target=self._serve, name="proxy", daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._open.clear()
        self._dropped.clear()
        self._drop = True
        if not self._dropped.wait(timeout=5):
            raise RuntimeError("the proxy did not drop its connections")

    def restore(self) -> None:
        """Accept and forward connections again."""
        self._open.set()

    def close(self) -> None:
        """Stop the proxy for good."""
        self.cut()
        self._stopped = True
        self._thread.join(timeout=5)
        _close(self._listener)

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, None)
        while not self._stopped:
            if self._drop:
                self._drop_all(selector)
            for key, _ in selector.select(timeout=0.02):
                if key.data is None:
                    self._accept(selector)
                else:
                    self._forward(selector, key.fileobj, key.data)  # type: ignore[arg-type]
        selector.close()

    def _drop_all(self, selector: selectors.BaseSelector) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for side in pair:
                _forget(selector, side)
        self._drop = False
        self._dropped.set()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        if not self._open.is_set():
            _close(client)  # as if nothing listened: the client sees the connection end
            return
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            _close(client)
            return
        with self._lock:
            self._pairs.append((client, upstream))
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)

    def _forward(
        self, selector: selectors.BaseSelector, source: socket.socket, sink: socket.socket
    ) -> None:
        try:
            data = source.recv(65536)
            if data:
                sink.sendall(data)
                return
        except OSError:
            pass
        for side in (source, sink):
            _forget(selector, side)


def _forget(selector: selectors.BaseSelector, sock: socket.socket) -> None:
    with contextlib.suppress(KeyError, ValueError):
        selector.unregister(sock)
    _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
