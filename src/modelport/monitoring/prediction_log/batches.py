"""One request's rows in columnar form, and many of them turned into one Arrow table.

The server logs a request as a ``Logged`` tuple (a ``PredictionBatch``'s fields, the
shared ones in one ``Origin``): a handful of scalars and the arrays the request already
has (its bound inputs, the model's outputs), referenced, never copied. Making one costs
about as much as making one small tuple, whatever the number of rows; everything else
(grouping requests by layout, (prediction ids, repeating the scalars per row, splitting a
matrix into its columns, building Arrow arrays) happens in the writer's background
thread, for many requests at once (``to_table``).
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelport.monitoring.prediction_log.records import (
    BASE_SCHEMA,
    ID_PREFIX,
    INPUT_PREFIX,
    OUTPUT_PREFIX,
)


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
    deployment: str | None = None
    arm: str | None = None

    @property
    def day(self) -> date:
        """The UTC day the rows belong to, which names their segment directory."""
        return datetime.fromtimestamp(self.time_s, UTC).date()


class Origin:
    """What every request of one served target shares: model, version, deployment, arm
    and the column names of its matrix inputs. Made once per target (``origin``), so a
    request carries one reference instead of five values."""

    __slots__ = ("arm", "deployment", "matrices", "model", "version")

    def __init__(
        self,
        model: str,
        version: str,
        deployment: str | None = None,
        arm: str | None = None,
        matrices: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.model = model
        self.version = version
        self.deployment = deployment
        self.arm = arm
        self.matrices: Mapping[str, Sequence[str]] = matrices or {}


Logged = tuple[
    Origin,
    str,  # request id
    float,  # time_s (Unix time)
    str,  # protocol
    float,  # latency_s
    int,  # status
    int,  # rows
    Mapping[str, np.ndarray],  # inputs
    Mapping[str, np.ndarray],  # outputs
    Mapping[str, np.ndarray],  # ids
]
"""One request as the server hands it to the log: a plain tuple (making it costs a
fraction of making an object with named fields), fields as in ``PredictionBatch``."""
# The positions of the ``Logged`` fields the writer reads itself.
ORIGIN: Final = 0
ROWS: Final = 6

_ORIGINS: dict[tuple[Any, ...], Origin] = {}


def origin(
    model: str,
    version: str,
    deployment: str | None = None,
    arm: str | None = None,
    matrices: Mapping[str, Sequence[str]] | None = None,
) -> Origin:
    """The one ``Origin`` of these values (cached: equal origins group together; there
    are as many as versions and arms served or batch-scored, a few)."""
    named = tuple((name, tuple(columns)) for name, columns in (matrices or {}).items())
    key = (model, version, deployment, arm, named)
    found = _ORIGINS.get(key)
    if found is None:
        found = _ORIGINS.setdefault(key, Origin(model, version, deployment, arm, matrices))
    return found


def logged(batch: PredictionBatch) -> Logged:
    """``batch`` as the tuple the writer queues."""
    return (
        origin(batch.model, batch.version, batch.deployment, batch.arm, batch.matrices),
        batch.request_id,
        batch.time_s,
        batch.protocol,
        batch.latency_s,
        batch.status,
        batch.rows,
        batch.inputs,
        batch.outputs,
        batch.ids,
    )


def to_table(
    batches: Sequence[PredictionBatch],
    wanted: frozenset[str] | None,
    pause: Callable[[], None] | None = None,
) -> pa.Table:
    """One table of every row of ``batches``: base columns first, then features; a
    feature missing from some batch is null in its rows. ``pause`` is called between
    columns."""
    return requests_table([logged(batch) for batch in batches], wanted, pause)


def requests_table(
    requests: Sequence[Logged],
    wanted: frozenset[str] | None,
    pause: Callable[[], None] | None = None,
) -> pa.Table:
    """``to_table`` of requests in their queued form."""
    tables = [columns.table(wanted, pause or _go_on) for columns in grouped(requests)]
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def _go_on() -> None:
    return None


def grouped(requests: Iterable[Logged]) -> list[RequestColumns]:
    """``requests`` by layout: the same origin, the same names of arrays (in order) and
    the same row shapes (a matrix of another width cannot join the others' columns)."""
    groups: dict[tuple[Any, ...], list[Logged]] = {}
    for request in requests:
        # One flat tuple (cheaper than one with three tuples in it): the names, with a
        # marker between inputs, outputs and ids, then the arrays' row shapes.
        key = (request[0], *request[7], _BETWEEN, *request[8], _BETWEEN, *request[9])
        key += tuple(
            [a.shape[1:] for m in (request[7], request[8], request[9]) for a in m.values()]
        )
        members = groups.get(key)
        if members is None:
            groups[key] = [request]
        else:
            members.append(request)
    return [RequestColumns(members) for members in groups.values()]


_BETWEEN = object()


class RequestColumns:
    """The rows of requests that share a layout, as lists of scalars and arrays, so that
    turning them into Arrow (``table``) is a few calls on whole lists."""

    # One value per request: tuples from the queued requests, arrays from the spool.
    request_ids: Sequence[str] | pa.Array
    times: Sequence[float] | np.ndarray
    latencies: Sequence[float] | np.ndarray
    statuses: Sequence[int] | np.ndarray
    counts: Sequence[int] | np.ndarray

    def __init__(self, requests: Sequence[Logged]) -> None:
        first = requests[0]
        where = first[0]
        self.model = where.model
        self.version = where.version
        self.deployment = where.deployment
        self.arm = where.arm
        self.matrices = where.matrices
        (
            _,
            self.request_ids,
            self.times,
            self.protocols,
            self.latencies,
            self.statuses,
            self.counts,
            self.inputs,
            self.outputs,
            self.ids,
        ) = zip(*requests, strict=True)  # one pass in C: the fields as columns
        self.rows = sum(self.counts)
        self.names = (tuple(first[7]), tuple(first[8]), tuple(first[9]))

    @classmethod
    def from_columns(
        cls,
        where: Origin,
        protocol: str,
        *,
        request_ids: pa.Array,
        times: np.ndarray,
        latencies: np.ndarray,
        statuses: np.ndarray,
        counts: np.ndarray,
        arrays: tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray], Mapping[str, np.ndarray]],
    ) -> RequestColumns:
        """Requests of one layout already in columns (the spool's converter reads them so):
        one value per request in each of the first columns; ``arrays`` (inputs, outputs,
        ids) hold every row of the requests, in order."""
        columns = cls.__new__(cls)
        columns.model, columns.version = where.model, where.version
        columns.deployment, columns.arm = where.deployment, where.arm
        columns.matrices = where.matrices
        columns.request_ids = request_ids
        columns.times, columns.latencies, columns.statuses = times, latencies, statuses
        columns.protocols = (protocol,)
        columns.counts = counts
        columns.rows = int(counts.sum())
        # one "request" holding every row: the table joins nothing
        columns.inputs, columns.outputs, columns.ids = ((a,) for a in arrays)
        columns.names = (tuple(arrays[0]), tuple(arrays[1]), tuple(arrays[2]))
        return columns

    def days(self) -> list[tuple[date, np.ndarray | None]]:
        """The UTC days of the rows, each with its row mask (None: every row)."""
        times = _numbers(self.times, np.float64)
        first = datetime.fromtimestamp(float(times.min()), UTC).date()
        last = datetime.fromtimestamp(float(times.max()), UTC).date()
        if first == last:
            return [(first, None)]
        counts = _numbers(self.counts, np.int64)
        day_numbers = np.repeat(_numbers(self.times, np.float64) // 86400, counts).astype(np.int64)
        return [
            (datetime.fromtimestamp(int(n) * 86400, UTC).date(), day_numbers == n)
            for n in np.unique(day_numbers)
        ]

    def table(self, wanted: frozenset[str] | None, pause: Callable[[], None]) -> pa.Table:
        """The rows as one table: base columns, then features."""
        counts = _numbers(self.counts, np.int64)
        names = list(BASE_SCHEMA.names)
        arrays = self._base_columns(counts)
        input_names, output_names, id_names = self.names
        for name in input_names:
            pause()
            parts = [request[name] for request in self.inputs]
            columns = self.matrices.get(name)
            if columns is not None and parts[0].ndim == 2:
                by_column = _by_column(parts)  # one copy, then a view per column
                # numbers: one Arrow array over the copy, a zero-copy slice per column
                flat = _arrow(by_column.reshape(-1)) if by_column.dtype.kind in "biuf" else None
                rows = by_column.shape[1]
                for j, column in enumerate(columns):
                    if wanted is None or column in wanted:
                        names.append(INPUT_PREFIX + column)
                        arrays.append(
                            _arrow(by_column[j]) if flat is None else flat.slice(j * rows, rows)
                        )
            elif wanted is None or name in wanted:
                names.append(INPUT_PREFIX + name)
                arrays.append(_arrow(_joined(parts)))
        for prefix, maps, of_maps in (
            (OUTPUT_PREFIX, self.outputs, output_names),
            (ID_PREFIX, self.ids, id_names),
        ):
            for name in of_maps:
                pause()
                names.append(prefix + name)
                arrays.append(_arrow(_joined([request[name] for request in maps])))
        return pa.Table.from_arrays(arrays, names=names)

    def _base_columns(self, counts: np.ndarray) -> list[pa.Array]:
        total = self.rows
        ids = (
            self.request_ids
            if isinstance(self.request_ids, pa.Array)
            else pa.array(self.request_ids, type=pa.string())
        )
        if total == len(counts):  # one row per request: no repeating
            request_ids, prediction_ids = ids, pc.binary_join_element_wise(ids, "0", "-")
            repeat: Callable[[np.ndarray], np.ndarray] = _same
        else:
            # Arrow takes and joins the texts (no Python string per row); the row numbers'
            # texts come from one cached array instead of a cast per flush.
            request = np.repeat(np.arange(len(counts)), counts)
            request_ids = ids.take(request)
            rows = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            prediction_ids = pc.binary_join_element_wise(request_ids, _row_texts(rows), "-")

            def repeat(values: np.ndarray) -> np.ndarray:
                return values[request]

        micros = repeat((_numbers(self.times, np.float64) * 1e6).astype(np.int64))
        protocols = (
            pa.repeat(pa.scalar(self.protocols[0], pa.string()), total)
            if len(set(self.protocols)) == 1
            else pa.array(repeat(np.array(self.protocols, dtype=object)), pa.string())
        )
        return [
            prediction_ids,
            request_ids,
            pa.array(micros, type=BASE_SCHEMA.field("time").type),
            pa.repeat(pa.scalar(self.model, pa.string()), total),
            pa.repeat(pa.scalar(self.version, pa.string()), total),
            protocols,
            pa.array(repeat(_numbers(self.latencies, np.float64))),
            pa.array(repeat(_numbers(self.statuses, np.int32))),
            pa.repeat(pa.scalar(self.deployment, pa.string()), total),
            pa.repeat(pa.scalar(self.arm, pa.string()), total),
        ]


def _same(values: np.ndarray) -> np.ndarray:
    return values


# Row numbers' texts, made at the first use: building an Arrow array imports pandas
# (pyarrow checks for pandas objects), which must not happen at import (cold start).
_ROW_TEXTS: list[pa.Array] = []


def _row_texts(rows: np.ndarray) -> pa.Array:
    """The decimal texts of ``rows`` (row numbers, >= 0), from a cached array of them."""
    texts = _ROW_TEXTS[0] if _ROW_TEXTS else None
    needed = int(rows.max()) + 1
    if texts is None or needed > len(texts):  # grows to the largest request seen
        size = max(needed, 2 * len(texts) if texts is not None else 64)
        texts = pa.array([str(n) for n in range(size)])
        _ROW_TEXTS[:] = [texts]  # swapped whole: other threads see the old or the new one
    return texts.take(rows)


def _by_column(parts: list[np.ndarray]) -> np.ndarray:
    """The 2-D arrays ``parts`` stacked by rows and transposed, each row contiguous."""
    first = parts[0]
    if len(parts) == 1 or sum(map(len, parts)) < _FEW_ROWS * len(parts):
        # many small parts: joined cheaply (``_joined``), then transposed
        return np.ascontiguousarray(_joined(parts).T)
    # fewer, bigger parts: one copy, each written in its transposed place
    by_column = np.empty((first.shape[1], sum(map(len, parts))), np.result_type(*parts))
    np.concatenate(parts, out=by_column.T)
    return by_column


_FEW_ROWS = 8  # rows per request below which joining the parts' bytes pays


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if first.dtype.kind in _NUMBERS and len(set(map(_DTYPE, parts))) == 1:
        shapes = set(map(_SHAPE, parts))
        if len(shapes) == 1 or len({shape[1:] for shape in shapes}) == 1:
            # Same numbers, same row shape: their bytes, joined. np.concatenate costs
            # about 1.5 µs per part: most of the conversion of many single rows.
            with contextlib.suppress(TypeError, BufferError):  # a part not contiguous
                data = b"".join(parts)  # type: ignore[arg-type]  # arrays are buffers
                return np.frombuffer(data, first.dtype).reshape(-1, *first.shape[1:])
    joined = np.concatenate(parts)
    if joined.dtype.kind in "US" and any(p.dtype.kind not in "USO" for p in parts):
        # numbers in one request, text in another: keep each value as it came
        return np.concatenate([p.astype(object) for p in parts])
    return joined


_NUMBERS = "biuf"  # kinds whose bytes are the values (not pointers to objects)
_DTYPE = operator.attrgetter("dtype")
_SHAPE = operator.attrgetter("shape")


def _numbers(values: Sequence[Any] | np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """Python numbers as an array: ``np.fromiter`` skips the type and shape discovery
    of ``np.array``, most of its cost."""
    if isinstance(values, np.ndarray):
        return values.astype(dtype, copy=False)
    return np.fromiter(values, dtype, len(values))


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
