"""One worker process of the server: ``python -m modelport.server.process.worker --channel FD``.

Spawned by the supervisor (``modelport.server.process.supervisor``) or, for worker 0, by the
CLI before it parsed its options (``modelport.server.process.prespawn``). It imports the app's
libraries, waits for its start message on the channel (``modelport.server.process.channel``:
the spec's path, its index, the listening socket), logs JSON to stderr, builds the app
with the spec's factory and serves it with uvicorn on that socket. It writes one line
on the channel: ``ready`` once uvicorn serves (models loaded and the socket
registered), or ``failed <message>`` and exits with code 3.

SIGTERM (or SIGINT) starts the drain: readiness turns 503 at once (``begin_drain``),
uvicorn stops accepting, closes idle keep-alive connections, lets in-flight requests
finish within ``serve.drain_timeout_s``, runs the lifespan shutdown, and the process
exits 0. A worker whose supervisor disappears (killed with SIGKILL) drains the same way.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from modelport.config import Settings
from modelport.errors import ModelportError
from modelport.server.process.channel import (
    CHANNEL_OPTION,
    MULTIPROCESS_ENV,
    PRIVATE_DIRECTORY_PREFIX,
    WORKER_MODULE,
    receive_start,
)
from modelport.server.process.logs import install_json_logging
from modelport.server.process.spec import (
    DEFAULT_PRELOAD,
    FAILED,
    READY,
    STARTUP_FAILED,
    ServerApp,
    ServerAppFactory,
    WorkerSpec,
    status_line,
    wait_for_pins,
)

logger = logging.getLogger("modelport.server.process.worker")


class StatusPipe:
    """The worker's one status line to the supervisor; the first report wins.

    ``ready`` is written once both the app has called ``on_ready`` and uvicorn listens,
    in either order (an app may finish its lifespan startup first and load models in
    the background). ``on_ready`` and ``on_failed`` may be called from any thread.
    """

    def __init__(self, fd: int | None) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._app_ready = False
        self._listening = False
        self.reported: str | None = None

    @property
    def failed(self) -> bool:
        """True once a failure was reported."""
        return self.reported == FAILED

    def app_ready(self) -> None:
        """The app has loaded its models (the factory's ``on_ready``)."""
        self._app_ready = True
        self._report_ready()

    def listening(self) -> None:
        """uvicorn has started and accepts connections."""
        self._listening = True
        self._report_ready()

    def fail(self, message: str) -> None:
        """Report that the worker cannot start, and why (shown to the user)."""
        self._report(FAILED, message)

    def _report_ready(self) -> None:
        if self._app_ready and self._listening:
            self._report(READY, "")

    def _report(self, status: str, message: str) -> None:
        with self._lock:
            if self.reported is not None:
                return
            self.reported = status
            fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.write(fd, status_line(status, message))
        except OSError:  # the supervisor is gone; the parent check ends this worker
            pass
        finally:
            os.close(fd)


class _QuietAfterFailure(logging.Filter):
    """Drops uvicorn's startup-failure lines once the failure was reported: the
    supervisor prints the message as the command's single error line."""

    def __init__(self, status: StatusPipe) -> None:
        super().__init__()
        self._status = status

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self._status.failed and record.name.startswith("uvicorn"))


class WorkerServer(uvicorn.Server):
    """uvicorn's server with modelport's drain, readiness and orphan handling."""

    def __init__(
        self,
        config: uvicorn.Config,
        app: ServerApp,
        status: StatusPipe,
        *,
        drain_delay_s: float = 0.0,
    ) -> None:
        super().__init__(config)
        self._app = app
        self._status = status
        self._parent = os.getppid()
        self._drain_delay = drain_delay_s
        self._exit_at: float | None = None
        self.orphaned = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start draining: readiness first, then (after ``drain_delay_s``, during which
        requests are still accepted) uvicorn's graceful shutdown. A second Ctrl+C stops
        at once.

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
        """uvicorn's startup (lifespan, then listen), then report ready."""
        await super().startup(sockets=sockets)
        if self.started:
            self._status.listening()

    async def on_tick(self, counter: int) -> bool:
        """uvicorn's tick (every 0.1 s); stop after a failure, drain when orphaned."""
        if self._status.failed:  # on_failed was called after the lifespan startup
            self.should_exit = True
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self.should_exit = True  # the drain delay is over: stop accepting
        if counter % 10 == 0 and not self.should_exit and os.getppid() != self._parent:
            logger.warning("the supervisor is gone; draining")
            self.orphaned = True
            self._begin_drain()
            self.should_exit = True
        return await super().on_tick(counter)

    def _begin_drain(self) -> None:
        try:
            self._app.begin_drain()
        except Exception:  # a signal handler must not raise into the event loop
            logger.exception("begin_drain failed")


def load_factory(name: str) -> ServerAppFactory:
    """The factory named ``module:attribute``."""
    factory: ServerAppFactory = _attribute(name)
    return factory


def load_preload(name: str) -> Callable[[], None]:
    """The app's import warmer named ``module:attribute``."""
    preload: Callable[[], None] = _attribute(name)
    return preload


def _attribute(name: str) -> Any:
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{name!r} is not of the form module:attribute")
    return getattr(importlib.import_module(module_name), attribute)


def uvicorn_config(app: ServerApp, settings: Settings) -> uvicorn.Config:
    """How uvicorn serves ``app``: uvloop and httptools, our logging, our drain timeout.

    ``proxy_headers`` is off: uvicorn would otherwise trust ``X-Forwarded-For`` from
    127.0.0.1 and rewrite ``scope["client"]``, which the connection recycler keys on.
    """
    return uvicorn.Config(
        app.asgi,
        loop="uvloop",
        http="httptools",
        ws="none",
        interface="asgi3",  # auto-detection mistakes a bound async method for ASGI 2
        lifespan="on",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        # uvicorn annotates int but uses it as an asyncio timeout, which takes floats.
        timeout_graceful_shutdown=settings.serve.drain_timeout_s,  # type: ignore[arg-type]
        timeout_keep_alive=5,
    )


def _build(
    spec: WorkerSpec, index: int, status: StatusPipe, pins: Path | None
) -> tuple[ServerApp, Settings]:
    settings = Settings.model_validate(spec.settings)  # every field set: the parent's win
    factory = load_factory(spec.factory)  # imports the app's libraries
    sources = spec.model_sources()
    if pins is not None:  # the supervisor resolves while we imported; take its pins
        pinned = wait_for_pins(pins, os.getppid())
        if pinned is None:
            raise ModelportError("the supervisor stopped before the worker started")
        sources = pinned
    app = factory(
        settings,
        sources,
        worker_index=index,
        workers=spec.workers,
        on_ready=status.app_ready,
        on_failed=status.fail,
    )
    return app, settings


def serve(
    spec: WorkerSpec, index: int, status: StatusPipe, spec_path: Path, pins: Path | None = None
) -> int:
    """Serve until drained; the process's exit code."""
    try:
        app, settings = _build(spec, index, status, pins)
    except ModelportError as exc:
        status.fail(exc.message)
        return STARTUP_FAILED
    except Exception as exc:
        logger.exception("worker %d could not build the app", index)
        status.fail(f"worker {index} could not start: {type(exc).__name__}: {exc}")
        return STARTUP_FAILED
    if settings.debug:
        logging.getLogger().setLevel(logging.INFO)
    listener = socket.socket(fileno=spec.listen_fd)  # family and type from the socket
    server = WorkerServer(
        uvicorn_config(app, settings), app, status, drain_delay_s=settings.serve.drain_delay_s
    )
    try:
        server.run(sockets=[listener])
    except SystemExit as exc:  # uvicorn exits 3 when the lifespan startup fails
        status.fail(f"worker {index} could not start (exit code {exc.code})")
        return STARTUP_FAILED
    if server.orphaned:
        _remove_private_directory(spec_path)
    status.fail(f"worker {index} stopped before it was ready")  # no-op once ready
    return STARTUP_FAILED if status.failed else 0


def _remove_private_directory(inside: Path) -> None:
    """Remove the supervisor's directory, which holds ``inside`` (the spec, with settings
    such as the database URL, or the metrics folder), when the supervisor died without
    doing it; any orphaned worker may."""
    directory = inside.resolve().parent
    if directory.name.startswith(PRIVATE_DIRECTORY_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``--channel FD`` (see ``modelport.server.process.channel``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != CHANNEL_OPTION or not args[1].isdigit():
        print(f"usage: python -m {WORKER_MODULE} {CHANNEL_OPTION} FD", file=sys.stderr)
        return 2
    channel = socket.socket(fileno=int(args[1]))
    _import_default_app()  # while the supervisor may still be reading its settings
    try:
        start = receive_start(channel)
    except (OSError, ValueError, KeyError) as exc:
        print(f"worker: bad start message: {exc}", file=sys.stderr)
        return STARTUP_FAILED
    if start is None:  # the supervisor is gone (killed before it could clean up)
        metrics = os.environ.get(MULTIPROCESS_ENV)
        if metrics:
            _remove_private_directory(Path(metrics))
        return 0
    status = StatusPipe(channel.detach())
    index = start.index
    # Our own INFO lines (models served, swaps, access log); other libraries' warnings.
    handler = install_json_logging(logging.WARNING, fields={"pid": os.getpid(), "worker": index})
    handler.addFilter(_QuietAfterFailure(status))
    logging.getLogger("modelport").setLevel(logging.INFO)
    try:
        spec = replace(WorkerSpec.read(start.spec_path), listen_fd=start.listen_fd)
    except (OSError, ValueError, KeyError) as exc:
        status.fail(f"worker {index} cannot read its spec {start.spec_path}: {exc}")
        return STARTUP_FAILED
    with contextlib.suppress(KeyboardInterrupt):
        return serve(spec, index, status, start.spec_path, start.pins_path)
    return 0


def _import_default_app() -> None:
    """Import the default app's libraries now, through its factory's ``preload``: a
    spawned worker waits for its start message meanwhile. An app that cannot be imported
    fails later, with its message."""
    with contextlib.suppress(Exception):
        load_preload(DEFAULT_PRELOAD)()


if __name__ == "__main__":
    sys.exit(main())
