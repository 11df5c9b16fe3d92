"""One worker process of the server: ``python -m modelport.server.process.worker --channel FD``.

Spawned by the supervisor (``modelport.server.process.supervisor``) or, for worker 0, by the
CLI before it parsed its options (``modelport.server.process.prespawn``). It imports the app's
libraries, waits for its start message on the channel (``modelport.server.process.channel``:
the spec's path, its index, the listening socket), logs JSON to stderr, builds the app
with the spec's factory and serves it with uvicorn on that socket (with TLS when
``serve.tls`` names a certificate: ``modelport.server.process.tls``). It writes one line
on the channel: ``ready`` once uvicorn serves (models loaded and the socket
registered), or ``failed <message>`` and exits with code 3.

SIGTERM (or SIGINT) starts the drain (``modelport.server.process.worker_server``):
readiness turns 503 at once (``begin_drain``), answers close their connections, and
after ``serve.drain_delay_s`` the worker stops accepting, answers what still arrives on
open connections, lets requests in progress finish within ``serve.drain_timeout_s``,
runs the lifespan shutdown, logs what the drain did, and the process exits 0. A worker
whose supervisor disappears (killed with SIGKILL) drains the same way.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import resource
import shutil
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

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
    STARTUP_FAILED,
    ServerApp,
    ServerAppFactory,
    StatusPipe,
    WorkerSpec,
    wait_for_pins,
)
from modelport.server.process.tls import server_context
from modelport.server.process.worker_server import WorkerServer, uvicorn_config

logger = logging.getLogger("modelport.server.process.worker")


class _QuietAfterFailure(logging.Filter):
    """Drops uvicorn's startup-failure lines once the failure was reported: the
    supervisor prints the message as the command's single error line."""

    def __init__(self, status: StatusPipe) -> None:
        super().__init__()
        self._status = status

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self._status.failed and record.name.startswith("uvicorn"))


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
    serve_settings = settings.serve
    try:
        context = server_context(serve_settings.tls) if serve_settings.tls.enabled else None
    except ModelportError as exc:  # the files changed since the supervisor read them
        status.fail(exc.message)
        return STARTUP_FAILED
    listener = socket.socket(fileno=spec.listen_fd)  # family and type from the socket
    _allow_connections(serve_settings.connections.max_connections)
    server = WorkerServer(
        uvicorn_config(app, settings),
        app,
        status,
        limits=serve_settings.connections,
        drain_delay_s=serve_settings.drain_delay_s,
        drain_timeout_s=serve_settings.drain_timeout_s,
        tls=context,
    )
    # The worker's own threads (the prediction log's writer, the drift sketches) run Python
    # too: with the default 5 ms switch interval a request arriving while one of them holds
    # the GIL waits up to 5 ms for the event loop. 0.5 ms caps that wait at a cost the
    # benchmark does not see (a switch is only forced when another thread waits).
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    # A request allocates a few dozen container objects that live until it is answered,
    # so at Python's default (a young collection every 700 allocations) a busy worker
    # ran ~200 young collections a second, each walking the objects of every request in
    # flight: ~2.5% of its CPU, more with the prediction log on (its queued requests
    # survive the young collections). Rarer collections walk about as many objects
    # each, because the in-flight set, not the garbage, sets their cost.
    gc.set_threshold(_YOUNG_COLLECTION_ALLOCATIONS, *gc.get_threshold()[1:])
    try:
        server.run(sockets=[listener])
    except SystemExit as exc:  # uvicorn exits 3 when the lifespan startup fails
        status.fail(f"worker {index} could not start (exit code {exc.code})")
        return STARTUP_FAILED
    if server.orphaned:
        _remove_private_directory(spec_path)
    status.fail(f"worker {index} stopped before it was ready")  # no-op once ready
    return STARTUP_FAILED if status.failed else 0


_SWITCH_INTERVAL_S = 0.0005
_YOUNG_COLLECTION_ALLOCATIONS = 10_000
_SPARE_FILES = 256  # the worker's own files: libraries, the metrics directory, sockets


def _allow_connections(connections: int) -> None:
    """Raise the soft limit on open files so that ``connections`` connections fit (up
    to the hard limit; beyond it, new connections fail to be accepted, and say so)."""
    wanted = connections + _SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        logger.warning(
            "the open-files limit (%d) is below max_connections (%d) + %d: raise it "
            "(ulimit -n) or lower serve.connections.max_connections",
            *(hard, connections, _SPARE_FILES),
        )


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
