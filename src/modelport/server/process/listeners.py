"""Where the workers accept connections: the server's port, and a socket per worker.

With several workers on Linux, each worker listens on a socket of its own, all bound
to the server's port with ``SO_REUSEPORT``: the kernel hands each new connection to
one of them by a hash of the client's address and port, whatever the workers are
doing. One shared listening socket, which every worker accepts on, was used first and
measured badly: connections piled up on one worker while the other idled for seconds
(the 100-tree scikit-learn forest, 2 workers, 8 clients of 64 rows: 200-243
requests/s, one worker at 0-1 % CPU for 5 s at a time; with a socket each, 246-314;
with ``ConnectionRecycler`` shedding too, 279-322 and both workers busy). The likely
cause: the kernel wakes every worker for a new connection, and a busy worker, already
awake, accepts it before an idle one asleep in ``epoll`` runs.
``ConnectionRecycler`` closes each keep-alive connection now and then, so the kernel
hashes it again and no client stays on one worker for good.

The supervisor binds the port first, without ``SO_REUSEPORT``, so that a port in use
fails the start with one clear error, then holds it with a socket that is bound with
``SO_REUSEPORT`` but does not listen (no connection is ever queued on it), which makes
that check fail for a second server; port 0 resolves to a free port there. Each
worker's socket is bound by the supervisor, sent to the worker and closed on the
supervisor's side, and it only starts listening once the worker has loaded its models
(uvicorn listens after its start-up). So:

* a worker that dies takes its socket with it: the kernel spreads new connections over
  the remaining workers at once, and its replacement joins once it is ready. The
  connections waiting in the dead worker's own accept queue, not yet read, are reset;
  a client sees a reset before any answer, which is safe to retry. The
  ``net.ipv4.tcp_migrate_req = 1`` sysctl (Linux 5.14+) has the kernel move them to
  another worker instead.
* another process of the same user can bind the port with ``SO_REUSEPORT`` and take a
  share of the connections (the kernel refuses other users). The start-up check above
  stops a second ``modelport serve`` on the same port.

With one worker, or where the kernel does not balance ``SO_REUSEPORT`` sockets (not
Linux), every worker accepts on one socket that the supervisor listens on and keeps
open: connections that arrive while a worker restarts wait in its queue.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys

from modelport.errors import InvalidArgumentError, ModelportError

BACKLOG = 2048
# struct tcp_info: 8 bytes of u8 fields, then u32 rto, ato, snd_mss, rcv_mss, unacked.
# For a listening socket Linux reports its accept queue's length in tcpi_unacked.
_TCP_INFO_UNACKED = struct.Struct("=24xI")


class Listeners:
    """The server's port, held by the supervisor, and the sockets its workers accept on."""

    def __init__(self, held: socket.socket, *, per_worker: bool) -> None:
        self._held = held
        self.per_worker = per_worker

    @classmethod
    def open(cls, host: str, port: int, *, workers: int) -> Listeners:
        """Bind ``host:port`` (port 0: any free port) for ``workers`` workers; raises
        ``ModelportError`` when the port is in use."""
        family, address = _resolve(host, port)
        per_worker = workers > 1 and _balances_reuseport()
        try:
            probe = _bound(family, address, reuse_address=True)
            if not per_worker:
                probe.listen(BACKLOG)
                return cls(probe, per_worker=False)
            with probe:
                address = probe.getsockname()
            return cls(_held(family, address), per_worker=True)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ModelportError(f"cannot listen on {authority(host, port)}: {reason}") from None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._held.getsockname()[1])

    def for_worker(self) -> socket.socket:
        """The socket a starting worker serves on; the caller closes it once sent."""
        if not self.per_worker:
            return self._held.dup()
        address = self._held.getsockname()
        return _bound(self._held.family, address, reuse_address=True, reuse_port=True)

    def close(self) -> None:
        """Stop accepting here; workers keep their own sockets until they drain."""
        self._held.close()


def authority(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple[object, ...]]:
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise InvalidArgumentError(
            f"cannot resolve {host!r}: {exc.strerror}", field="host"
        ) from None
    return family, address


def _held(family: socket.AddressFamily, address: tuple[object, ...]) -> socket.socket:
    """The supervisor's hold on the port for the workers' ``SO_REUSEPORT`` sockets.

    Without ``SO_REUSEADDR`` it stops another server's start-up check (which sets only
    that option) even though it does not listen. Connections in TIME_WAIT left on the
    port by a server that had one shared socket refuse that bind, and only then is the
    option set as well (the check then passes again until our workers listen).
    """
    try:
        return _bound(family, address, reuse_port=True)
    except OSError:
        return _bound(family, address, reuse_address=True, reuse_port=True)


def _bound(
    family: socket.AddressFamily,
    address: tuple[object, ...],
    *,
    reuse_address: bool = False,
    reuse_port: bool = False,
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if reuse_address:  # a restart must not wait for its old connections' TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _balances_reuseport() -> bool:
    """Whether the kernel spreads connections over ``SO_REUSEPORT`` listeners (Linux
    does; BSD and macOS give them all to one) and lets us set the option."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        return False
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        return False
    return True


def accept_queued(listener: socket.socket) -> list[socket.socket]:
    """The connections waiting in ``listener``'s accept queue, accepted now.

    Closing a listening socket resets the connections in its queue, whose clients may
    already have sent a request; a worker that stops accepting takes them first.
    """
    listener.setblocking(False)
    accepted: list[socket.socket] = []
    while True:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return accepted
        except OSError:  # out of file descriptors, or the socket is gone: leave the rest
            return accepted
        accepted.append(connection)


def stop_listening(listener: socket.socket) -> tuple[list[socket.socket], int]:
    """Stop accepting on ``listener`` without resetting what waits in its queue: the
    waiting connections, accepted now, and how many arrived in the instant between the
    last look at the queue and the end of listening (reset by the kernel).

    On Linux ``shutdown`` ends the listening right after that last look, while the
    socket stays open for its owner (the event loop) to close; elsewhere the owner's
    close ends it, a little later.
    """
    accepted: list[socket.socket] = []
    left = 0
    for _ in range(3):  # what arrives while the queue is taken is taken too
        accepted.extend(accept_queued(listener))
        left = queue_length(listener)
        if not left:
            break
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RD)
    return accepted, left


def queue_length(listener: socket.socket) -> int:
    """How many connections wait in ``listener``'s accept queue (0 where the kernel does
    not say: it is read from Linux's ``TCP_INFO``)."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None or listener.family not in (socket.AF_INET, socket.AF_INET6):
        return 0
    try:
        info = listener.getsockopt(socket.IPPROTO_TCP, option, _TCP_INFO_UNACKED.size)
    except OSError:
        return 0
    if len(info) < _TCP_INFO_UNACKED.size:
        return 0
    return int(_TCP_INFO_UNACKED.unpack(info)[0])
