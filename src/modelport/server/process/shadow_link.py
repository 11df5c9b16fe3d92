"""A worker's shadow process: where its deployments' shadow copies are answered.

A shadow arm must never slow the caller, and a copy answered in the worker's event loop
takes the same CPU the live arms need: on a busy machine, a shadow as slow as the
champion would cost the champion's callers as much again. So each serving worker hands
its copies to a process of its own (``modelport.server.process.shadow_worker``), which
builds the same app in the shadow role (the deployments followed the same way, the same
prediction log, metrics and drift wrappers) and answers them at the kernel's idle
priority (``SCHED_IDLE``): it runs only on CPU the serving processes leave free and is
preempted as soon as they need it. What it cannot keep up with is dropped and counted
(``modelport_shadow_dropped_total``), here or there.

On the request path a copy costs one small pickle and a list append: copies are written
to the process's socket together every ``FLUSH_S``, never waiting (a socket that does
not take them all keeps the rest here, up to ``MAX_BUFFERED_BYTES``; beyond that, new
copies are dropped). The process starts when the worker first follows a deployment
with a shadow arm; if it dies, copies are dropped until a new one has started (after a
back-off). When the worker stops, it closes the stop socket (from then on the shadow
process reads to the end whatever its CPU gate says), hands over what is buffered and
ends the copies' socket: the shadow process answers every copy, writes its log and
exits; the worker waits for it (``stop_timeout_s``) and removes its live gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelport.monitoring.multiprocess import forget_worker
from modelport.server.process.channel import CHANNEL_OPTION
from modelport.serving.routing.shadow import ShadowArm
from modelport.serving.routing.shadow_wire import HEADER, encode_copy
from modelport.serving.target import InferenceRequest

logger = logging.getLogger("modelport.server.process.shadow")

SHADOW_MODULE = "modelport.server.process.shadow_worker"
FLUSH_S = 0.002  # copies gathered into one write: a syscall per ~10 copies under load
MAX_BUFFERED_BYTES = 1 << 20  # beyond what the socket holds, per worker
RESTART_BACKOFF_S = (1.0, 30.0)  # first wait before a new process, and the longest
OnDrop = Callable[[str, str], None]
Label = tuple[str, str, OnDrop]  # deployment, arm, and where a drop is counted
Spawn = Callable[[socket.socket, socket.socket], "subprocess.Popen[bytes]"]
"""Starts the shadow process with its ends of the copies' socket pair and of the stop
socket pair (passed to it)."""


def start_message(
    settings: dict[str, Any], sources: list[dict[str, Any]], worker_index: int, workers: int
) -> bytes:
    """What a shadow process is told first: the worker's settings and sources (as the
    worker spec holds them) and its index."""
    body = pickle.dumps(
        {"settings": settings, "sources": sources, "index": worker_index, "workers": workers}
    )
    return HEADER.pack(len(body)) + body


class ShadowLink:
    """One worker's shadow process and the socket to it (used from the event loop only)."""

    def __init__(
        self,
        start: bytes,
        *,
        metrics_dir: str | None,
        stop_timeout_s: float,
        spawn: Spawn | None = None,
    ) -> None:
        self._start = start
        self._metrics_dir = metrics_dir
        self._stop_timeout = stop_timeout_s
        self._spawn = spawn or _spawn
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._stopper: socket.socket | None = None  # closed: the worker is stopping
        self._pending: list[bytes] = []
        self._pending_labels: list[Label] = []
        self._pending_bytes = 0
        self._unsent = memoryview(b"")  # of whole frames, the first maybe partly sent
        self._unsent_frames: deque[tuple[int, Label]] = deque()  # (size, label) of each
        self._head_sent = 0  # bytes of the first unsent frame already written
        self._flush: asyncio.TimerHandle | None = None
        self._writing = False
        self._users = 0
        self._closed = False
        self._failures = 0
        self._retry_at = 0.0

    @property
    def pid(self) -> int | None:
        """The shadow process's pid while it runs."""
        return self._process.pid if self._process is not None else None

    def sink(self, deployment: str, on_drop: OnDrop) -> LinkSink:
        """Where ``deployment``'s router offers its copies (``ShadowSink``); starts the
        shadow process now, not on a caller's request."""
        self._users += 1
        self._connected()
        return LinkSink(self, deployment, on_drop)

    def send(self, deployment: str, arm: str, request: InferenceRequest, on_drop: OnDrop) -> bool:
        """Queue a copy for the shadow process; False (counted) when it is dropped."""
        if (
            self._closed
            or self._pending_bytes + len(self._unsent) >= MAX_BUFFERED_BYTES
            or not self._connected()
        ):
            on_drop(deployment, arm)
            return False
        try:
            frame = encode_copy(deployment, arm, request)
        except Exception:  # a copy that cannot be sent must never fail the caller
            logger.exception("a copy for shadow %s of %s cannot be encoded", arm, deployment)
            on_drop(deployment, arm)
            return False
        self._pending.append(frame)
        self._pending_labels.append((deployment, arm, on_drop))
        self._pending_bytes += len(frame)
        if self._flush is None and not self._writing:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_S, self._write)
        return True

    @property
    def buffered(self) -> int:
        """Copies not yet handed to the socket."""
        return len(self._pending) + len(self._unsent_frames)

    async def release(self) -> None:
        """One sink closed; the last one stops the shadow process (it answers what it
        has first)."""
        self._users -= 1
        if self._users <= 0:
            await self.close()

    async def close(self) -> None:
        """Hand over what is buffered, then let the process finish and wait for it."""
        if self._closed:
            return
        self._closed = True
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        process, sock = self._process, self._socket
        if process is None or sock is None:
            return
        deadline = time.monotonic() + self._stop_timeout
        self._close_stopper()  # first: a process its CPU gate paused reads on to the end
        self._write()
        while (self._unsent or self._pending) and self._socket is not None:
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.01)
        self._drop_buffered()
        self._stop_writer()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)  # end of copies: the process finishes and exits
        remaining = max(0.1, deadline - time.monotonic())
        try:
            await asyncio.to_thread(process.wait, remaining)
        except subprocess.TimeoutExpired:
            logger.warning(
                "shadow process %d did not finish within %.0f s; killed",
                process.pid,
                self._stop_timeout,
            )
            process.kill()
            await asyncio.to_thread(process.wait)
        sock.close()
        self._socket = None
        self._forget(process)

    # ------------------------------------------------------------------ the process

    def _connected(self) -> bool:
        """Whether a shadow process takes copies now; starts one when none runs."""
        if self._socket is not None:
            return True
        if time.monotonic() < self._retry_at:
            return False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        stopper, stop_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            ours.sendall(self._start)  # before any copy; the socket buffer holds it
            self._process = self._spawn(theirs, stop_theirs)
        except OSError as exc:
            ours.close()
            stopper.close()
            self._failed(f"cannot start a shadow process: {exc}")
            return False
        finally:
            theirs.close()
            stop_theirs.close()
        ours.setblocking(False)
        self._socket, self._stopper = ours, stopper
        logger.info("shadow process %d started", self._process.pid)
        return True

    def _failed(self, why: str) -> None:
        """The process is gone: drop what waited for it, try a new one after a back-off."""
        self._failures += 1
        first, longest = RESTART_BACKOFF_S
        wait = min(longest, first * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + wait
        logger.error("%s; shadow copies are dropped for %.0f s", why, wait)
        self._drop_buffered()
        self._stop_writer()
        self._close_stopper()
        process, sock = self._process, self._socket
        self._process, self._socket = None, None
        if sock is not None:
            sock.close()
        if process is not None:
            with contextlib.suppress(OSError):
                process.kill()
            self._reap(process)

    def _close_stopper(self) -> None:
        """Tell the process the worker is stopping: the end of its stop socket."""
        if self._stopper is not None:
            self._stopper.close()
            self._stopper = None

    def _reap(self, process: subprocess.Popen[bytes]) -> None:
        """Collect the dead process in a thread (never block the loop), then forget it."""

        def wait() -> None:
            process.wait()
            self._forget(process)

        asyncio.get_running_loop().run_in_executor(None, wait)

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        if self._metrics_dir is not None:
            forget_worker(Path(self._metrics_dir), process.pid)

    # ------------------------------------------------------------------ writing

    def _write(self) -> None:
        """Hand the socket what it takes; keep the rest until it is writable again."""
        self._flush = None
        sock = self._socket
        if sock is None:
            return
        while True:
            if not self._unsent:
                if not self._pending:
                    break
                # Joined only once the socket took the previous batch: a full socket
                # never makes the buffered bytes be copied again and again.
                self._unsent = memoryview(b"".join(self._pending))
                self._unsent_frames.extend(
                    zip(map(len, self._pending), self._pending_labels, strict=True)
                )
                self._pending, self._pending_labels, self._pending_bytes = [], [], 0
            try:
                sent = sock.send(self._unsent)
            except BlockingIOError:
                break
            except OSError as exc:  # the process died: its end is closed
                code = self._process.poll() if self._process is not None else None
                self._failed(f"the shadow process is gone (exit code {code}, {exc})")
                return
            self._unsent = self._unsent[sent:]
            self._count_sent(sent)
        if self._unsent and not self._writing:
            self._writing = True
            asyncio.get_running_loop().add_writer(sock.fileno(), self._write)
        elif not self._unsent and self._writing:
            self._stop_writer()

    def _stop_writer(self) -> None:
        if self._writing and self._socket is not None:
            asyncio.get_running_loop().remove_writer(self._socket.fileno())
        self._writing = False

    def _count_sent(self, sent: int) -> None:
        """Forget the frames now wholly written (the others are dropped, and counted, if
        the process dies before it gets them)."""
        frames = self._unsent_frames
        sent += self._head_sent
        while frames and sent >= frames[0][0]:
            sent -= frames.popleft()[0]
        self._head_sent = sent

    def _drop_buffered(self) -> None:
        labels = [label for _, label in self._unsent_frames] + self._pending_labels
        for deployment, arm, on_drop in labels:
            on_drop(deployment, arm)
        self._unsent, self._unsent_frames, self._head_sent = memoryview(b""), deque(), 0
        self._pending, self._pending_labels, self._pending_bytes = [], [], 0


class LinkSink:
    """One deployment's shadow copies, sent to the worker's shadow process."""

    def __init__(self, link: ShadowLink, deployment: str, on_drop: OnDrop) -> None:
        self._link = link
        self._deployment = deployment
        self._on_drop = on_drop
        self._closed = False

    def offer(self, arm: ShadowArm, request: InferenceRequest) -> bool:
        """Send a copy of ``request`` for ``arm`` (never waits); False when dropped."""
        if self._closed:
            self._on_drop(self._deployment, arm.name)
            return False
        return self._link.send(self._deployment, arm.name, request, self._on_drop)

    @property
    def pending(self) -> int:
        """Copies still in this worker (the shadow process's own are its business)."""
        return self._link.buffered

    async def close(self) -> None:
        """Stop sending; the last sink to close stops the shadow process."""
        if not self._closed:
            self._closed = True
            await self._link.release()


def _spawn(copies: socket.socket, stop: socket.socket) -> subprocess.Popen[bytes]:
    fds = (copies.fileno(), stop.fileno())
    command = [sys.executable, "-P", "-m", SHADOW_MODULE, CHANNEL_OPTION, *map(str, fds)]
    return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        command, pass_fds=fds, env=dict(os.environ)
    )
