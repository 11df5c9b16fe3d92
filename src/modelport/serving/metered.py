"""A target that measures the model version it wraps (``serving.target``).

Every request that reaches a version is timed from the moment the target is called to
its answer (binding, queueing and the model call: what a router compares its arms by),
and its rows are counted; a request that fails on the way is timed too. An error on the
way is stamped with the model and version it happened at
(``ModelportError.model``/``version``), so that whoever counts requests by version (the
HTTP layer) needs nothing else to label it.
"""

from __future__ import annotations

import time
from typing import Protocol

from modelport.errors import ModelportError
from modelport.serving.target import InferenceRequest, InferenceResult, InferenceTarget


class VersionRecorder(Protocol):
    """Where one model version's measurements go (``monitoring.metrics``)."""

    def answered(self, rows: int, seconds: float) -> None:
        """A request of ``rows`` rows was answered in ``seconds``."""

    def failed(self, seconds: float) -> None:
        """A request failed after ``seconds`` (bad inputs, queue full, deadline, model error)."""


class BothRecorders:
    """Records into two recorders: a deployment arm's and its version's (one timing
    for both, instead of a second measuring layer around the first)."""

    __slots__ = ("_first", "_second")

    def __init__(self, first: VersionRecorder, second: VersionRecorder) -> None:
        self._first = first
        self._second = second

    def answered(self, rows: int, seconds: float) -> None:
        """Both recorders: a request of ``rows`` rows was answered in ``seconds``."""
        self._first.answered(rows, seconds)
        self._second.answered(rows, seconds)

    def failed(self, seconds: float) -> None:
        """Both recorders: a request failed after ``seconds``."""
        self._first.failed(seconds)
        self._second.failed(seconds)


class MeteredTarget:
    """Wraps the target of one model version and records what passes through it."""

    def __init__(
        self, inner: InferenceTarget, recorder: VersionRecorder, *, model: str, version: int | None
    ) -> None:
        self._inner = inner
        self._recorder = recorder
        self._model = model
        self._version = version

    async def infer(self, request: InferenceRequest) -> InferenceResult:
        """The inner target's answer, measured."""
        started = time.perf_counter()
        try:
            result = await self._inner.infer(request)
        except Exception as exc:
            self._recorder.failed(time.perf_counter() - started)
            if isinstance(exc, ModelportError):
                if exc.model is None:
                    exc.model = self._model
                if exc.version is None:
                    exc.version = self._version
            raise
        self._recorder.answered(result.rows, time.perf_counter() - started)
        return result
