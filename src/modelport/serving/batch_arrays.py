"""The batcher's array work: one batch from many requests' inputs, and the check that
the model answered one row per input row for every output asked for."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from modelport.errors import ModelExecutionError

Batch = dict[str, np.ndarray]


def concatenate(batches: list[Batch]) -> Batch:
    """The requests' inputs as one batch (the one request's own arrays when alone)."""
    if len(batches) == 1:
        return batches[0]
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


def check_result(
    result: Mapping[str, np.ndarray], outputs: frozenset[str], rows: int, name: str
) -> None:
    """Raise ``ModelExecutionError`` unless every output in ``outputs`` has ``rows`` rows."""
    for output in outputs:
        value = result.get(output)
        if value is None or np.ndim(value) == 0 or len(value) != rows:
            got = "nothing" if value is None else f"{np.shape(value)}"
            raise ModelExecutionError(
                f"model {name!r} returned {got} for output {output!r}, expected {rows} rows"
            )
