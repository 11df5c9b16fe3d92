"""The server's supervisor: the server's port, N worker processes serving on it.

``run_server`` binds the port (port 0 picks a free one; ``modelport.server.process.listeners``
says which socket each worker accepts on), writes the worker spec into a private
directory (0700; its ``metrics`` folder is the ``PROMETHEUS_MULTIPROC_DIR`` of the
workers), and starts the workers as described in ``modelport.server.process.channel``:
spawned, never forked (each imports onnxruntime, uvloop and prometheus_client
freshly), then sent the spec's path and their listening socket over their channel, on
which each reports ``ready`` or ``failed <message>`` (see ``modelport.server.process.spec``).
Worker 0 may have been spawned by the CLI before the settings were read
(``modelport.server.process.prespawn``); it is adopted with its directory.

* Startup: the TLS files, when ``serve.tls`` names them, are checked first
  (``modelport.server.process.tls``); once every worker is ready, one line goes to
  stdout: ``modelport serving N model(s) on http://HOST:PORT with W worker(s)``
  (``https://`` with TLS). If a worker
  fails first, the others are stopped and ``ModelportError(message)`` is raised (the
  CLI prints ``error: <message>`` and exits 1).
* Running: a worker that exits (crash, OOM kill, ``os._exit``) is logged with its pid
  and exit code and replaced at once by the spare worker, spawned and imported ahead
  (``prespawn.SpareWorker``, ``serve.spare_worker``), which only has to load the
  models; repeated crashes back off from 0.5 s, doubling up to 10 s, and the back-off
  resets once a worker has stayed up 30 s. New connections go to the other workers
  meanwhile (``listeners`` says what happens to those the dead worker had not
  accepted yet). The dead worker's live Prometheus gauges are removed
  (``mark_process_dead``). A new spare is spawned once every worker is ready.
* SIGTERM or SIGINT: the supervisor stops accepting on its own socket and sends SIGTERM
  to every worker, which stop accepting, finish in-flight requests within
  ``serve.drain_timeout_s`` and exit. Workers still running ``drain_timeout_s + 5`` s
  later are killed. The private directory is removed and ``run_server`` returns 0.
  A SIGINT while draining (a second Ctrl+C) kills the workers at once and returns 130.

The workers run in their own session, so a Ctrl+C in the terminal reaches only the
supervisor, which alone decides how they stop; a worker whose supervisor disappears
(SIGKILL) drains by itself and removes the private directory. Worker stdout goes to
stderr, so stdout carries only the line above. This module stays light for a fast
cold start: stdlib and our settings, and prometheus_client only once a worker died.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from modelport.config import Settings
from modelport.errors import ModelportError
from modelport.monitoring.multiprocess import forget_worker
from modelport.server.process import prespawn
from modelport.server.process.channel import (
    METRICS_DIRECTORY,
    make_private_directory,
    send_start,
    spawn_worker,
    stop_unstarted,
)
from modelport.server.process.listeners import Listeners, authority
from modelport.server.process.logs import json_handler
from modelport.server.process.signals import SupervisorSignals
from modelport.server.process.slots import WorkerSlot, backoff, describe_exit
from modelport.server.process.spec import (
    DEFAULT_FACTORY,
    FAILED,
    PINS_FILE,
    READY,
    WorkerSpec,
    parse_status,
    write_pins,
)
from modelport.serving.sources import ModelSource

Resolver = Callable[[Sequence[ModelSource]], Sequence[ModelSource]]

KILL_SLACK_S = 5.0
FORCED_EXIT = 130

logger = logging.getLogger("modelport.server.process.supervisor")


def run_server(
    settings: Settings,
    sources: Sequence[ModelSource],
    *,
    factory: str = DEFAULT_FACTORY,
    announce: Callable[[str], None] | None = None,
    resolver: Resolver | None = None,
) -> int:
    """Serve ``sources`` in the foreground until SIGTERM or SIGINT; the exit code.

    Raises ``ModelportError`` when the port cannot be bound or a worker cannot start.
    Must run in the main thread (it handles signals). ``announce`` receives the
    "serving" line (default: print it to stdout). ``resolver`` pins registry sources
    while the first workers start (see ``process``).
    """
    supervisor = Supervisor(
        settings, sources, factory=factory, announce=announce, resolver=resolver
    )
    return supervisor.run()


def serving_line(settings: Settings, models: int, port: int) -> str:
    """The line printed once every worker is ready."""
    scheme = "https" if settings.serve.tls.enabled else "http"
    url = f"{scheme}://{authority(settings.serve.host, port)}"
    workers = settings.serve.workers
    return f"modelport serving {models} model(s) on {url} with {workers} worker(s)"


def _print_line(line: str) -> None:
    with contextlib.suppress(OSError):  # stdout closed: nothing to tell
        print(line, flush=True)


class Supervisor:
    """Owns the listening socket and the worker processes (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        sources: Sequence[ModelSource],
        *,
        factory: str = DEFAULT_FACTORY,
        announce: Callable[[str], None] | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._resolver = resolver
        self._settings = settings
        self._sources = list(sources)
        self._factory = factory
        self._announce = announce or _print_line
        self._workers = [WorkerSlot(index) for index in range(settings.serve.workers)]
        self._signals = SupervisorSignals()
        self._selector = selectors.DefaultSelector()
        self._directory = Path()
        self._spec_path = Path()
        self._listeners: Listeners | None = None
        self._prespawned: prespawn.PrespawnedWorker | None = None
        self._spare: prespawn.SpareWorker | None = None

    def run(self) -> int:
        """Serve until stopped; the exit code (raises when the startup fails). Run once."""
        serve = self._settings.serve
        if serve.tls.enabled:  # a bad file fails here, before any worker starts
            from modelport.server.process.tls import server_context  # imports ssl

            server_context(serve.tls)
        listeners = Listeners.open(serve.host, serve.port, workers=serve.workers)
        handler = json_handler(fields={"pid": os.getpid()})
        logger.addHandler(handler)
        propagate, logger.propagate = logger.propagate, False
        level = logger.level
        logger.setLevel(logging.INFO)  # "worker N is serving again" is INFO
        directory: Path | None = None
        try:
            # Worker 0 may be running already (spawned by the CLI); it lives in its
            # directory.
            self._prespawned = prespawn.adopt()
            directory = self._prespawned.directory if self._prespawned else make_private_directory()
            self._directory = directory
            self._spare = prespawn.SpareWorker(directory, enabled=serve.spare_worker)
            with self._signals.installed():
                self._selector.register(self._signals.wakeup_fd, selectors.EVENT_READ)
                return self._serve(listeners)
        finally:
            listeners.close()
            self._kill_all()
            self._discard_prespawned()
            if self._spare is not None:
                self._spare.discard()
            self._selector.close()
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)

    def _serve(self, listeners: Listeners) -> int:
        self._spec_path = self._directory / "worker.json"
        self._listeners = listeners
        # Each worker's socket comes with its start message, not in the shared spec.
        spec = WorkerSpec.build(self._settings, self._sources, self._factory, listen_fd=-1)
        spec.write(self._spec_path)
        try:
            for worker in self._workers:
                self._spawn(worker, pinned=self._resolver is not None)
        except OSError as exc:
            raise ModelportError(f"cannot start a worker process: {exc}") from None
        if self._resolver is not None:
            self._pin_sources(self._resolver)
        failure = self._wait_until_ready()
        if failure is not None:
            self._stop_workers(KILL_SLACK_S)
            raise ModelportError(failure)
        if not self._signals.stop:
            self._announce(serving_line(self._settings, len(self._sources), listeners.port))
            self._supervise()
        listeners.close()  # stop accepting: only the workers' sockets remain, until they drain
        return self._drain()

    def _pin_sources(self, resolver: Resolver) -> None:
        """Resolve the registry sources (the workers import meanwhile) and hand them over."""
        try:
            pinned = resolver(self._sources)
        except BaseException:
            self._stop_workers(KILL_SLACK_S)
            raise
        write_pins(self._directory / PINS_FILE, pinned)

    def _spawn(self, worker: WorkerSlot, *, pinned: bool = False) -> None:
        process, channel = self._prespawned_or_new_worker(worker.index)
        try:
            if self._listeners is None:
                raise OSError("the server's port is not open")
            with self._listeners.for_worker() as listener:
                send_start(
                    channel,
                    spec_path=self._spec_path,
                    index=worker.index,
                    pins_path=self._directory / PINS_FILE if pinned else None,
                    listen_fd=listener.fileno(),
                )
        except OSError:
            stop_unstarted(process, channel)
            raise
        worker.process = process
        # The worker's one status line comes back on its channel.
        status_fd = channel.detach()
        os.set_blocking(status_fd, False)
        self._selector.register(status_fd, selectors.EVENT_READ, worker)
        worker.status_fd, worker.buffer, worker.ready, worker.failure = status_fd, b"", False, None
        worker.started_at, worker.restart_at = time.monotonic(), None

    def _prespawned_or_new_worker(
        self, index: int
    ) -> tuple[subprocess.Popen[bytes], socket.socket]:
        """The worker the CLI spawned first for slot 0 when it is still alive, else a new one."""
        waiting = self._prespawned
        if waiting is not None and index == 0 and waiting.process.poll() is None:
            self._prespawned = None
            return waiting.process, waiting.channel
        self._discard_prespawned()
        spare = self._spare.take() if self._spare is not None else None
        if spare is not None:
            return spare.process, spare.channel
        return spawn_worker(self._directory)

    def _discard_prespawned(self) -> None:
        waiting, self._prespawned = self._prespawned, None
        if waiting is not None:
            stop_unstarted(waiting.process, waiting.channel)

    def _wait_until_ready(self) -> str | None:
        """None once every worker is ready (or a stop was requested); else the failure."""
        while not self._signals.stop:
            for worker in self._workers:
                if worker.failure is not None:
                    return worker.failure
                if not worker.ready and not worker.alive():
                    self._read_status(worker)  # its last words may still be in the pipe
                    code = worker.process.returncode if worker.process else None
                    return worker.failure or (
                        f"worker {worker.index} exited with {describe_exit(code or 0)} "
                        "before it was ready"
                    )
            if all(worker.ready for worker in self._workers):
                return None
            self._wait(0.5)
        return None

    def _supervise(self) -> None:
        while not self._signals.stop:
            if self._spare is not None and all(worker.ready for worker in self._workers):
                self._spare.replenish()  # not while a replacement loads: it needs the CPU
            now = time.monotonic()
            for worker in self._workers:
                if worker.process is not None and not worker.alive():
                    self._replace_later(worker, now)
                elif worker.restart_at is not None and worker.restart_at <= now:
                    self._restart(worker)
            due = [w.restart_at - now for w in self._workers if w.restart_at is not None]
            self._wait(max(0.0, min([1.0, *due])))

    def _replace_later(self, worker: WorkerSlot, now: float) -> None:
        self._read_status(worker)
        assert worker.process is not None
        pid, code = worker.process.pid, worker.process.returncode
        delay = worker.exited(now)
        self._close_status(worker)
        self._mark_dead(pid)
        reason = f": {worker.failure}" if worker.failure else ""
        logger.error(
            "worker %d (pid %d) exited with %s%s; restarting it %s",
            *(
                worker.index,
                pid,
                describe_exit(code),
                reason,
                f"in {delay:.1f} s" if delay else "now",
            ),
            extra={"worker": worker.index, "worker_pid": pid, "exit_code": code},
        )

    def _restart(self, worker: WorkerSlot) -> None:
        try:
            # The pins its siblings started from: without them, a worker started again
            # would resolve its sources itself and serve a bare name's latest version
            # where they serve the deployment of that name.
            self._spawn(worker, pinned=self._resolver is not None)
        except OSError as exc:
            worker.crashes += 1
            delay = backoff(worker.crashes)
            worker.restart_at = time.monotonic() + delay
            logger.error("cannot start worker %d: %s; retrying in %.1f s", worker.index, exc, delay)

    def _wait(self, timeout: float) -> None:
        """Wait for a status line, a signal or the timeout."""
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._signals.wakeup_fd, 512):
                        pass
            else:
                self._read_status(key.data)

    def _read_status(self, worker: WorkerSlot) -> None:
        while worker.status_fd is not None:
            try:
                chunk = os.read(worker.status_fd, 4096)
            except BlockingIOError:
                return
            except ConnectionResetError:  # it died before reading its start message
                chunk = b""
            worker.buffer += chunk
            if not chunk or b"\n" in worker.buffer:
                self._on_status(worker, worker.buffer.partition(b"\n")[0])
                self._close_status(worker)

    def _on_status(self, worker: WorkerSlot, line: bytes) -> None:
        status, message = parse_status(line)
        if status == READY:
            worker.ready = True
            if worker.crashes:
                logger.info(
                    "worker %d is serving again (pid %d)",
                    *(worker.index, worker.pid),
                    extra={"worker": worker.index, "worker_pid": worker.pid},
                )
        elif status == FAILED:
            worker.failure = message or f"worker {worker.index} could not start"

    def _close_status(self, worker: WorkerSlot) -> None:
        if worker.status_fd is not None:
            self._selector.unregister(worker.status_fd)
            os.close(worker.status_fd)
            worker.status_fd = None

    def _mark_dead(self, pid: int) -> None:
        """Remove the dead worker's live gauges from the Prometheus directory."""
        forget_worker(self._directory / METRICS_DIRECTORY, pid)

    def _drain(self) -> int:
        """SIGTERM every worker, wait for them, kill the stragglers; the exit code."""
        interrupts = self._signals.interrupts
        if self._spare is not None:
            self._spare.discard()
        for worker in self._workers:
            worker.restart_at = None
        serve = self._settings.serve
        forced = not self._stop_workers(
            serve.drain_delay_s + serve.drain_timeout_s + KILL_SLACK_S,
            give_up=lambda: self._signals.interrupts > interrupts,
        )
        if forced and self._signals.interrupts > interrupts:
            return FORCED_EXIT
        return 0

    def _stop_workers(self, timeout: float, give_up: Callable[[], bool] = lambda: False) -> bool:
        """SIGTERM the workers and wait; True when all stopped before ``timeout`` or
        ``give_up()``, False when the rest had to be killed."""
        for worker in self._workers:
            if worker.alive():
                assert worker.process is not None
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(worker.alive() for worker in self._workers):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or give_up():
                stragglers = [w.pid for w in self._workers if w.alive()]
                logger.warning("killing workers that did not stop: pids %s", stragglers)
                self._kill_all()
                return False
            self._wait(min(remaining, 0.5))
        return True

    def _kill_all(self) -> None:
        for worker in self._workers:
            if worker.alive():
                assert worker.process is not None
                worker.process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.process.wait(timeout=KILL_SLACK_S)
            self._close_status(worker)
