"""Where labels (ground truth) live: Parquet segments beside the model's prediction log.

Layout: ``<log uri>/<model>/_labels/<YYYY-MM-DD>/<pid>-<token>-<seq>.parquet``, the day
being the UTC day the labels were received. ``_labels`` cannot be a version directory
(versions are numbers or empty), and the prediction reader skips it.

One row per label received, never rewritten: a correction is a new row, and the label
that counts for a key is the latest one (``time``, then ``seq``: the process's count of
label writes in its high 32 bits and the row's position in its write in the low ones, so
that of two labels for one key the later row of a batch, or the later write of a process
in the same microsecond, wins). Every row
stays, with who sent it and how, which is the audit trail of the ground truth.

A label is stored twice over so that one column compares with any prediction type:
``label`` is its text (``"yes"``, ``"1"``, ``"0.25"``, ``"true"``), ``label_value`` its
number when it has one (ints, floats, booleans as 1/0, numeric strings), and
``label_type`` the JSON type it arrived as (``str``, ``int``, ``float``, ``bool``).
"""

from __future__ import annotations

import math
import os
import posixpath
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import count
from typing import Any

import fsspec
import pyarrow as pa

from modelport.errors import InvalidArgumentError
from modelport.monitoring.prediction_log.segments import (
    LABELS_DIR,
    SUFFIX,
    check_part,
    list_segments,
    open_root,
    write_segment,
)

PREDICTION_ID = "prediction_id"

SCHEMA = pa.schema(
    [
        ("key_kind", pa.string()),  # "prediction_id" or an id column's name ("customer_id")
        ("key", pa.string()),
        ("label", pa.string()),
        ("label_value", pa.float64()),
        ("label_type", pa.string()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("seq", pa.int64()),
        ("actor", pa.string()),
        ("source", pa.string()),  # "api" or "upload"
    ]
)

_SEQ = count()  # segment file names
_names: dict[int, str] = {}  # per pid: a forked child must not reuse its parent's names


def _segment_name() -> str:
    pid = os.getpid()
    prefix = _names.get(pid)
    if prefix is None:
        prefix = _names[pid] = f"{pid}-{secrets.token_hex(4)}-"
    return prefix + f"{next(_SEQ):06d}"


_WRITES = count(1)  # the high bits of seq


@dataclass(frozen=True, slots=True)
class Label:
    """One label: the key it is for, and its value as text, number and type."""

    key_kind: str
    key: str
    label: str
    label_value: float | None
    label_type: str

    @classmethod
    def of(cls, key_kind: str, key: Any, value: Any) -> Label:
        """A label for ``key`` (a prediction id or an id column's value) with ``value``.

        Raises InvalidArgumentError for a key or value that cannot be a label.
        """
        return cls(key_kind, key_text(key), *label_parts(value))


def key_text(key: Any) -> str:
    """A key as the text it is stored and matched as (ids compare as text)."""
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise InvalidArgumentError(
            f"an id must be a string or an integer, got {type(key).__name__} {key!r}"
        )
    text = str(key)
    if not text:
        raise InvalidArgumentError("an id must not be empty")
    return text


def label_parts(value: Any) -> tuple[str, float | None, str]:
    """``value`` as (text, number or None, type): what the store keeps of a label."""
    if isinstance(value, bool):
        return ("true" if value else "false"), float(value), "bool"
    if isinstance(value, int):
        return str(value), float(value), "int"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError(f"a label must be a finite number, got {value!r}")
        return repr(value), value, "float"
    if isinstance(value, str):
        if not value:
            raise InvalidArgumentError("a label must not be an empty string")
        return value, _number(value), "str"
    raise InvalidArgumentError(
        f"a label must be a string, number or boolean, got {type(value).__name__} {value!r}"
    )


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def check_key_kind(kind: str) -> str:
    """``kind`` if it can name a key: ``prediction_id`` or an identifier-like column name."""
    if kind == PREDICTION_ID or (kind.isidentifier() and kind.isascii()):
        return kind
    raise InvalidArgumentError(
        f"{kind!r} cannot name an id column: use prediction_id or a column name made of "
        "letters, digits and underscores (not starting with a digit)"
    )


def labels_dir(root: str, model: str) -> str:
    """The directory of one model's label segments."""
    check_part("model", model)
    return posixpath.join(root, model, LABELS_DIR)


def to_table(labels: Sequence[Label], *, time: datetime, actor: str, source: str) -> pa.Table:
    """The rows of one write: all received at ``time``, in order."""
    columns: dict[str, Any] = {
        "key_kind": [x.key_kind for x in labels],
        "key": [x.key for x in labels],
        "label": [x.label for x in labels],
        "label_value": [x.label_value for x in labels],
        "label_type": [x.label_type for x in labels],
        "time": [time.astimezone(UTC)] * len(labels),
        "seq": _seq(len(labels)),
        "actor": [actor] * len(labels),
        "source": [source] * len(labels),
    }
    return pa.table(columns, schema=SCHEMA)


def _seq(rows: int) -> list[int]:
    base = next(_WRITES) << 32
    return list(range(base, base + rows))


def write_labels(
    uri: str,
    model: str,
    labels: Sequence[Label] | pa.Table,
    *,
    actor: str,
    source: str,
    now: datetime | None = None,
) -> str | None:
    """Append ``labels`` (Labels, or a table with SCHEMA's label columns) as one segment.

    Returns the segment's path, or None when there was nothing to write.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if isinstance(labels, pa.Table):
        table = _stamped(labels, time=now, actor=actor, source=source)
    else:
        table = to_table(labels, time=now, actor=actor, source=source)
    if table.num_rows == 0:
        return None
    fs, root = open_root(uri)
    directory = posixpath.join(labels_dir(root, model), now.date().isoformat())
    return write_segment(fs, directory, _segment_name(), table)


def _stamped(table: pa.Table, *, time: datetime, actor: str, source: str) -> pa.Table:
    rows = table.num_rows
    stamps = {
        "time": pa.array([time] * rows, SCHEMA.field("time").type),
        "seq": pa.array(_seq(rows), pa.int64()),
        "actor": pa.array([actor] * rows, pa.string()),
        "source": pa.array([source] * rows, pa.string()),
    }
    arrays = [
        stamps[name] if name in stamps else table.column(name).cast(SCHEMA.field(name).type)
        for name in SCHEMA.names
    ]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def label_files(uri: str, model: str) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """Every label segment of ``model``, and the file system they are on."""
    fs, root = open_root(uri)
    pattern = posixpath.join(labels_dir(root, model), "*", "*" + SUFFIX)
    return fs, list_segments(fs, pattern)


def label_day(path: str) -> date | None:
    """The day directory a label segment is in (None when it is not in one)."""
    try:
        return date.fromisoformat(posixpath.basename(posixpath.dirname(path)))
    except ValueError:
        return None
