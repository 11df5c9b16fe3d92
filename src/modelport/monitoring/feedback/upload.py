"""Labels in bulk from a CSV or Parquet file: one column of keys, one of labels.

The key column is read as text (so ``007`` stays ``007``); the label column keeps the
type the file gives it (CSV types are inferred: numbers, booleans, else text). A row
with an empty key or label, or a label that is not a finite number or non-empty text,
is rejected and counted; the rest are stored like labels sent over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from modelport.errors import InvalidArgumentError
from modelport.monitoring.feedback.intake import LABEL_COLUMNS, receive
from modelport.monitoring.feedback.store import check_key_kind

_SAMPLE = 10  # rejected row numbers listed


@dataclass
class UploadResult:
    """What an upload did: counts, and a few rejected rows (1-based data rows)."""

    model: str
    rows: int
    accepted: int = 0
    unknown: int = 0
    corrected: int = 0
    rejected: int = 0
    rejected_rows: list[int] = field(default_factory=list)
    unknown_keys: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``--json``."""
        return {
            "model": self.model,
            "rows": self.rows,
            "accepted": self.accepted,
            "unknown": self.unknown,
            "corrected": self.corrected,
            "rejected": self.rejected,
            "rejected_rows": self.rejected_rows,
            "unknown_keys": self.unknown_keys,
        }


def read_file(path: Path, id_column: str) -> pa.Table:
    """A CSV (``.csv``, ``.csv.gz``) or Parquet file as a table, the id column as text."""
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if name.endswith((".csv", ".csv.gz", ".tsv")):
            from pyarrow import csv

            options = csv.ConvertOptions(column_types={id_column: pa.string()})
            parse = csv.ParseOptions(delimiter="\t" if name.endswith(".tsv") else ",")
            return csv.read_csv(path, parse_options=parse, convert_options=options)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc}") from None
    raise InvalidArgumentError(
        f"{path} is neither CSV nor Parquet: use a .csv, .csv.gz, .tsv or .parquet file"
    )


def labels_from(table: pa.Table, id_column: str, label_column: str) -> tuple[pa.Table, pa.Table]:
    """(the labels, in LABEL_COLUMNS, of the usable rows; the row numbers of the others)."""
    for wanted, option in ((id_column, "--id"), (label_column, "--label")):
        if wanted not in table.column_names:
            raise InvalidArgumentError(
                f"the file has no column {wanted!r} ({option}); its columns: "
                f"{', '.join(table.column_names)}"
            )
    kind = check_key_kind(id_column)
    label_type = _label_type(table.schema.field(label_column).type, label_column)
    source = pa.table(
        {"k": table.column(id_column).cast(pa.string()), "v": table.column(label_column)}
    )
    db = duckdb.connect()
    try:
        db.register("source", source)
        number = "TRY_CAST(v AS DOUBLE)"
        db.execute(
            f"""
            CREATE VIEW checked AS
            SELECT row_number() OVER () AS row, k,
                   CAST(v AS VARCHAR) AS label,
                   CASE WHEN isfinite({number}) THEN {number} END AS label_value,
                   k IS NOT NULL AND k <> '' AND v IS NOT NULL AND CAST(v AS VARCHAR) <> ''
                   AND ('{label_type}' IN ('str', 'bool', 'int') OR isfinite({number})) AS ok
            FROM source
            """  # noqa: S608 (label_type: one of four constants)
        )
        labels = db.sql(
            f"SELECT '{kind}' AS key_kind, k AS key, label, label_value, "  # noqa: S608 (checked identifier)
            f"'{label_type}' AS label_type FROM checked WHERE ok ORDER BY row"
        ).to_arrow_table()
        rejected = db.sql("SELECT row FROM checked WHERE NOT ok ORDER BY row").to_arrow_table()
    finally:
        db.close()
    return labels.select(list(LABEL_COLUMNS)), rejected


def _label_type(arrow_type: pa.DataType, column: str) -> str:
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "str"
    raise InvalidArgumentError(
        f"the label column {column!r} holds {arrow_type}: labels must be text, numbers or booleans"
    )


def upload(
    uri: str, model: str, path: Path, *, id_column: str, label_column: str, actor: str
) -> UploadResult:
    """Store the labels of a file for ``model``; count unknown keys and corrections."""
    table = read_file(path, id_column)
    labels, rejected = labels_from(table, id_column, label_column)
    result = UploadResult(model, rows=table.num_rows, rejected=rejected.num_rows)
    result.rejected_rows = [int(r) for r in rejected.column("row").to_pylist()[:_SAMPLE]]
    intake = receive(uri, model, labels, actor=actor, source="upload")
    result.accepted, result.unknown, result.corrected = (
        intake.accepted,
        intake.unknown,
        intake.corrected,
    )
    result.unknown_keys = intake.unknown_keys
    return result
