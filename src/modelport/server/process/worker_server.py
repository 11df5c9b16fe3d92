"""uvicorn's server as a worker runs it: readiness, the drain, orphans, and the clock of
its connections' timeouts.

``WorkerServer`` serves the app on the socket the supervisor sent, with each connection
a ``WorkerConnection`` (``modelport.server.process.connection``). Once a second it walks
its connections to close or answer those past a timeout.

The drain, from SIGTERM (or SIGINT, or the supervisor's death):

1. Readiness turns 503 at once (the app's ``begin_drain``), and from then on every
   response carries ``connection: close``, so that clients reconnect, to another worker
   or, behind a load balancer, another server.
2. For ``drain_delay_s`` the worker keeps accepting and serving.
3. It stops accepting. The connections already waiting in its socket's accept queue
   would be reset by the close (their clients may have sent a request): it accepts
   them first, reads how many arrived meanwhile (Linux's ``TCP_INFO``) and ends the
   listening at once (``listeners.stop_listening``). From here on the kernel refuses
   new connections on this worker's socket; the server never sees them, so it cannot
   count them.
4. Requests that arrive on open connections are answered, with ``connection: close``,
   and over TLS so are those of connections whose handshake was under way (within the
   handshake timeout): a TLS 1.3 client may send its request before the server has
   seen its last handshake message.
   A connection with no request closes once idle for ``DRAIN_IDLE_S``; requests in
   progress finish within ``drain_timeout_s``, after which the rest is cut.
5. The app's lifespan shutdown runs, and one line is logged: how long the drain took,
   how many requests were answered after the signal, and how many connections were
   reset (left in the accept queue, or cut at the drain timeout).

This replaces ``uvicorn.Server.shutdown``, which closes the socket with its queue and
every idle keep-alive connection at once, and whose request on the wire is then lost.

With TLS (``serve.tls``) the same holds: the socket and the connections taken from its
queue are wrapped with the worker's context, a handshake must complete within the
header timeout, and closing a connection waits at most ``tls.SHUTDOWN_TIMEOUT_S`` for
the client's ``close_notify``, so that idle TLS clients do not hold the drain up.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import ssl
import sys
import time
from collections import Counter
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from modelport.config import ConnectionSettings, Settings
from modelport.server.process.connection import ConnectionsState, WorkerConnection
from modelport.server.process.listeners import BACKLOG, stop_listening
from modelport.server.process.spec import ServerApp, StatusPipe
from modelport.server.process.tls import SHUTDOWN_TIMEOUT_S, handshake_timeout

logger = logging.getLogger("modelport.server.process.worker")

CHECK_EVERY_TICKS = 10  # uvicorn ticks every 0.1 s: the timeouts are checked every second
DRAIN_POLL_S = 0.1
HANDSHAKE_COLLECT_S = 1.0  # while draining, how often failed handshakes are collected
CLOSURES_LOG_EVERY_S = 60.0


class WorkerServer(uvicorn.Server):
    """uvicorn's server with modelport's drain, readiness, orphan handling and
    connection timeouts (see the module docstring)."""

    def __init__(
        self,
        config: uvicorn.Config,
        app: ServerApp,
        status: StatusPipe,
        *,
        limits: ConnectionSettings | None = None,
        drain_delay_s: float = 0.0,
        drain_timeout_s: float = 30.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(config)
        limits = limits or ConnectionSettings()
        self.server_state: ConnectionsState = ConnectionsState(limits)
        self._tls: dict[str, Any] = {}
        if tls is not None:  # the options of create_server and connect_accepted_socket
            self._tls = {
                "ssl": tls,
                "ssl_handshake_timeout": handshake_timeout(limits),
                "ssl_shutdown_timeout": SHUTDOWN_TIMEOUT_S,
            }
        self._app = app
        self._status = status
        self._parent = os.getppid()
        self._drain_delay = drain_delay_s
        self._drain_timeout = drain_timeout_s
        self._exit_at: float | None = None
        self._signalled_at: float | None = None
        self._requests_at_signal = 0
        self._told_connections = False
        self._next_collect = 0.0
        self._closures_logged: Counter[str] = Counter()
        self._closures_logged_at = time.monotonic()
        self.orphaned = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start draining: readiness first, then (after ``drain_delay_s``, during which
        requests are still accepted) the shutdown. A second Ctrl+C stops at once.

        The signal is deliberately not recorded in ``_captured_signals``: uvicorn would
        raise it again after the shutdown, ending the process by the signal instead of
        with exit code 0.
        """
        self._begin_drain()
        if (self.should_exit or self._exit_at is not None) and sig == signal.SIGINT:
            self.force_exit = True
            self.should_exit = True
        elif self._drain_delay > 0 and not self.should_exit:
            if self._exit_at is None:
                self._exit_at = time.monotonic() + self._drain_delay
        else:
            self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """The lifespan startup, then listen on ``sockets`` (with TLS when configured),
        then report ready.

        uvicorn's own startup would do the same for the sockets it is given, but with
        asyncio's TLS timeouts (60 s to shake hands, 30 s to close), too long for a
        client that connects and sends nothing, and for a drain.
        """
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        loop = asyncio.get_running_loop()
        self.servers = []
        for sock in sockets or []:
            server = await loop.create_server(
                self._new_connection, sock=sock, backlog=self.config.backlog, **self._tls
            )
            self.servers.append(server)
        self.started = True
        self._status.listening()

    async def on_tick(self, counter: int) -> bool:
        """uvicorn's tick (every 0.1 s): stop after a failure, drain when orphaned, and
        check the connections' timeouts every second."""
        if self._status.failed:  # on_failed was called after the lifespan startup
            self.should_exit = True
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self.should_exit = True  # the drain delay is over: stop accepting
        self.server_state.clock = asyncio.get_running_loop().time()
        if counter % 10 == 0 and not self.should_exit and os.getppid() != self._parent:
            logger.warning("the supervisor is gone; draining")
            self.orphaned = True
            self._begin_drain()
            self.should_exit = True
        if self.server_state.draining and not self._told_connections:
            self._told_connections = True  # not from the signal handler: it may interrupt them
            for connection in self._connections():
                connection.begin_drain()
        if counter % CHECK_EVERY_TICKS == 0:
            self._check_timeouts()
            self._log_closures()
        return await super().on_tick(counter)

    def _begin_drain(self) -> None:
        if self._signalled_at is None:
            self._signalled_at = time.monotonic()
            self._requests_at_signal = self.server_state.total_requests
            self.server_state.draining = True
        try:
            self._app.begin_drain()
        except Exception:  # a signal handler must not raise into the event loop
            logger.exception("begin_drain failed")

    def _connections(self) -> list[WorkerConnection]:
        return [c for c in self.server_state.connections if isinstance(c, WorkerConnection)]

    def _check_timeouts(self) -> None:
        now = asyncio.get_running_loop().time()
        for connection in self._connections():
            connection.check_timeouts(now)

    def _log_closures(self, *, force: bool = False) -> None:
        """One line, at most every minute, on connections closed for a limit or timeout."""
        closed = self.server_state.closed_for - self._closures_logged
        now = time.monotonic()
        if not closed or (not force and now - self._closures_logged_at < CLOSURES_LOG_EVERY_S):
            return
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(closed.items()))
        logger.warning(
            "closed %d connection(s) for their limits or timeouts in the last %.0f s: %s",
            *(closed.total(), now - self._closures_logged_at, reasons),
            extra={"closed_connections": dict(closed)},
        )
        self._closures_logged = Counter(self.server_state.closed_for)
        self._closures_logged_at = now

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drain (steps 3 to 5 of the module docstring); replaces uvicorn's."""
        self._begin_drain()
        accepted, left_queued = await self._stop_accepting(sockets or [])
        for connection in self._connections():
            connection.begin_drain()
        cut = await self._finish_requests()
        for server in self.servers:
            try:
                await asyncio.wait_for(server.wait_closed(), timeout=1)
            except TimeoutError:
                logger.warning("the listening socket did not close within 1 s")
        if not self.force_exit:
            await self.lifespan.shutdown()
        self._log_closures(force=True)
        if not self._status.failed:
            self._log_drain(accepted, left_queued, cut)

    async def _stop_accepting(self, sockets: list[socket.socket]) -> tuple[int, int]:
        """Accept what waits in the queue, close the socket; (accepted, left behind)."""
        waiting: list[socket.socket] = []
        left = 0
        for sock in sockets:
            accepted, arrived = stop_listening(sock)
            waiting.extend(accepted)
            left += arrived
        for server in self.servers:
            server.close()
        for sock in sockets:
            sock.close()  # already detached by the loop's server; closes it otherwise
        # Together: over TLS each one completes its handshake first (within its timeout).
        await asyncio.gather(*(self._serve_accepted(connection) for connection in waiting))
        return len(waiting), left

    async def _serve_accepted(self, connection: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(self._new_connection, connection, **self._tls)
        except OSError:  # reset meanwhile, or (TLS) a failed or timed-out handshake
            connection.close()

    def _new_connection(self) -> WorkerConnection:
        return WorkerConnection(
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )

    async def _finish_requests(self) -> int:
        """Wait for the connections to finish within the drain timeout; how many had a
        request under way when the rest was cut."""
        state = self.server_state
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._drain_timeout
        while not self.force_exit:
            now = state.clock = loop.time()
            if now >= deadline or not (
                state.connections or state.tasks or self._handshakes_under_way(now)
            ):
                break
            for connection in self._connections():
                connection.check_timeouts(now)
            await asyncio.sleep(DRAIN_POLL_S)
        remaining = self._connections()
        cut = sum(connection.in_progress() for connection in remaining)
        for connection in remaining:
            connection.transport.close()
        if state.tasks:
            logger.error("cancelling %d request(s) running at the drain timeout", len(state.tasks))
            for task in state.tasks:
                task.cancel(msg="the drain timeout is over")
        return cut

    def _handshakes_under_way(self, now: float) -> bool:
        """Whether a TLS handshake that may still complete is under way: its client may
        already have sent a request (TLS 1.3 lets it, before the server's last step)."""
        timeout = self._tls.get("ssl_handshake_timeout", 0.0)
        handshaking = self.server_state.handshaking
        if not any(now - c.since < timeout for c in handshaking):
            return False
        if now >= self._next_collect:
            # A failed handshake (a client that connected and left) is never reported to
            # its protocol: only the cycle collector frees it, and with it the entry.
            gc.collect()
            self._next_collect = now + HANDSHAKE_COLLECT_S
            return any(now - c.since < timeout for c in handshaking)
        return True

    def _log_drain(self, accepted: int, left_queued: int, cut: int) -> None:
        signalled = self._signalled_at or time.monotonic()
        seconds = time.monotonic() - signalled
        answered = self.server_state.total_requests - self._requests_at_signal
        reset = left_queued + cut
        logger.log(
            logging.WARNING if reset else logging.INFO,
            "drained in %.2f s: %d request(s) answered after the signal, %d waiting "
            "connection(s) accepted before the listening socket closed; %d connection(s) "
            "reset (%d arrived as it closed, %d cut at the drain timeout). Connections "
            "refused after it closed are not seen by the server.",
            *(seconds, answered, accepted, reset, left_queued, cut),
            extra={
                "drain_seconds": round(seconds, 3),
                "answered_after_signal": answered,
                "accepted_at_close": accepted,
                "reset_at_close": left_queued,
                "cut_at_timeout": cut,
            },
        )


def uvicorn_config(app: ServerApp, settings: Settings) -> uvicorn.Config:
    """How uvicorn serves ``app``: uvloop and httptools with our connection protocol,
    our logging, the keep-alive timeout of ``serve.connections``.

    ``proxy_headers`` is off: uvicorn would otherwise trust ``X-Forwarded-For`` from
    127.0.0.1 and rewrite ``scope["client"]``, which the connection recycler keys on.
    """
    return uvicorn.Config(
        app.asgi,
        loop="uvloop",
        http=WorkerConnection,
        ws="none",
        interface="asgi3",  # auto-detection mistakes a bound async method for ASGI 2
        lifespan="on",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        # uvicorn annotates int but uses it as a loop timer delay, which takes floats.
        timeout_keep_alive=settings.serve.connections.keep_alive_s,  # type: ignore[arg-type]
        backlog=BACKLOG,
    )
