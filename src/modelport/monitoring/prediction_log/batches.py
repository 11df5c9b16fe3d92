"""One request's rows in columnar form, and many of them turned into one Arrow table.

The server logs a request as a ``PredictionBatch``: a handful of scalars and the arrays
the request already has (its bound inputs, the model's outputs), referenced, never
copied. Making one costs about as much as making one small object, whatever the number
of rows; everything else (prediction ids, repeating the scalars per row, splitting a
matrix into its columns, building Arrow arrays) happens in the writer's background
thread, for many requests at once (``to_table``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelport.monitoring.prediction_log.records import (
    BASE_SCHEMA,
    ID_PREFIX,
    INPUT_PREFIX,
    OUTPUT_PREFIX,
)

_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """The rows of one request: row ``i`` gets the prediction id ``f"{request_id}-{i}"``.

    ``time_s`` is Unix time (``time.time()``). ``inputs``, ``outputs`` and ``ids`` map
    names to arrays with ``rows`` rows; a 2-D output (class probabilities) is stored as
    one list per row. ``matrices`` names the columns of 2-D inputs (a model's one
    ``input`` matrix): each becomes one ``in_<column>`` column. A failed request has
    ``rows`` 1, its status and no inputs or outputs.
    """

    request_id: str
    time_s: float
    model: str
    version: str
    protocol: str
    latency_s: float
    status: int
    rows: int
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    outputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    ids: Mapping[str, np.ndarray] = field(default_factory=dict)
    matrices: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def day(self) -> date:
        """The UTC day the rows belong to, which names their segment directory."""
        return datetime.fromtimestamp(self.time_s, UTC).date()

    def columns(self, wanted: frozenset[str] | None) -> dict[str, np.ndarray]:
        """The feature columns by their logged name (``in_``/``out_``/``id_``); inputs
        limited to ``wanted`` (None: all)."""
        flat: dict[str, np.ndarray] = {}
        for name, array in self.inputs.items():
            names = self.matrices.get(name)
            if names is not None and array.ndim == 2:
                for j, column in enumerate(names):
                    if wanted is None or column in wanted:
                        flat[INPUT_PREFIX + column] = array[:, j]
            elif wanted is None or name in wanted:
                flat[INPUT_PREFIX + name] = array
        for name, array in self.outputs.items():
            flat[OUTPUT_PREFIX + name] = array
        for name, array in self.ids.items():
            flat[ID_PREFIX + name] = array
        return flat


def to_table(batches: Sequence[PredictionBatch], wanted: frozenset[str] | None) -> pa.Table:
    """One table of every row of ``batches``: base columns first, then features in the
    order first seen; a feature missing from some batch is null in its rows."""
    counts = np.fromiter((b.rows for b in batches), dtype=np.int64, count=len(batches))
    base = _base_columns(batches, counts)
    flats = [batch.columns(wanted) for batch in batches]
    names: dict[str, None] = {}
    for flat in flats:
        names.update(dict.fromkeys(flat))
    arrays = list(base)
    for name in names:
        arrays.append(_feature([flat.get(name) for flat in flats], counts))
    return pa.Table.from_arrays(arrays, names=[*BASE_SCHEMA.names, *names])


def _base_columns(batches: Sequence[PredictionBatch], counts: np.ndarray) -> list[pa.Array]:
    def repeated(values: list[Any], type_: pa.DataType) -> pa.Array:
        if len(set(values)) == 1:  # the usual case: one model, version, protocol
            return pa.repeat(pa.scalar(values[0], type_), int(counts.sum()))
        return pa.array(np.repeat(np.array(values, dtype=object), counts), type=type_)

    request_ids = repeated([b.request_id for b in batches], pa.string())
    rows = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    prediction_ids = pc.binary_join_element_wise(
        request_ids, pc.cast(pa.array(rows), pa.string()), "-"
    )
    micros = np.repeat(np.array([b.time_s for b in batches]) * 1e6, counts).astype(np.int64)
    return [
        prediction_ids,
        request_ids,
        pa.array(micros, type=BASE_SCHEMA.field("time").type),
        repeated([b.model for b in batches], pa.string()),
        repeated([b.version for b in batches], pa.string()),
        repeated([b.protocol for b in batches], pa.string()),
        pa.array(np.repeat(np.array([b.latency_s for b in batches]), counts)),
        pa.array(np.repeat(np.array([b.status for b in batches], dtype=np.int32), counts)),
    ]


def _feature(parts: list[np.ndarray | None], counts: np.ndarray) -> pa.Array:
    present = [p for p in parts if p is not None]
    if len(present) == len(parts) and all(p.dtype.kind in "biuf" for p in present):
        return _arrow(np.concatenate(present) if len(present) > 1 else present[0])
    converted = [None if p is None else _arrow(p) for p in parts]
    type_ = next(a.type for a in converted if a is not None)
    filled = [
        pa.nulls(int(n), type_) if a is None else a for a, n in zip(converted, counts, strict=True)
    ]
    return pa.concat_arrays([a.cast(type_) if a.type != type_ else a for a in filled])


def _arrow(array: np.ndarray) -> pa.Array:
    """An Arrow array of ``array``: a 2-D one as one fixed-size list per row."""
    if array.ndim == 2:
        flat = _arrow(np.ascontiguousarray(array).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, array.shape[1])
    if array.dtype.kind in "biuf":
        return pa.array(array)
    try:  # text, dates, categories: what Arrow infers from the objects
        return pa.array(array, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds: keep them as text
        return pa.array([None if v is None else str(v) for v in array], type=pa.string())
