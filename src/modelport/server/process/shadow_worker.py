"""A worker's shadow process: ``python -m modelport.server.process.shadow_worker --channel
FD STOP``.

Started by a serving worker (``modelport.server.process.shadow_link``) with one end of a
socket pair for the copies (``FD``) and one of a pair that only ever ends (``STOP``).
The first frame on ``FD`` is the start message (the worker's settings, sources
and index); the process builds the app in the shadow role (``SHADOW_FACTORY``: the same
routes, deployments followed the same way, the same prediction log, metrics and drift,
but its shadow copies answered here) and runs its lifespan startup, all in the idle
scheduling class (``SCHED_IDLE``, every thread), and answers the copies that follow, each
frame one copy (``serving.routing.shadow_wire``). It reads a frame only while fewer
than ``BACKLOG`` copies wait in it and the rest of the machine leaves CPU to spare
(``serve.shadow_busy_limit``, ``modelport.priority.CpuGate``), so a shadow that cannot
keep up holds the copies back in the socket and the worker drops the excess, without
reading them first.

The end of the socket (the worker stopping, or dead) ends it: it answers the copies it
took, runs the lifespan shutdown (the prediction log written) and exits 0. A stopping
worker closes its end of ``STOP`` first: from then on the process reads on to the end of
the copies whatever the CPU gate says, so that every copy sent is answered. It ignores
SIGINT and SIGTERM: its worker decides when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from modelport.config import Settings
from modelport.monitoring.multiprocess import forget_worker
from modelport.priority import CpuGate, go_idle
from modelport.server.process.channel import CHANNEL_OPTION, MULTIPROCESS_ENV
from modelport.server.process.logs import install_json_logging
from modelport.server.process.spec import SHADOW_FACTORY, STARTUP_FAILED, ASGIApp, ServerApp
from modelport.server.process.worker import load_factory
from modelport.serving.routing.shadow import CONCURRENCY
from modelport.serving.routing.shadow_wire import HEADER, decode_copy
from modelport.serving.sources import ModelSource
from modelport.serving.target import InferenceRequest

logger = logging.getLogger("modelport.server.process.shadow")

BACKLOG = 2 * CONCURRENCY  # copies taken and not answered, beyond which reading waits
_WAIT_S = 0.01  # between two looks at the backlog and the gate


class ShadowApp(ServerApp, Protocol):
    """The app in the shadow role: answers copies instead of HTTP requests."""

    def take_shadow_copy(self, deployment: str, arm: str, request: InferenceRequest) -> bool:
        """Answer a copy for shadow ``arm`` of ``deployment``; False when dropped."""
        ...

    @property
    def shadow_backlog(self) -> int:
        """Copies taken and not answered yet."""
        ...


class LifespanStartupError(Exception):
    """The app's lifespan startup failed (its message was logged)."""


@contextlib.asynccontextmanager
async def lifespan(asgi: ASGIApp) -> AsyncIterator[None]:
    """Run ``asgi``'s lifespan startup, and its shutdown on the way out (ASGI 3)."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}

    async def send(message: Any) -> None:
        await from_app.put(message)

    async def run() -> None:
        await asgi(scope, to_app.get, send)

    task = asyncio.get_running_loop().create_task(run())
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        with contextlib.suppress(Exception):
            await task
        raise LifespanStartupError(started.get("message", ""))
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await task


async def answer_copies(
    app: ShadowApp, sock: socket.socket, stop: socket.socket, gate: CpuGate
) -> None:
    """Start the app, answer the copies until the socket ends, stop the app. Copies are
    read while the backlog has room and ``gate`` is open, or once ``stop`` ended."""
    async with lifespan(app.asgi):
        if go_idle():  # again: every thread the app started, whoever started it
            logger.info("shadow process %d answers copies at idle priority", os.getpid())
        stopping = _stopping(stop)
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            while True:
                while app.shadow_backlog >= BACKLOG or not (stopping.is_set() or gate.open()):
                    await asyncio.sleep(_WAIT_S)
                try:
                    header = await reader.readexactly(HEADER.size)
                    body = await reader.readexactly(HEADER.unpack(header)[0])
                except asyncio.IncompleteReadError:  # the worker is done (or gone)
                    break
                try:
                    deployment, arm, request = decode_copy(body)
                except Exception:  # a copy we cannot read must not stop the others
                    logger.exception("shadow process: a copy could not be decoded")
                    continue
                app.take_shadow_copy(deployment, arm, request)
        finally:
            writer.close()


def _stopping(stop: socket.socket) -> asyncio.Event:
    """Set once the worker closed its end of ``stop`` (it is stopping)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def ended() -> None:
        loop.remove_reader(stop.fileno())
        stopping.set()

    stop.setblocking(False)
    loop.add_reader(stop.fileno(), ended)  # nothing is ever written: readable is the end
    return stopping


def read_start(sock: socket.socket) -> dict[str, Any] | None:
    """The start message, or None when the worker closed the socket first."""
    header = _read_exactly(sock, HEADER.size)
    if header is None:
        return None
    body = _read_exactly(sock, HEADER.unpack(header)[0])
    if body is None:
        return None
    start: dict[str, Any] = pickle.loads(body)  # noqa: S301 (our own worker, a private socket)
    return start


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``--channel FD``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != CHANNEL_OPTION or not all(a.isdigit() for a in args[1:]):
        print(f"usage: python -m {__spec__.name} {CHANNEL_OPTION} FD STOP_FD", file=sys.stderr)
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):  # the worker decides (see above)
        signal.signal(signum, signal.SIG_IGN)
    go_idle()  # from the start: loading the models must not slow the serving workers either
    sock, stop = (socket.socket(fileno=int(fd)) for fd in args[1:])
    start = read_start(sock)
    if start is None:
        return 0
    index = int(start["index"])
    install_json_logging(
        logging.WARNING, fields={"pid": os.getpid(), "worker": index, "role": "shadow"}
    )
    logging.getLogger("modelport").setLevel(logging.INFO)
    settings = Settings.model_validate(start["settings"])
    sources = [ModelSource.from_dict(source) for source in start["sources"]]
    failures: list[str] = []
    try:
        app: ShadowApp = load_factory(SHADOW_FACTORY)(  # type: ignore[assignment]
            settings,
            sources,
            worker_index=index,
            workers=int(start["workers"]),
            on_ready=lambda: None,
            on_failed=failures.append,
        )
        try:
            _run(answer_copies(app, sock, stop, CpuGate(settings.serve.shadow_busy_limit)))
        finally:
            _forget_own_gauges()
    except LifespanStartupError:
        why = failures[0] if failures else "see the lines above"
        logger.error("shadow process of worker %d could not start: %s", index, why)
        return STARTUP_FAILED
    except Exception:
        logger.exception("shadow process of worker %d failed", index)
        return STARTUP_FAILED
    return 0


def _forget_own_gauges() -> None:
    """Remove this process's live gauges (models ready, registry reachable, ...) from the
    server's metrics directory on the way out: the worker forgets them when it stops or
    reaps its shadow process, but a worker that was killed cannot, and its shadow process
    still exits (its socket ended), so it cleans up after itself."""
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        forget_worker(Path(directory), os.getpid())


def _run(main: Any) -> None:
    """Run ``main`` on uvloop when it is installed (as the workers do)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover (a dependency of the server)
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


if __name__ == "__main__":
    sys.exit(main())
