"""The latency gate: the candidate's p99 latency, in process, stays within a budget.

It replays either the package's input example (``example``) or the requests the
prediction log holds for the version in the target now (``log``: the traffic the
candidate is about to take; the example when nothing was logged), one model call per
request, ``repeats`` times after a short warm-up. This is the model's own time, without
HTTP or batching: a budget for the call, not for the whole server.
"""

from __future__ import annotations

import time
from itertools import cycle, islice
from typing import Any, Literal

import numpy as np

from modelport.domain.entities import ModelVersion
from modelport.domain.gates import GateOutcome, GateResult
from modelport.domain.signature import ColumnSchema
from modelport.package.loaded import LoadedModel
from modelport.rollout.gates import GateContext

_WARMUP = 5
_LOGGED_REQUESTS = 200  # the newest logged requests replayed


class LatencyGate:
    """The candidate's p99 over ``repeats`` replayed calls is at most ``budget_ms``."""

    name = "latency"

    def __init__(
        self,
        budget_ms: float | None,
        *,
        repeats: int = 200,
        replay: Literal["example", "log"] = "example",
    ) -> None:
        self.budget_ms = budget_ms
        self.repeats = repeats
        self.replay = replay

    def evaluate(
        self, candidate: ModelVersion, baseline: ModelVersion | None, context: GateContext
    ) -> GateResult:
        """SKIPPED without a budget; ERROR when there is nothing to replay."""
        if self.budget_ms is None:
            message = "no latency budget set ([gates] latency_budget_ms)"
            return GateResult(self.name, GateOutcome.SKIPPED, message)
        loaded = context.load(candidate)
        requests, source = self._requests(loaded, baseline, context)
        if not requests:
            message = (
                "nothing to replay: the package has no input example and no request was logged"
            )
            return GateResult(self.name, GateOutcome.ERROR, message, {"source": source})
        timings = _time_calls(loaded, requests, self.repeats)
        p50, p99 = (float(v) for v in np.percentile(timings, [50, 99]))
        details = {
            "source": source,
            "requests": len(requests),
            "calls": len(timings),
            "p50_ms": p50,
            "p99_ms": p99,
            "budget_ms": self.budget_ms,
        }
        over = p99 > self.budget_ms
        message = (
            f"p99 {p99:.3g} ms (p50 {p50:.3g} ms) over {len(timings)} calls replaying "
            f"{source}, budget {self.budget_ms:g} ms"
        )
        return GateResult(
            self.name, GateOutcome.FAILED if over else GateOutcome.PASSED, message, details
        )

    def _requests(
        self, loaded: LoadedModel, baseline: ModelVersion | None, context: GateContext
    ) -> tuple[list[Any], str]:
        if self.replay == "log" and baseline is not None and context.log_uri is not None:
            logged = logged_requests(context.log_uri, baseline, loaded)
            if logged:
                return logged, f"{len(logged)} requests logged for version {baseline.version}"
        example = loaded.input_example()
        return ([example] if example is not None else []), "the input example"


def logged_requests(log_uri: str, version: ModelVersion, loaded: LoadedModel) -> list[Any]:
    """The newest requests logged for ``version`` as frames of the candidate's columns
    (empty when the candidate takes tensors, or a column was not logged)."""
    # DuckDB and pyarrow: only when the log is replayed.
    from modelport.monitoring.prediction_log.reader import query
    from modelport.monitoring.prediction_log.records import INPUT_PREFIX

    signature = loaded.signature
    if signature is None or not isinstance(signature.inputs, ColumnSchema):
        return []
    names = signature.inputs.names
    table = query(log_uri, version.name, str(version.version), last=_LOGGED_REQUESTS * 8)
    columns = [f"{INPUT_PREFIX}{name}" for name in names]
    if table.num_rows == 0 or not set(columns) <= set(table.column_names):
        return []
    frame = table.select(["request_id", *columns]).to_pandas()
    frame.columns = ["request_id", *names]
    groups = [group.drop(columns="request_id") for _, group in frame.groupby("request_id")]
    return [group.reset_index(drop=True) for group in groups[-_LOGGED_REQUESTS:]]


def _time_calls(loaded: LoadedModel, requests: list[Any], repeats: int) -> list[float]:
    """Milliseconds per call, cycling through ``requests`` after a warm-up."""
    for request in islice(cycle(requests), _WARMUP):
        loaded.predict(request)
    timings = []
    for request in islice(cycle(requests), repeats):
        start = time.perf_counter()
        loaded.predict(request)
        timings.append((time.perf_counter() - start) * 1000.0)
    return timings
