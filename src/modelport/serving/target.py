"""The serving contract: one async call that every served model, router and wrapper makes.

An ``InferenceTarget`` answers an ``InferenceRequest`` with an ``InferenceResult``. A
served model version (``serving.served.ServedModel``, with its batcher behind it) is a
target; so is anything that wraps targets: the per-version metrics recorder
(``serving.metered``) today, and routers (canary, A/B, shadow), the prediction logger
and per-key guards as they come. Both protocol adapters (V2 and MLflow) reach a model
through the one runtime call, ``ModelRuntime.infer``, which resolves the route, holds
the version(s) it picks so that a hot swap cannot retire them mid-request, and awaits
the route's target.

The request carries the inputs as the protocol decoded them, not yet bound: each model
version binds them to its own signature (``serving.binding``), so that two versions with
compatible but different signatures (a new optional column) can sit behind one router.
The result says which version answered and carries the inputs as that version bound
them, for whoever records predictions.

Requests, results and the values a request is decoded into (here, in ``serving.binding``
and in the protocol codecs) are made once or several times per request and are never
changed after: treat them as read-only. They are not frozen dataclasses because a frozen
one's ``__init__`` sets each field through ``object.__setattr__``: measured at 1.1 µs
against 0.2 µs for ten fields, and a request made about ten of them (3.5% of a worker's
CPU on single-row requests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from modelport.serving.binding import Bound, RequestInputs
from modelport.serving.interface import ModelIO


@dataclass(slots=True)  # not frozen: see the module's docstring
class InferenceRequest:
    """One request for predictions, as every target sees it.

    ``outputs`` names the outputs wanted, in the order the answer lists them (None: all
    of the model's outputs). ``received`` and ``deadline`` are on ``time.monotonic()``'s
    clock. ``protocol`` is the dialect it came in (``v2``, ``mlflow``). ``params`` are
    the inference parameters as sent (MLflow's ``params``, V2's request ``parameters``
    less the protocol's own); each version resolves them against its signature.
    ``headers`` are the HTTP request's headers as the server received them (lower-case
    names): a sticky router reads its key there, nothing else looks.
    """

    inputs: RequestInputs
    outputs: tuple[str, ...] | None
    deadline: float
    request_id: str
    protocol: str
    received: float
    params: Mapping[str, Any] | None = None
    headers: Sequence[tuple[bytes, bytes]] = ()


@dataclass(slots=True)  # not frozen: see the module's docstring
class InferenceResult:
    """The answer: each requested output (one row per input row), which model and version
    gave it, that version's interface (the outputs' datatypes) and the bound inputs.
    ``warnings`` say what of the request was ignored (undeclared params), for the
    protocol to pass on. ``ids`` are the request's id columns (``Signature.id_columns``),
    which never reach the model: logged, and returned where the protocol allows.
    ``deployment`` and ``arm`` say which arm of which deployment answered (None when the
    route serves one model, not a deployment)."""

    outputs: Mapping[str, np.ndarray]
    model: str
    version: int | None
    rows: int
    interface: ModelIO
    inputs: Bound
    warnings: tuple[str, ...] = ()
    ids: Mapping[str, np.ndarray] | None = None
    arm: str | None = None
    deployment: str | None = None

    @property
    def version_label(self) -> str:
        """The version as V2 reports it ("" for an unversioned package)."""
        return str(self.version) if self.version is not None else ""


@dataclass(frozen=True, slots=True)
class ArmLabel:
    """The arm of a deployment a model version answers as: what its prediction log rows
    and per-arm metrics are labelled with."""

    deployment: str
    arm: str


class InferenceTarget(Protocol):
    """Anything that answers inference requests."""

    async def infer(self, request: InferenceRequest) -> InferenceResult:
        """Answer ``request`` or raise a ``ModelportError`` saying why not."""
        ...
