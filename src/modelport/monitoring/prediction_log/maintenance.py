"""Compaction of small segments and deletion of expired days.

Both work on whole UTC days before today, which writers no longer touch (a writer
only writes the day of its records' time, and rows arrive with the current time).
Compaction writes the merged segment before deleting its sources: a crash between
the two leaves rows twice, never loses them.

Label days (``<model>/_labels/<day>``, ``monitoring.feedback``) are treated the same
way: merging keeps every row with its time and order, so the latest label per key is
unchanged, and a label older than the retention can only be for predictions that are
older still.
"""

from __future__ import annotations

import logging
import posixpath
import secrets
from datetime import UTC, date, datetime, timedelta

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from modelport.config import PredictionLogSettings
from modelport.errors import InvalidArgumentError
from modelport.monitoring.prediction_log.segments import (
    SUFFIX,
    list_segments,
    open_root,
    write_segment,
)

logger = logging.getLogger(__name__)


def _day_dirs(uri: str) -> tuple[fsspec.AbstractFileSystem, list[tuple[str, date]]]:
    fs, root = open_root(uri)
    found = []
    for path in fs.glob(posixpath.join(root, "*", "*", "*")):
        try:
            found.append((str(path), date.fromisoformat(posixpath.basename(str(path)))))
        except ValueError:
            continue  # not a day directory
    return fs, found


def compact(uri: str, *, today: date | None = None) -> int:
    """Merge each past day's segments into one file; return how many files were merged."""
    today = today or datetime.now(UTC).date()
    fs, days = _day_dirs(uri)
    merged = 0
    for directory, day in days:
        if day >= today:
            continue
        files = list_segments(fs, posixpath.join(directory, "*" + SUFFIX))
        if len(files) < 2:
            continue
        tables = [pq.read_table(path, filesystem=fs) for path in files]
        table = pa.concat_tables(tables, promote_options="permissive")
        write_segment(fs, directory, f"compacted-{secrets.token_hex(4)}", table)
        for path in files:
            fs.rm_file(path)
        merged += len(files)
    return merged


def delete_expired(uri: str, retention_days: int, *, today: date | None = None) -> int:
    """Delete the days older than ``retention_days`` before today; return how many."""
    if retention_days < 1:
        raise InvalidArgumentError(
            f"Prediction log retention_days is {retention_days}: it must be 1 or more."
        )
    today = today or datetime.now(UTC).date()
    oldest_kept = today - timedelta(days=retention_days)
    fs, days = _day_dirs(uri)
    deleted = 0
    for directory, day in days:
        if day < oldest_kept:
            fs.rm(directory, recursive=True)
            deleted += 1
    return deleted


class LogMaintenance:
    """The periodic pass a server runs: compact past days, delete expired ones."""

    def __init__(self, settings: PredictionLogSettings, uri: str) -> None:
        self.uri = uri
        self.retention_days = settings.retention_days
        self.interval_s = settings.maintenance_interval_s

    def run_once(self) -> tuple[int, int]:
        """Compact, then delete expired days; (files merged, days deleted)."""
        merged = compact(self.uri)
        deleted = delete_expired(self.uri, self.retention_days)
        if merged or deleted:
            logger.info(
                "Prediction log maintenance: merged %d segments, deleted %d expired days",
                merged,
                deleted,
            )
        return merged, deleted
