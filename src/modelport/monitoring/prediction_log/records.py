"""One logged prediction and its columnar layout.

Each (model, version) has its own segment directory, so its inputs and outputs get
one column each: ``in_<name>`` for an input, ``out_<name>`` for an output (a
prediction or a class probability). DuckDB then filters and aggregates features
directly, and segments of versions with different signatures never meet in one file.
Reading across segments uses DuckDB's ``union_by_name``, so a column added later
reads as NULL in older segments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from modelport.errors import InvalidArgumentError

INPUT_PREFIX = "in_"
OUTPUT_PREFIX = "out_"
ID_PREFIX = "id_"

BASE_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("request_id", pa.string()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("model", pa.string()),
        ("version", pa.string()),
        ("protocol", pa.string()),
        ("latency_s", pa.float64()),
        ("status", pa.int32()),
        # The deployment and arm that answered (null for a model served on its own).
        ("deployment", pa.string()),
        ("arm", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One answered row: who asked, what went in, what came out, how long it took.

    ``time`` must be timezone-aware; it is stored in UTC. ``inputs`` and ``outputs``
    map column names to scalar values (or lists, which Parquet stores as lists).
    """

    prediction_id: str
    request_id: str
    time: datetime
    model: str
    version: str
    protocol: str
    latency_s: float
    status: int
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    ids: Mapping[str, Any] = field(default_factory=dict)
    deployment: str | None = None
    arm: str | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise InvalidArgumentError(
                f"Prediction record {self.prediction_id!r} has a naive time {self.time}: "
                "give a timezone-aware datetime, e.g. datetime.now(UTC)."
            )

    @property
    def day(self) -> date:
        """The UTC day the row belongs to, which names its segment directory."""
        return self.time.astimezone(UTC).date()

    def row(self) -> dict[str, Any]:
        """The flat row written to Parquet."""
        flat: dict[str, Any] = {
            "prediction_id": self.prediction_id,
            "request_id": self.request_id,
            "time": self.time.astimezone(UTC),
            "model": self.model,
            "version": self.version,
            "protocol": self.protocol,
            "latency_s": self.latency_s,
            "status": self.status,
            "deployment": self.deployment,
            "arm": self.arm,
        }
        flat.update({INPUT_PREFIX + name: value for name, value in self.inputs.items()})
        flat.update({OUTPUT_PREFIX + name: value for name, value in self.outputs.items()})
        flat.update({ID_PREFIX + name: value for name, value in self.ids.items()})
        return flat


def to_table(records: Sequence[PredictionRecord]) -> pa.Table:
    """A table of ``records``: the fixed columns typed, the feature columns inferred."""
    rows = [record.row() for record in records]
    names = list(BASE_SCHEMA.names)
    seen = set(names)
    for row in rows:
        for name in row:
            if name not in seen:
                seen.add(name)
                names.append(name)
    columns = {name: [row.get(name) for row in rows] for name in names}
    arrays = [
        pa.array(columns[name], type=BASE_SCHEMA.field(name).type)
        if name in BASE_SCHEMA.names
        else pa.array(columns[name])
        for name in names
    ]
    return pa.Table.from_arrays(arrays, names=names)
