"""What the supervisor and its worker processes agree on.

* ``ServerApp`` and ``ServerAppFactory``: the app a worker runs. The factory (by default
  ``modelport.bootstrap:build_server_app``) is named in the worker spec as
  ``module:attribute`` and called once per worker process.
* ``WorkerSpec``: the JSON file (mode 0600, in the supervisor's private directory) that
  tells a worker what to serve and on which inherited file descriptor to listen.
* The pins file: the supervisor resolves registry references while the first workers
  import their libraries, and writes the pinned sources to ``pins.json``; those
  workers wait for it and load without a database round trip (replacements for
  crashed workers resolve for themselves).
* The status line protocol: each worker writes exactly one line on its channel
  (``modelport.server.process.channel``), ``ready`` once it accepts requests, or
  ``failed <message>`` (then exits with ``STARTUP_FAILED``); ``StatusPipe`` writes it.

This module is imported by the supervisor, so it must stay light: stdlib and our
settings only (no uvicorn, starlette or prometheus_client).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modelport.config import Settings
from modelport.serving.sources import ModelSource

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application (structurally the same as ``starlette.types.ASGIApp``)."""

DEFAULT_FACTORY = "modelport.bootstrap:build_server_app"
# Builds the app of a worker's shadow process (``shadow_worker``): same signature.
SHADOW_FACTORY = "modelport.bootstrap:build_shadow_app"
# Imports the default app's libraries while a new worker waits for its start message.
DEFAULT_PRELOAD = "modelport.bootstrap:preload_server_app"
STARTUP_FAILED = 3  # a worker's exit code when it could not start (uvicorn's too)
READY = "ready"
FAILED = "failed"
SPEC_VERSION = 1


class ServerApp(Protocol):
    """The app one worker process serves.

    ``asgi`` handles the ``lifespan`` scope: on startup it loads the models, then calls
    the factory's ``on_ready()``; or it calls ``on_failed(message)`` and fails the
    startup (``lifespan.startup.failed``). The supervisor prints that message as the
    command's one error line, so the app should not log it as well.
    """

    @property
    def asgi(self) -> ASGIApp:
        """The ASGI application."""
        ...

    def begin_drain(self) -> None:
        """Report not ready from now on: the worker is about to stop.

        Called from a signal handler in the worker's event-loop thread: it must be
        quick and must not block.
        """
        ...


class ServerAppFactory(Protocol):
    """Builds the app of one worker process (``modelport.bootstrap.build_server_app``)."""

    def __call__(
        self,
        settings: Settings,
        sources: Sequence[ModelSource],
        *,
        worker_index: int,
        workers: int,
        on_ready: Callable[[], None],
        on_failed: Callable[[str], None],
    ) -> ServerApp:
        """The app for worker ``worker_index`` of ``workers``."""
        ...


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs, written once by the supervisor."""

    settings: dict[str, Any]
    sources: list[dict[str, Any]]
    factory: str
    workers: int
    listen_fd: int

    @classmethod
    def build(
        cls, settings: Settings, sources: Sequence[ModelSource], factory: str, listen_fd: int
    ) -> WorkerSpec:
        """The spec for serving ``sources`` with ``settings``."""
        dumped = settings.model_dump(mode="json")
        if settings.api_key is not None:
            # JSON masks a SecretStr ("**********"); the worker needs the key itself to
            # reach the control plane. The spec file is this user's alone, as the
            # database URL (with its password) in it is.
            dumped["api_key"] = settings.api_key.get_secret_value()
        return cls(
            settings=dumped,
            sources=[source.to_dict() for source in sources],
            factory=factory,
            workers=settings.serve.workers,
            listen_fd=listen_fd,
        )

    def write(self, path: Path) -> None:
        """Write the spec readable by this user only; ``path`` must not exist yet."""
        data = {
            "version": SPEC_VERSION,
            "settings": self.settings,
            "sources": self.sources,
            "factory": self.factory,
            "workers": self.workers,
            "listen_fd": self.listen_fd,
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file)

    @classmethod
    def read(cls, path: Path) -> WorkerSpec:
        """Read a spec written by ``write``."""
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != SPEC_VERSION:
            raise ValueError(f"unsupported worker spec version {data.get('version')!r}")
        return cls(
            settings=dict(data["settings"]),
            sources=list(data["sources"]),
            factory=str(data["factory"]),
            workers=int(data["workers"]),
            listen_fd=int(data["listen_fd"]),
        )

    def model_sources(self) -> list[ModelSource]:
        """The sources as objects."""
        return [ModelSource.from_dict(source) for source in self.sources]


PINS_FILE = "pins.json"
_PIN_POLL_S = 0.005


def write_pins(path: Path, sources: Sequence[ModelSource]) -> None:
    """Write the pinned sources atomically (a reader never sees half a file)."""
    staging = path.with_suffix(".tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump([source.to_dict() for source in sources], file)
    os.replace(staging, path)


def wait_for_pins(path: Path, parent_pid: int) -> list[ModelSource] | None:
    """The pinned sources once the supervisor has written them; None if it died first."""
    while not path.exists():
        if os.getppid() != parent_pid:
            return None
        time.sleep(_PIN_POLL_S)
    data = json.loads(path.read_text(encoding="utf-8"))
    return [ModelSource.from_dict(item) for item in data]


def status_line(status: str, message: str = "") -> bytes:
    """One status line; the message is flattened to a single line."""
    text = " ".join(message.split())
    return f"{status} {text}\n".encode() if text else f"{status}\n".encode()


def parse_status(line: bytes) -> tuple[str, str]:
    """``(status, message)`` from a status line (``("", "")`` when it is empty)."""
    status, _, message = line.decode("utf-8", "replace").strip().partition(" ")
    return status, message


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
