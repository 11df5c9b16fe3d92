"""A target that logs what the model version it wraps answers (``serving.target``).

After each request it hands one ``Logged`` tuple to the worker's prediction log
(``monitoring.prediction_log``): the target's ``Origin`` (made once), the request's
scalars and references to the arrays it already has (the bound inputs, the outputs), so
the request pays for one tuple and a list append; the log's background thread does the
rest. A request that fails
on the way is logged too, as one row with its status and no inputs or outputs.
Id columns (``Signature.id_columns``) travel beside the inputs, never into the model,
and are logged as ``id_<name>``. A version serving as an arm of a deployment logs its
rows with the deployment's and the arm's names (a shadow's copy too, with the request
id of the request it copies).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

import numpy as np

from modelport.domain.layout import MATRIX_INPUT
from modelport.monitoring.prediction_log.batches import Logged, origin
from modelport.serving.interface import Layout, ModelIO
from modelport.serving.target import InferenceRequest, InferenceResult, InferenceTarget

OK = 200
UNVERSIONED = "unversioned"
NO_ARRAYS: Mapping[str, np.ndarray] = MappingProxyType({})


class PredictionSink(Protocol):
    """Where logged requests go (``PredictionLogWriter``)."""

    def put_request(self, request: Logged) -> bool:
        """Queue one request's rows without blocking; False when they were dropped."""
        ...


class LoggedTarget:
    """Wraps the target of one model version and logs every request it answers."""

    def __init__(
        self,
        inner: InferenceTarget,
        sink: PredictionSink,
        *,
        model: str,
        version: str,
        io: ModelIO,
        status_of: Callable[[BaseException], int],
        deployment: str | None = None,
        arm: str | None = None,
    ) -> None:
        self._inner = inner
        self._put = sink.put_request
        self._status_of = status_of
        # Which 2-D input is the matrix of named columns: the log splits it (in the
        # background) into one column per feature.
        matrices: Mapping[str, Sequence[str]] = (
            {MATRIX_INPUT: tuple(io.column_names)} if io.layout is Layout.MATRIX else {}
        )
        # A package served from a path has no version number; its rows need a directory.
        self._origin = origin(model, version or UNVERSIONED, deployment, arm, matrices)

    async def infer(self, request: InferenceRequest) -> InferenceResult:
        """The inner target's answer, logged."""
        try:
            result = await self._inner.infer(request)
        except Exception as exc:
            self._put(
                (
                    self._origin,
                    request.request_id,
                    time.time(),
                    request.protocol,
                    time.monotonic() - request.received,
                    self._status_of(exc),
                    1,
                    NO_ARRAYS,
                    NO_ARRAYS,
                    NO_ARRAYS,
                )
            )
            raise
        self._put(
            (
                self._origin,
                request.request_id,
                time.time(),
                request.protocol,
                time.monotonic() - request.received,
                OK,
                result.rows,
                result.inputs.batch,
                result.outputs,
                result.ids or NO_ARRAYS,
            )
        )
        return result
