"""One request's rows in columnar form, and many of them turned into one Arrow table.

The server logs a request as a ``PredictionBatch``: a handful of scalars and the arrays
the request already has (its bound inputs, the model's outputs), referenced, never
copied. Making one costs about as much as making one small object, whatever the number
of rows; everything else (prediction ids, repeating the scalars per row, splitting a
matrix into its columns, building Arrow arrays) happens in the writer's background
thread, for many requests at once (``to_table``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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

_CHUNK = 256  # batches gathered between two pauses (about 0.1 ms of the GIL)


@dataclass(slots=True)  # not frozen: a frozen dataclass costs 4x as much to make
class PredictionBatch:
    """The rows of one request: row ``i`` gets the prediction id ``f"{request_id}-{i}"``.

    ``time_s`` is Unix time (``time.time()``). ``inputs``, ``outputs`` and ``ids`` map
    names to arrays with ``rows`` rows; a 2-D output (class probabilities) is stored as
    one list per row. ``matrices`` names the columns of 2-D inputs (a model's one
    ``input`` matrix): each becomes one ``in_<column>`` column. A failed request has
    ``rows`` 1, its status and no inputs or outputs. Treat it as read-only.
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


def to_table(
    batches: Sequence[PredictionBatch],
    wanted: frozenset[str] | None,
    pause: Callable[[], None] | None = None,
) -> pa.Table:
    """One table of every row of ``batches``: base columns first, then features; a
    feature missing from some batch is null in its rows.

    Batches are grouped by the names of their arrays (one group, usually: one model
    version answers alike), and each array is concatenated once per group, so that the
    cost per request is a few list appends, not a few Arrow arrays. ``pause`` is called
    between columns (the writer lets other threads run there).
    """
    groups: dict[tuple[Any, ...], list[PredictionBatch]] = {}
    for batch in batches:
        key = (tuple(batch.inputs), tuple(batch.outputs), tuple(batch.ids))
        groups.setdefault(key, []).append(batch)
    tables = [_group_table(group, wanted, pause or _go_on) for group in groups.values()]
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def _go_on() -> None:
    return None


@dataclass
class _Gathered:
    """The columns of a group of batches as Python lists, before they become Arrow."""

    request_ids: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    protocols: list[str] = field(default_factory=list)
    inputs: dict[str, list[np.ndarray]] = field(default_factory=dict)
    outputs: dict[str, list[np.ndarray]] = field(default_factory=dict)
    ids: dict[str, list[np.ndarray]] = field(default_factory=dict)


def _gather(batches: list[PredictionBatch], pause: Callable[[], None]) -> _Gathered:
    """One pass over the batches, ``pause`` every ``_CHUNK`` of them: the only part of
    the conversion that runs Python per request, so the only part that holds the GIL
    for long."""
    first = batches[0]
    found = _Gathered(
        inputs={name: [] for name in first.inputs},
        outputs={name: [] for name in first.outputs},
        ids={name: [] for name in first.ids},
    )
    for start in range(0, len(batches), _CHUNK):
        if start:
            pause()
        for batch in batches[start : start + _CHUNK]:
            found.request_ids.append(batch.request_id)
            found.times.append(batch.time_s)
            found.latencies.append(batch.latency_s)
            found.statuses.append(batch.status)
            found.models.append(batch.model)
            found.versions.append(batch.version)
            found.protocols.append(batch.protocol)
            for name, array in batch.inputs.items():
                found.inputs[name].append(array)
            for name, array in batch.outputs.items():
                found.outputs[name].append(array)
            for name, array in batch.ids.items():
                found.ids[name].append(array)
    return found


def _group_table(
    batches: list[PredictionBatch], wanted: frozenset[str] | None, pause: Callable[[], None]
) -> pa.Table:
    """The rows of batches whose arrays have the same names."""
    found = _gather(batches, pause)
    counts = np.fromiter((b.rows for b in batches), dtype=np.int64, count=len(batches))
    names = list(BASE_SCHEMA.names)
    arrays = _base_columns(found, counts)
    matrices = batches[0].matrices
    for name, parts in found.inputs.items():
        pause()
        joined = _joined(parts)
        columns = matrices.get(name)
        if columns is not None and joined.ndim == 2:
            by_column = np.ascontiguousarray(joined.T)  # one copy, then a view per column
            for j, column in enumerate(columns):
                if wanted is None or column in wanted:
                    names.append(INPUT_PREFIX + column)
                    arrays.append(_arrow(by_column[j]))
        elif wanted is None or name in wanted:
            names.append(INPUT_PREFIX + name)
            arrays.append(_arrow(joined))
    for prefix, by_name in ((OUTPUT_PREFIX, found.outputs), (ID_PREFIX, found.ids)):
        for name, parts in by_name.items():
            pause()
            names.append(prefix + name)
            arrays.append(_arrow(_joined(parts)))
    return pa.Table.from_arrays(arrays, names=names)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    joined = np.concatenate(parts)
    if joined.dtype.kind in "US" and any(p.dtype.kind not in "USO" for p in parts):
        # numbers in one request, text in another: keep each value as it came
        return np.concatenate([p.astype(object) for p in parts])
    return joined


def _base_columns(found: _Gathered, counts: np.ndarray) -> list[pa.Array]:
    total = int(counts.sum())

    def repeated(values: list[Any], type_: pa.DataType) -> pa.Array:
        if len(set(values)) == 1:  # the usual case: one model, version, protocol
            return pa.repeat(pa.scalar(values[0], type_), total)
        return pa.array(np.repeat(np.array(values, dtype=object), counts), type=type_)

    request_ids = repeated(found.request_ids, pa.string())
    rows = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    prediction_ids = pc.binary_join_element_wise(
        request_ids, pc.cast(pa.array(rows), pa.string()), "-"
    )
    micros = np.repeat(np.array(found.times) * 1e6, counts).astype(np.int64)
    return [
        prediction_ids,
        request_ids,
        pa.array(micros, type=BASE_SCHEMA.field("time").type),
        repeated(found.models, pa.string()),
        repeated(found.versions, pa.string()),
        repeated(found.protocols, pa.string()),
        pa.array(np.repeat(np.array(found.latencies), counts)),
        pa.array(np.repeat(np.array(found.statuses, dtype=np.int32), counts)),
    ]


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
