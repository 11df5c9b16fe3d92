"""Where a batch job writes while it runs, its journal, and the commit that publishes it.

A job's output is a directory of parts (``scores.parquet/part-00000-000000000000.parquet``,
...), ``_errors/`` when rows failed, ``_modelport.json`` (the summary) and ``_SUCCESS``.
Readers skip names starting with ``_`` or ``.`` (pyarrow datasets, pandas, Spark, and
``find_inputs``), so the bookkeeping never reads as data.

On the local disk the parts go to a staging directory beside the output,
``<output>.modelport-staging/``, and the commit is one rename: until then there is no
output at all, so a failed or killed run cannot leave one that looks complete (an older
output being replaced stays readable until the rename). Object stores cannot rename a
directory, so there the parts are written in the output directory itself and
``_SUCCESS`` is written last: readers must look for it (as for Spark's and Hadoop's
outputs) before trusting the parts.

The journal, ``_job.json`` in the staging directory, records what the job is (the model
version it scores with, its inputs and options) and the parts written so far. It is
rewritten every few seconds as parts complete, and when the job stops: ``--resume``
reads it to skip the parts already written (a part written after its last rewrite is
written again, whole).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelport.batch.parts import PartResult
from modelport.errors import ConflictError, InvalidArgumentError

STAGING_SUFFIX = ".modelport-staging"
JOURNAL = "_job.json"
SUCCESS = "_SUCCESS"
SUMMARY = "_modelport.json"
JOURNAL_FORMAT = 1


@dataclass(frozen=True)
class JobIdentity:
    """What a resumed job must share with the run it continues."""

    model_ref: str  # as given: churn@production
    model: str
    version: int
    manifest_digest: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    keep: tuple[str, ...] | None
    on_error: str
    output_format: str
    chunk_rows: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = list(self.inputs)
        data["outputs"] = list(self.outputs)
        data["keep"] = None if self.keep is None else list(self.keep)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobIdentity:
        keep = data.get("keep")
        return cls(
            model_ref=str(data["model_ref"]),
            model=str(data["model"]),
            version=int(data["version"]),
            manifest_digest=str(data["manifest_digest"]),
            inputs=tuple(data["inputs"]),
            outputs=tuple(data["outputs"]),
            keep=None if keep is None else tuple(keep),
            on_error=str(data["on_error"]),
            output_format=str(data["output_format"]),
            chunk_rows=int(data["chunk_rows"]),
        )

    def differences(self, other: JobIdentity) -> list[str]:
        """What differs from ``other`` besides the model version (``[]``: the same job)."""
        skipped = {"model_ref", "model", "version", "manifest_digest", "inputs"}
        mine, theirs = self.to_dict(), other.to_dict()
        changed = [] if self.inputs == other.inputs else [_inputs_change(other.inputs, self.inputs)]
        return changed + [
            f"{name} was {theirs[name]!r}, now {mine[name]!r}"
            for name in mine
            if name not in skipped and mine[name] != theirs[name]
        ]


def _inputs_change(before: tuple[str, ...], now: tuple[str, ...]) -> str:
    """How the input files changed, short even for thousands of files."""
    gone = [name for name in before if name not in set(now)]
    new = [name for name in now if name not in set(before)]
    if not gone and not new:
        return "the inputs are the same files in another order"
    said = [f"{len(before)} input files then, {len(now)} now"]
    if new:
        said.append(f"new: {new[0]!r}" + (f" and {len(new) - 1} more" if len(new) > 1 else ""))
    if gone:
        said.append(f"gone: {gone[0]!r}" + (f" and {len(gone) - 1} more" if len(gone) > 1 else ""))
    return ", ".join(said)


class Location:
    """An output location on any fsspec file system, and its staging directory."""

    def __init__(self, output: str) -> None:
        import fsspec

        if not output or not output.strip():
            raise InvalidArgumentError("give an output directory", field="output")
        self.output = output.rstrip("/")
        self.fs, root = fsspec.core.url_to_fs(self.output)
        self.path = str(root).rstrip("/")
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.local = protocol in ("file", "local")
        # Object stores: parts go where they end up; _SUCCESS marks them complete.
        self.staging_path = self.path + STAGING_SUFFIX if self.local else self.path
        self.staging = self.staging_path if self.local else self.output

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def complete(self) -> bool:
        """Whether the output is a committed job's (or anything else already there)."""
        if self.local:
            return self.exists(self.path)
        return self.exists(f"{self.path}/{SUCCESS}") or (
            self.exists(self.path) and not self.exists(f"{self.path}/{JOURNAL}")
        )

    def read_journal(self) -> dict[str, Any] | None:
        path = f"{self.staging_path}/{JOURNAL}"
        if not self.exists(path):
            return None
        try:
            data: dict[str, Any] = json.loads(self.fs.cat_file(path))
        except (ValueError, OSError) as exc:
            raise ConflictError(
                f"cannot read the journal {path} of the interrupted run: {exc}; "
                "start again with --overwrite"
            ) from None
        return data

    def write_file(self, name: str, data: bytes) -> None:
        """``staging/name``, whole or not at all (renamed into place on a local disk)."""
        path = f"{self.staging_path}/{name}"
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_name(f".{target.name}.tmp")
        scratch.write_bytes(data)
        scratch.replace(target)

    def remove(self, path: str) -> None:
        if self.exists(path):
            self.fs.rm(path, recursive=True)


def prepare(location: Location, *, overwrite: bool, resume: bool) -> dict[str, Any] | None:
    """Make ready to write the job at ``location``: the journal of the run to resume, or
    None for a new run. Refuses to replace an output or discard an interrupted run unless
    told (``overwrite``)."""
    output, staging = location.output, location.staging
    if location.complete():
        if resume:
            raise ConflictError(
                f"the output {output} is complete: there is nothing to resume "
                "(pass --overwrite without --resume to score again)",
                field="output",
            )
        if not overwrite:
            raise ConflictError(
                f"the output {output} exists; pass --overwrite to replace it", field="output"
            )
        if not location.local:  # no rename there: the old parts go first
            location.remove(location.path)
    if overwrite:  # whatever an interrupted run left goes too
        location.remove(location.staging_path)
        return None
    journal = location.read_journal()
    if resume and journal is not None:
        return journal
    # A run that stopped before writing a part left nothing worth keeping.
    if journal is not None and journal.get("parts") and not resume:
        raise ConflictError(
            f"an interrupted run left {staging}: pass --resume to continue it, "
            "or --overwrite to start again",
            field="output",
        )
    location.remove(location.staging_path)
    return None


def journal_parts(journal: Mapping[str, Any]) -> dict[str, PartResult]:
    """The parts a journal records as written."""
    return {
        name: PartResult(name, int(counts[0]), int(counts[1]), int(counts[2]))
        for name, counts in dict(journal.get("parts", {})).items()
    }


class Journal:
    """The running job's ``_job.json``: its identity and the parts written so far,
    rewritten at most every ``interval`` seconds (and by ``flush``)."""

    def __init__(
        self,
        location: Location,
        identity: JobIdentity,
        parts: Mapping[str, PartResult] | None = None,
        *,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._location = location
        self.identity = identity
        self._parts: dict[str, PartResult] = dict(parts or {})
        self._interval = interval
        self._clock = clock
        self._written_at = clock()
        self._lock = threading.Lock()  # engines may report parts from several threads

    @property
    def parts(self) -> dict[str, PartResult]:
        with self._lock:
            return dict(self._parts)

    def add(self, part: PartResult) -> None:
        """Record a written part; the file is rewritten when ``interval`` has passed."""
        with self._lock:
            self._parts[part.name] = part
            due = self._clock() - self._written_at >= self._interval
        if due:
            self.flush()

    def flush(self, *, status: str = "running", error: str | None = None) -> None:
        """Rewrite the journal now."""
        with self._lock:
            document = {
                "format": JOURNAL_FORMAT,
                "status": status,
                "error": error,
                "job": self.identity.to_dict(),
                "parts": {
                    name: [p.rows_in, p.rows_out, p.rows_failed]
                    for name, p in sorted(self._parts.items())
                },
            }
            self._location.write_file(JOURNAL, json.dumps(document, indent=1).encode())
            self._written_at = self._clock()


def commit(location: Location, summary: Mapping[str, Any]) -> None:
    """Publish the staged output: the summary and ``_SUCCESS``, then (local disk) the
    rename of the staging directory to the output, replacing an older output."""
    location.fs.makedirs(location.staging_path, exist_ok=True)
    location.write_file(SUMMARY, json.dumps(summary, indent=2, default=str).encode())
    location.write_file(SUCCESS, b"")
    if not location.local:
        return
    output, staging = Path(location.path), Path(location.staging_path)
    if output.exists() or output.is_symlink():
        # Moved aside first (a rename), so the output is never a mix of old and new.
        old = output.with_name(output.name + ".modelport-old")
        if old.exists():
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        output.rename(old)
        staging.rename(output)
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(output)
