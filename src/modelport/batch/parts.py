"""Writing a batch job's output as parts: one file per scored chunk, in a staging
directory that the job commits when every part is written (``batch.commit``).

A part is written under a temporary name and renamed (on object stores, where one
upload is already all or nothing, it is written directly), so a part that exists is
whole. Rows that could not be scored go to ``_errors/<part>.parquet`` beside it.
Part names are deterministic (``part-<file>-<first row>``): a resumed job knows which parts
it already has, whichever engine wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.batch.files import FileFormat

if TYPE_CHECKING:
    import pandas as pd

    from modelport.batch.scoring import ScoredChunk

ERRORS_DIR = "_errors"


@dataclass(frozen=True)
class PartResult:
    """What one written part holds (the job's journal records these)."""

    name: str
    rows_in: int
    rows_out: int
    rows_failed: int


def part_name(file_index: int, first_row: int, fmt: FileFormat) -> str:
    """The name of the part holding the chunk of input file ``file_index`` that starts at
    its row ``first_row``."""
    return f"part-{file_index:05d}-{first_row:012d}.{fmt}"


def write_part(chunk: ScoredChunk, staging: str, name: str, fmt: FileFormat) -> PartResult:
    """Write ``chunk``'s rows as ``staging/name`` (and its errors, if any); whole or not
    at all."""
    _write_table(chunk.table, f"{staging.rstrip('/')}/{name}", fmt)
    if chunk.rows_failed:
        stem = name.rsplit(".", 1)[0]
        _write_table(chunk.errors, f"{staging.rstrip('/')}/{ERRORS_DIR}/{stem}.parquet", "parquet")
    return PartResult(name, chunk.rows_in, len(chunk.table), chunk.rows_failed)


def _write_table(frame: pd.DataFrame, uri: str, fmt: FileFormat) -> None:
    import fsspec

    fs, _, (path,) = fsspec.get_fs_token_paths(uri)
    local = _is_local(fs)
    target = _temporary(path) if local else path
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(target, "wb") as handle:
        _encode(frame, handle, fmt)
    if local:
        fs.mv(target, path)


def _encode(frame: pd.DataFrame, handle: Any, fmt: FileFormat) -> None:
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, handle)
    else:
        import pyarrow.csv as pv

        pv.write_csv(table, handle)


def _temporary(path: str) -> str:
    directory, _, name = path.rpartition("/")
    return f"{directory}/.{name}.tmp"


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")
