"""A batch job from start to commit: inputs, output, model version, engine, journal.

``run_batch`` finds the input files, makes the output location ready (refusing to
replace an output or discard an interrupted run unless told), resolves the model
reference once, cuts the inputs into units, runs them on the chosen engine (this
process, Dask or Ray), records each written part in the journal and the progress
display, and commits the output with its summary. A resumed job checks that it is the
same job (inputs, options) scoring with the same model version as the run it continues.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from modelport.batch import commit as commits
from modelport.batch.files import FileFormat, find_inputs, format_of
from modelport.batch.parts import ERRORS_DIR, PartResult
from modelport.batch.progress import NoProgress, Progress
from modelport.batch.scoring import ScoringOptions
from modelport.batch.source import PackageSource
from modelport.batch.units import BatchPlan, OnPart, Unit, plan_units
from modelport.errors import ConflictError, InvalidArgumentError

ENGINES = ("local", "dask", "ray")

ResolveSource = Callable[[str, int | None], PackageSource]
"""``(ref, version)`` -> the package source of what ``ref`` names now, or of its
``version`` when given (a resumed job's); checks the signature where the policy wants one."""


@dataclass(frozen=True)
class BatchJob:
    """What to score, with what, and where the output goes."""

    model_ref: str
    inputs: str | Sequence[str]
    output: str
    options: ScoringOptions = field(default_factory=ScoringOptions)
    input_format: FileFormat | None = None
    output_format: FileFormat | None = None  # None: from the output's name, else Parquet
    chunk_rows: int = 100_000
    resume: bool = False
    allow_moved_alias: bool = False
    overwrite: bool = False
    engine: str = "local"
    scheduler: str | None = None  # Dask scheduler or Ray address
    workers: int | None = None


@dataclass(frozen=True)
class BatchSummary:
    """What a finished job did (``_modelport.json`` in the output, and ``--json``)."""

    model: str
    version: int
    model_ref: str
    output: str
    format: str
    engine: str
    files: int
    rows_in: int
    rows_out: int
    rows_failed: int
    parts: int
    resumed_parts: int
    seconds: float
    rows_per_s: float
    errors: str | None  # the directory of the failed rows' lists, when rows failed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_batch(
    job: BatchJob, resolve: ResolveSource, *, progress: Progress | None = None
) -> BatchSummary:
    """Run ``job`` to its committed output; see the module's docstring."""
    started = time.monotonic()
    _check(job)
    output_format = _output_format(job)
    files = find_inputs(job.inputs, job.input_format)
    location = commits.Location(job.output)
    # Resolved (and its signature checked) before an older output is touched.
    source = resolve(job.model_ref, None)
    previous = commits.prepare(location, overwrite=job.overwrite, resume=job.resume)
    identity = _identity(job, source, files=[f.uri for f in files], output_format=output_format)
    done: dict[str, PartResult] = {}
    if previous is not None:
        source, identity = _resumed(job, resolve, source, identity, previous)
        done = commits.journal_parts(previous)
    units = plan_units(files, job.chunk_rows)
    journal = commits.Journal(location, identity, done)
    journal.flush()
    plan = BatchPlan(
        source, job.options, location.staging, output_format, job.chunk_rows, frozenset(done)
    )
    shown = progress or NoProgress()
    shown.start(
        _total_rows(units),
        sum(p.rows_in for p in done.values()),
        sum(p.rows_failed for p in done.values()),
    )

    def on_part(part: PartResult) -> None:
        journal.add(part)
        shown.advance(part)

    try:
        run_engine(job, plan, units, on_part)
    except BaseException as exc:
        with contextlib.suppress(Exception):  # the job's own error is what matters
            journal.flush(status="failed", error=str(exc))
        raise
    finally:
        shown.close()
    journal.flush(status="done")  # every part written
    summary = _summary(
        job,
        source=source,
        location=location,
        parts=journal.parts,
        resumed=done,
        files=files,
        started=started,
        output_format=output_format,
    )
    commits.commit(location, summary.to_dict())
    return summary


def run_engine(job: BatchJob, plan: BatchPlan, units: list[Unit], on_part: OnPart) -> None:
    """Score ``units`` on the job's engine (its module imported only when chosen)."""
    if job.engine == "local":
        from modelport.batch.local_engine import run_locally

        run_locally(plan, units, on_part, workers=job.workers)
    elif job.engine == "dask":
        from modelport.batch.dask_engine import (  # type: ignore[import-not-found,unused-ignore]
            run_on_dask,
        )

        run_on_dask(plan, units, on_part, scheduler=job.scheduler, workers=job.workers)
    else:
        from modelport.batch.ray_engine import (  # type: ignore[import-not-found,unused-ignore]
            run_on_ray,
        )

        run_on_ray(plan, units, on_part, address=job.scheduler, workers=job.workers)


def _check(job: BatchJob) -> None:
    if job.engine not in ENGINES:
        raise InvalidArgumentError(
            f"unknown engine {job.engine!r}; choose {', '.join(ENGINES)}", field="engine"
        )
    if job.scheduler is not None and job.engine == "local":
        raise InvalidArgumentError(
            "a scheduler address is for --engine dask or ray, not local", field="scheduler"
        )
    if job.chunk_rows < 1:
        raise InvalidArgumentError(
            f"chunk_rows must be at least 1, not {job.chunk_rows}", field="chunk_rows"
        )
    if job.workers is not None and job.workers < 1:
        raise InvalidArgumentError(
            f"workers must be at least 1, not {job.workers}", field="workers"
        )
    if job.resume and job.overwrite:
        raise InvalidArgumentError(
            "--resume continues an interrupted run and --overwrite starts again: choose one",
            field="resume",
        )


def _output_format(job: BatchJob) -> FileFormat:
    if job.output_format is not None:
        return format_of(job.output, job.output_format)
    return "csv" if job.output.rstrip("/").lower().endswith(".csv") else "parquet"


def _identity(
    job: BatchJob, source: PackageSource, *, files: list[str], output_format: FileFormat
) -> commits.JobIdentity:
    options = job.options
    return commits.JobIdentity(
        model_ref=job.model_ref,
        model=source.version.name,
        version=source.version.version,
        manifest_digest=source.version.manifest_digest,
        inputs=tuple(files),
        outputs=tuple(options.outputs),
        keep=None if options.keep is None else tuple(options.keep),
        on_error=options.on_error,
        output_format=output_format,
        chunk_rows=job.chunk_rows,
    )


def _resumed(
    job: BatchJob,
    resolve: ResolveSource,
    source: PackageSource,
    identity: commits.JobIdentity,
    journal: dict[str, Any],
) -> tuple[PackageSource, commits.JobIdentity]:
    """The source and identity to continue the journal's run with; ``ConflictError`` when
    it is not the same job, or the reference now names another version."""
    before = commits.JobIdentity.from_dict(journal["job"])
    changed = identity.differences(before)
    if before.model != identity.model:
        changed.insert(0, f"model was {before.model!r}, now {identity.model!r}")
    if changed:
        raise ConflictError(
            f"cannot resume the run at {job.output}: it is not the same job ("
            + "; ".join(changed)
            + "); run it as it was, or start again with --overwrite",
            field="resume",
        )
    if before.version == identity.version:
        return source, identity
    name = identity.model
    if not job.allow_moved_alias:
        raise ConflictError(
            f"cannot resume the run at {job.output}: {job.model_ref} now names "
            f"{name}/{identity.version}, but the run scored its first parts with "
            f"{name}/{before.version}; pass --allow-moved-alias to finish with "
            f"{name}/{before.version}, or --overwrite to score everything with "
            f"{name}/{identity.version}",
            model=name,
            version=identity.version,
            field="resume",
        )
    pinned = resolve(job.model_ref, before.version)
    return pinned, replace(
        identity, version=before.version, manifest_digest=pinned.version.manifest_digest
    )


def _total_rows(units: list[Unit]) -> int | None:
    """The rows to score, when every unit knows its own (Parquet footers; not CSV)."""
    if any(unit.rows is None for unit in units):
        return None
    return sum(unit.rows or 0 for unit in units)


def _summary(
    job: BatchJob,
    *,
    source: PackageSource,
    location: commits.Location,
    parts: dict[str, PartResult],
    resumed: dict[str, PartResult],
    files: list[Any],
    started: float,
    output_format: FileFormat,
) -> BatchSummary:
    seconds = time.monotonic() - started
    scored_now = sum(p.rows_in for name, p in parts.items() if name not in resumed)
    failed = sum(p.rows_failed for p in parts.values())
    return BatchSummary(
        model=source.version.name,
        version=source.version.version,
        model_ref=job.model_ref,
        output=location.output,
        format=output_format,
        engine=job.engine,
        files=len(files),
        rows_in=sum(p.rows_in for p in parts.values()),
        rows_out=sum(p.rows_out for p in parts.values()),
        rows_failed=failed,
        parts=len(parts),
        resumed_parts=len(resumed),
        seconds=round(seconds, 3),
        rows_per_s=round(scored_now / seconds, 1) if seconds > 0 else 0.0,
        errors=f"{location.output}/{ERRORS_DIR}" if failed else None,
    )
