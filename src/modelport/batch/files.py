"""The input files of a batch job and their rows, read in chunks.

An input is a file, a directory (every Parquet or CSV file under it), a glob, or any of
these at an fsspec URI (``s3://bucket/day=*/part-*.parquet``). Files are taken in sorted
order, so that a job's parts and their names are the same every time it runs (what
``--resume`` relies on). Chunks are read by pyarrow's streaming readers: memory holds a
chunk at a time, whatever the file's size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modelport.errors import InvalidArgumentError

if TYPE_CHECKING:
    import pandas as pd

FileFormat = Literal["parquet", "csv"]
FORMATS: tuple[FileFormat, ...] = ("parquet", "csv")
_SUFFIXES: dict[str, FileFormat] = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
DEFAULT_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class InputFile:
    """One input file: its URI (a plain path for local files), format and place in the
    job (its index names its parts)."""

    uri: str
    format: FileFormat
    index: int


def format_of(uri: str, given: FileFormat | None = None) -> FileFormat:
    """``given``, else the format the file name says (``.parquet``, ``.pq``, ``.csv``)."""
    if given is not None:
        if given not in FORMATS:
            raise InvalidArgumentError(
                f"unknown format {given!r}; choose {', '.join(FORMATS)}", field="format"
            )
        return given
    name = uri.rstrip("/").rsplit("/", 1)[-1].lower()
    for suffix, kind in _SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    raise InvalidArgumentError(
        f"cannot tell the format of {uri!r} from its name; name it .parquet or .csv, "
        "or give the format (--format parquet|csv)",
        field="format",
    )


def find_inputs(inputs: str | Sequence[str], fmt: FileFormat | None = None) -> list[InputFile]:
    """The files ``inputs`` names, in a stable order; ``InvalidArgumentError`` when one
    names nothing."""
    import fsspec

    names = [inputs] if isinstance(inputs, str) else list(inputs)
    found: list[str] = []
    for name in names:
        fs, _, _ = fsspec.get_fs_token_paths(name)
        matched = _expand(fs, name, fmt)
        if not matched:
            raise InvalidArgumentError(
                f"no input file at {name!r}"
                + ("" if fmt else " (a directory is read for its .parquet and .csv files)"),
                field="input",
            )
        found += [_unstrip(fs, name, path) for path in matched]
    return [InputFile(uri, format_of(uri, fmt), i) for i, uri in enumerate(found)]


def _expand(fs: Any, name: str, fmt: FileFormat | None) -> list[str]:
    path = fs._strip_protocol(name)
    if any(c in path for c in "*?["):
        # A glob may name directories too (``day=*/``): each is read as a directory.
        found: list[str] = []
        for match in sorted(p.rstrip("/") for p in fs.glob(path)):
            if fs.isdir(match):
                found += _directory(fs, match, fmt)
            elif not _hidden(match.rsplit("/", 1)[-1]):
                found.append(match)
        return found
    if fs.isdir(path):
        return _directory(fs, path, fmt)
    return [path] if fs.exists(path) else []


def _directory(fs: Any, path: str, fmt: FileFormat | None) -> list[str]:
    files = sorted(p for p in fs.find(path) if not _hidden(p[len(path) :]))
    return [p for p in files if _readable(p, fmt)]


def _hidden(relative: str) -> bool:
    """Files such as ``_SUCCESS`` or ``.part.tmp``: writers' bookkeeping, not data."""
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def _readable(path: str, fmt: FileFormat | None) -> bool:
    name = path.lower()
    if fmt is not None:
        return name.endswith(tuple(s for s, kind in _SUFFIXES.items() if kind == fmt))
    return name.endswith(tuple(_SUFFIXES))


def _unstrip(fs: Any, given: str, path: str) -> str:
    """``path`` as a URI again (``s3://...``), or a plain path for local files."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        return path
    uri: str = fs.unstrip_protocol(path)
    return uri


def read_chunks(file: InputFile, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The file's rows, ``chunk_rows`` at a time, as DataFrames (the last may be shorter;
    an empty file gives none)."""
    if chunk_rows < 1:
        raise InvalidArgumentError("chunk_rows must be at least 1", field="chunk_rows")
    for batch in record_batches(file, chunk_rows):
        if batch.num_rows:
            yield batch.to_pandas()


def record_batches(file: InputFile, chunk_rows: int) -> Iterator[Any]:
    """The file's rows as pyarrow record batches of ``chunk_rows`` rows."""
    import fsspec

    with fsspec.open(file.uri, "rb") as handle:
        if file.format == "parquet":
            import pyarrow.parquet as pq

            yield from rechunked(pq.ParquetFile(handle).iter_batches(chunk_rows), chunk_rows)
            return
        import pyarrow.csv as pv

        # pyarrow reads CSV in blocks of bytes: rows are regrouped into chunk_rows.
        reader = pv.open_csv(handle, read_options=pv.ReadOptions(block_size=1 << 22))
        yield from rechunked(iter(reader), chunk_rows)


def rechunked(batches: Iterator[Any], chunk_rows: int) -> Iterator[Any]:
    """Record batches regrouped into exactly ``chunk_rows`` rows (the last fewer)."""
    import pyarrow as pa

    pending: list[Any] = []
    held = 0
    for batch in batches:
        if not pending and batch.num_rows == chunk_rows:
            yield batch  # already a whole chunk (the usual case for Parquet): no copy
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows).combine_chunks().to_batches()[0]
            rest = table.slice(chunk_rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        table = pa.Table.from_batches(pending)
        yield from table.combine_chunks().to_batches() or []
