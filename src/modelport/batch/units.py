"""A batch job cut into units of work that any engine can run anywhere.

A unit is a run of rows of one input file: for Parquet, consecutive row groups of
about ``chunk_rows`` rows (a file of many row groups spreads over many workers); for CSV,
the whole file (a CSV file cannot be entered in the middle). ``score_unit`` runs one
unit where it is called (a thread, a Dask worker, a Ray task): it loads the model once
per process (``PackageSource.load``), reads the unit's rows ``chunk_rows`` at a time,
scores them and writes each chunk as a part named by its file and first row. Parts a
resumed job already has are skipped, unread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelport.batch.files import FileFormat, InputFile, rechunked, record_batches
from modelport.batch.parts import PartResult, part_name, write_part
from modelport.batch.scoring import ChunkScorer, ScoringOptions

if TYPE_CHECKING:
    from modelport.batch.source import PackageSource


@dataclass(frozen=True)
class BatchPlan:
    """Everything a worker needs to score units of a job (small and picklable)."""

    source: PackageSource
    options: ScoringOptions
    staging: str  # URI of the staging directory the parts go to
    output_format: FileFormat
    chunk_rows: int
    done: frozenset[str] = field(default_factory=frozenset)  # parts written before (resume)


@dataclass(frozen=True)
class Unit:
    """Rows of one file: the row groups ``row_groups`` (Parquet; None for the whole file)
    whose first row is row ``first_row`` of the file."""

    file: InputFile
    first_row: int
    rows: int | None  # None: not known before reading (CSV)
    row_groups: tuple[int, ...] | None = None


OnPart = Callable[[PartResult], None]
"""Told of each part as it is written (the job's journal and progress bar)."""


def plan_units(files: list[InputFile], chunk_rows: int) -> list[Unit]:
    """Every file's units, in file order (Parquet footers are read; CSV is not opened)."""
    units: list[Unit] = []
    for file in files:
        if file.format == "csv":
            units.append(Unit(file, 0, None))
        else:
            units += _parquet_units(file, chunk_rows)
    return units


def _parquet_units(file: InputFile, chunk_rows: int) -> list[Unit]:
    import fsspec
    import pyarrow.parquet as pq

    with fsspec.open(file.uri, "rb") as handle:
        metadata = pq.ParquetFile(handle).metadata
    units: list[Unit] = []
    groups: list[int] = []
    first = rows = 0
    for index in range(metadata.num_row_groups):
        groups.append(index)
        rows += metadata.row_group(index).num_rows
        if rows >= chunk_rows:
            units.append(Unit(file, first, rows, tuple(groups)))
            first, rows, groups = first + rows, 0, []
    if groups and rows:
        units.append(Unit(file, first, rows, tuple(groups)))
    return units


def score_unit(plan: BatchPlan, unit: Unit, on_part: OnPart | None = None) -> list[PartResult]:
    """Score one unit here and write its parts; the parts already done are skipped."""
    scorer = ChunkScorer(plan.source.load(), plan.options)
    written: list[PartResult] = []
    for first_row, chunk in unit_chunks(unit, plan.chunk_rows, plan.done):
        name = part_name(unit.file.index, first_row, plan.output_format)
        scored = scorer.score(
            chunk, file=unit.file.uri, first_row=first_row, from_text=unit.file.format == "csv"
        )
        result = write_part(scored, plan.staging, name, plan.output_format)
        written.append(result)
        if on_part is not None:
            on_part(result)
    return written


def unit_chunks(
    unit: Unit, chunk_rows: int, done: frozenset[str] = frozenset()
) -> Iterator[tuple[int, Any]]:
    """The unit's chunks as (first row in the file, DataFrame), without those whose part
    is in ``done`` (they are still read past in a CSV file, not converted)."""
    first = unit.first_row
    for batch in _unit_batches(unit, chunk_rows):
        if not any(name in done for name in _names(unit.file, first)):
            yield first, batch.to_pandas()
        first += batch.num_rows


def _names(file: InputFile, first_row: int) -> tuple[str, ...]:
    return tuple(part_name(file.index, first_row, fmt) for fmt in ("parquet", "csv"))


def _unit_batches(unit: Unit, chunk_rows: int) -> Iterator[Any]:
    if unit.row_groups is None:
        yield from record_batches(unit.file, chunk_rows)
        return
    import fsspec
    import pyarrow.parquet as pq

    with fsspec.open(unit.file.uri, "rb") as handle:
        reader = pq.ParquetFile(handle)
        batches = reader.iter_batches(batch_size=chunk_rows, row_groups=list(unit.row_groups))
        yield from rechunked(batches, chunk_rows)
