"""Where segment files live and how one is written without ever being seen half-done.

Layout: ``<root>/<model>/<version>/<YYYY-MM-DD>/<name>.parquet``. Labels (ground truth,
``monitoring.feedback``) live beside the versions in ``<root>/<model>/_labels/<day>/``,
which readers of predictions skip (``is_prediction_segment``). Each writer names
its files ``<pid>-<token>-<seq>``: the random token keeps two replicas that share an
object store apart even when both run as the same pid (pid 1 in containers).
On a local file system a segment is written under a temporary name and renamed;
on an object store it is uploaded in one put, which is atomic there.
"""

from __future__ import annotations

import io
import posixpath
from datetime import UTC, date, datetime

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from modelport.errors import InvalidArgumentError

SUFFIX = ".parquet"
TIME_COLUMN = "time"
LABELS_DIR = "_labels"
_TEMP_SUFFIX = ".tmp"


def open_root(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The file system of ``uri`` (a path or any fsspec URI) and the root path in it."""
    fs, root = fsspec.core.url_to_fs(uri)
    return fs, root.rstrip("/")


def check_part(what: str, part: str) -> str:
    """``part`` if it can name one directory level, else a clear error."""
    if not part or any(c in part for c in "/\\*?[]") or part in {".", ".."}:
        raise InvalidArgumentError(
            f"Prediction log {what} {part!r} cannot name a directory: it must be non-empty, "
            "without '/', '\\' or glob characters (*?[]), and not '.' or '..'."
        )
    return part


def day_dir(root: str, model: str, version: str, day: date) -> str:
    """The directory holding the segments of one model version for one UTC day."""
    check_part("model", model)
    check_part("version", version)
    return posixpath.join(root, model, version, day.isoformat())


def write_segment(fs: fsspec.AbstractFileSystem, directory: str, name: str, table: pa.Table) -> str:
    """Write ``table`` as ``directory/name.parquet`` atomically; return its path."""
    path = posixpath.join(directory, name + SUFFIX)
    options = {
        # LZ4 (Parquet's LZ4_RAW, read by DuckDB, Arrow, Spark and polars): a fifth less
        # CPU than the default snappy for 64-row requests, and smaller files.
        "compression": "lz4",
        "use_dictionary": _dictionary_columns(table),
        # Only the time keeps its min/max: windows are filtered by it. Those of the
        # features cost a fifth of the writing, those of the text ids a sixth, and prune
        # nothing (a segment is one row group; ids are spread over all of it).
        "write_statistics": [TIME_COLUMN] if TIME_COLUMN in table.column_names else False,
    }
    if isinstance(fs, LocalFileSystem):
        fs.makedirs(directory, exist_ok=True)
        temp = path + _TEMP_SUFFIX
        pq.write_table(table, temp, **options)
        fs.mv(temp, path)
    else:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, **options)
        fs.pipe_file(path, buffer.getvalue())
    return path


def required(table: pa.Table) -> pa.Table:
    """``table`` with its columns that hold no null marked non-nullable (no copy): Parquet
    then writes them without definition levels, a tenth of the writing for nothing.
    For prediction segments, whose readers unify them with the nullable columns of other
    segments (DuckDB's ``union_by_name``, Arrow's permissive concatenation)."""
    fields = [
        field.with_nullable(False) if field.nullable and column.null_count == 0 else field
        for field, column in zip(table.schema, table.columns, strict=True)
    ]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def _dictionary_columns(table: pa.Table) -> list[str]:
    """Text columns except the unique prediction ids: dictionary-encoding numbers (every
    feature value different) made writing a segment 4x as costly for nothing."""
    return [
        f.name
        for f in table.schema
        if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
        and f.name != "prediction_id"
    ]


def list_segments(fs: fsspec.AbstractFileSystem, pattern: str) -> list[str]:
    """Finished segment files matching a glob ``pattern`` (temporary files excluded)."""
    return sorted(path for path in fs.glob(pattern) if str(path).endswith(SUFFIX))


def is_prediction_segment(path: str) -> bool:
    """Whether a segment path (``.../<model>/<version>/<day>/<file>``) holds predictions:
    directories starting with ``_`` (the labels' ``_labels``) are not versions."""
    return not posixpath.basename(posixpath.dirname(posixpath.dirname(str(path)))).startswith("_")


def prediction_files(
    uri: str,
    model: str,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """The prediction segments of ``model`` (one version or all) whose UTC day can hold
    rows of ``[since, until)``: a writer puts each row in the directory of its day, so
    whole days outside the window are not even opened."""
    fs, root = open_root(uri)
    check_part("model", model)
    if version is not None:
        check_part("version", version)
    pattern = posixpath.join(root, model, version or "*", "*", "*" + SUFFIX)
    first = since.astimezone(UTC).date() if since is not None else None
    last = until.astimezone(UTC).date() if until is not None else None
    files = []
    for path in list_segments(fs, pattern):
        if not is_prediction_segment(path):
            continue
        day = _day_of(path)
        if day is not None and (
            (first is not None and day < first) or (last is not None and day > last)
        ):
            continue
        files.append(path)
    return fs, files


def _day_of(path: str) -> date | None:
    try:
        return date.fromisoformat(posixpath.basename(posixpath.dirname(path)))
    except ValueError:
        return None
