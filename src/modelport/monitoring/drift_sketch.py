"""The streaming histograms behind live drift (``monitoring.drift_live``): one
version's time buckets in one worker, and the merge of every worker's buckets.

Built and updated in the drift thread only, so the heavy imports (pandas, scipy) never
slow a worker's start.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelport.monitoring.drift.reference import (
    BinCounts,
    CategoryCounts,
    ColumnReference,
    Current,
    check_version,
)
from modelport.monitoring.drift.report import ColumnDrift, column_drift, reference_columns
from modelport.monitoring.drift.selection import choose
from modelport.package.stats import value_key

logger = logging.getLogger(__name__)

BUCKETS = 10  # the window slides by a tenth of itself
SAMPLE_SIZE = 500  # raw values kept per column per bucket (and worker)
_RAW, _BINS, _CATEGORIES = "raw", "bins", "categories"

Columns = Mapping[str, np.ndarray]
Payload = tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]
"""What a request queues: its bound inputs and its outputs, by name."""
Extractor = Callable[[Payload], Columns]
"""Turns a (joined) payload into reference column name -> 1-D values."""


def need_of(method: str, ref: ColumnReference) -> str:
    """What a test reads of the current data (as ``drift.methods`` reads it)."""
    if method in ("ks", "wasserstein"):
        return _RAW
    if method == "z" or ref.has_value_counts():
        return _CATEGORIES
    return _BINS


@dataclass(frozen=True)
class _Column:
    ref: ColumnReference
    need: str
    edges: np.ndarray | None  # _BINS: the reference's bin edges


class _Bucket:
    """One time bucket's sketch of one version (in one worker)."""

    def __init__(self, columns: Mapping[str, _Column], rng: np.random.Generator) -> None:
        self.rows = 0
        self.bins: dict[str, np.ndarray] = {}
        self.categories: dict[str, collections.Counter[str]] = {}
        # One reservoir of rows for every raw-value column: the random draws are made
        # once per row, not once per value (NaN where a row lacks the column).
        self.samples: dict[str, np.ndarray] = {
            name: np.empty(0) for name, column in columns.items() if column.need == _RAW
        }
        self.seen = 0  # rows offered to the reservoir
        self._columns = columns
        self._rng = rng

    def add(self, columns: Mapping[str, np.ndarray], rows: int) -> None:
        """One joined payload's columns (``rows`` rows each)."""
        for name, values in columns.items():
            column = self._columns[name]
            if column.need == _CATEGORIES:
                counter = self.categories.setdefault(name, collections.Counter())
                counter.update(_category_counts(column.ref, values))
            elif column.need == _BINS:
                assert column.edges is not None
                numbers = _numbers(column.ref, values)
                numbers = numbers[np.isfinite(numbers)]
                bins = len(column.ref.summary["histogram"]["counts"])
                index = np.searchsorted(column.edges, numbers, side="right") - 1
                counts = np.bincount(np.clip(index, 0, bins - 1), minlength=bins)
                known = self.bins.get(name)
                self.bins[name] = counts if known is None else known + counts
        if self.samples and rows:
            self._reservoir(columns, rows)

    def _reservoir(self, columns: Mapping[str, np.ndarray], rows: int) -> None:
        """Algorithm R over rows, vectorized: row i (0-based over the bucket) takes a
        random slot with probability SAMPLE_SIZE / (i + 1)."""
        filled = len(next(iter(self.samples.values())))
        room = min(SAMPLE_SIZE - filled, rows)
        source = np.arange(room)
        target = np.arange(filled, filled + room)
        rest = rows - room
        if rest > 0:
            positions = np.arange(self.seen + room, self.seen + rows)
            slots = (self._rng.random(rest) * (positions + 1)).astype(np.int64)
            keep = np.flatnonzero(slots < SAMPLE_SIZE)
            # Later rows overwrite earlier ones in the same slot: Algorithm R's order.
            source = np.concatenate([source, room + keep])
            target = np.concatenate([target, slots[keep]])
        for name, kept in self.samples.items():
            sample = np.concatenate([kept, np.full(room, np.nan)]) if room > 0 else kept
            values = columns.get(name)
            if values is None:
                sample[target] = np.nan
            elif source.size:
                sample[target] = _numbers(self._columns[name].ref, values)[source]
            self.samples[name] = sample
        self.seen += rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "bins": {k: v.tolist() for k, v in self.bins.items()},
            "categories": {k: dict(v) for k, v in self.categories.items()},
            "samples": {k: [v.tolist(), self.seen] for k, v in self.samples.items() if v.size},
        }


class VersionSketch:
    """The streaming histograms of one served model version in this worker."""

    def __init__(
        self,
        model: str,
        version: str,
        stats: Mapping[str, Any],
        extract: Extractor,
        window_s: float,
        *,
        seed: int | None = None,
    ) -> None:
        self.model, self.version = model, version
        self._extract = extract
        self._bucket_s = window_s / BUCKETS
        rows = int(check_version(stats).get("rows", 0))
        self.columns: dict[str, _Column] = {}
        for name, ref in reference_columns(stats).items():
            method, _ = choose(ref, rows or ref.rows)  # the default tests, as the scrape runs
            need = need_of(method, ref)
            edges = np.asarray(ref.summary["histogram"]["edges"]) if need == _BINS else None
            self.columns[name] = _Column(ref, need, edges)
        self._buckets: dict[int, _Bucket] = {}
        self._rng = np.random.default_rng(seed)

    def fold(self, payloads: list[Payload], now: float) -> None:
        """Add the requests' rows to the bucket of ``now``: their arrays are joined first
        (one array per input and output for all of them), so each column costs one
        numpy pass however many requests came."""
        key = int(now // self._bucket_s)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.columns, self._rng)
        for batch, outputs in _joined(payloads):
            extracted = self._extract((batch, outputs))
            columns = {k: np.asarray(v).ravel() for k, v in extracted.items() if k in self.columns}
            rows = max((len(v) for v in columns.values()), default=0)
            bucket.rows += rows
            bucket.add(columns, rows)

    def expire(self, now: float) -> bool:
        """Forget buckets that left the window; True when any did."""
        oldest = int(now // self._bucket_s) - BUCKETS + 1
        old = [key for key in self._buckets if key < oldest]
        for key in old:
            del self._buckets[key]
        return bool(old)

    def to_dict(self) -> dict[str, Any]:
        """This worker's buckets, as its file holds them."""
        return {
            "model": self.model,
            "version": self.version,
            "bucket_s": self._bucket_s,
            "buckets": {str(k): b.to_dict() for k, b in self._buckets.items()},
        }


def _joined(payloads: list[Payload]) -> Iterator[Payload]:
    """Requests with the same inputs and outputs, their arrays concatenated (requests
    asking for fewer outputs form their own group)."""
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Payload]] = {}
    for payload in payloads:
        groups.setdefault((tuple(payload[0]), tuple(payload[1])), []).append(payload)
    for (inputs, outputs), group in groups.items():
        if len(group) == 1:
            yield group[0]
            continue
        yield (
            {k: np.concatenate([p[0][k] for p in group]) for k in inputs},
            {k: np.concatenate([p[1][k] for p in group]) for k in outputs},
        )


def merge(states: Iterable[Mapping[str, Any]], now: float) -> dict[tuple[str, str], Merged]:
    """Every version's buckets within the window, over every worker's state."""
    merged: dict[tuple[str, str], Merged] = {}
    for state in states:
        key = (str(state["model"]), str(state["version"]))
        oldest = int(now // float(state["bucket_s"])) - BUCKETS + 1
        for bucket_key, bucket in state["buckets"].items():
            if int(bucket_key) >= oldest:
                merged.setdefault(key, Merged()).add(bucket)
    return merged


class Merged:
    """One version's buckets of every worker, added up."""

    rows: int

    def __init__(self) -> None:
        self.rows = 0
        self.bins: dict[str, np.ndarray] = {}
        self.categories: dict[str, collections.Counter[str]] = {}
        self.samples: dict[str, list[tuple[list[float], int]]] = collections.defaultdict(list)

    def add(self, bucket: Mapping[str, Any]) -> None:
        self.rows += int(bucket["rows"])
        for name, counts in bucket["bins"].items():
            array = np.asarray(counts, dtype=np.int64)
            known = self.bins.get(name)
            self.bins[name] = array if known is None else known + array
        for name, counts in bucket["categories"].items():
            self.categories.setdefault(name, collections.Counter()).update(counts)
        for name, (values, seen) in bucket["samples"].items():
            self.samples[name].append((values, int(seen)))

    def current(self, name: str) -> Current | None:
        if name in self.bins:
            return BinCounts(self.bins[name].tolist())
        if name in self.categories:
            return CategoryCounts(dict(self.categories[name]))
        if name in self.samples:
            return _proportional(self.samples[name])
        return None


def _proportional(parts: list[tuple[list[float], int]]) -> np.ndarray:
    """One sample from per-bucket (and per-worker) reservoirs: each contributes in
    proportion to the rows it saw, as many as the smallest ratio of kept to seen
    allows, so the result stays a uniform sample of the window. Missing values dropped."""
    parts = [(values, seen) for values, seen in parts if seen > 0 and values]
    if not parts:
        return np.empty(0)
    scale = min(len(values) / seen for values, seen in parts)
    rng = np.random.default_rng(0)
    chunks = [
        rng.permutation(np.asarray(values, dtype="float64"))[: int(seen * scale)]
        for values, seen in parts
    ]
    sample = np.concatenate(chunks)
    finite: np.ndarray = sample[np.isfinite(sample)]
    return finite


def tests(stats: Mapping[str, Any], window: Merged) -> Iterable[ColumnDrift]:
    """The default test of every column the window holds."""
    rows = int(stats.get("rows", 0))
    for name, ref in reference_columns(stats).items():
        current = window.current(name)
        if current is None or _empty(current):
            continue
        try:
            yield column_drift(ref, current, rows, None)
        except Exception as exc:  # one column's problem must not hide the others
            logger.warning("live drift: column %r not tested: %s", name, exc)


def _empty(current: Current) -> bool:
    if isinstance(current, BinCounts):
        return sum(current.counts) == 0
    if isinstance(current, CategoryCounts):
        return sum(current.counts.values()) == 0
    return len(current) == 0


def _numbers(ref: ColumnReference, values: np.ndarray) -> np.ndarray:
    """Values as float64, row for row (missing and non-numeric ones NaN)."""
    if values.dtype.kind in "iufb":
        data: np.ndarray = values.astype("float64", copy=False)
    elif values.dtype.kind == "M":
        data = values.astype("datetime64[ns]").astype("int64").astype("float64") / 1e9
    else:
        data = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    return data


def _category_counts(ref: ColumnReference, values: np.ndarray) -> dict[str, int]:
    if ref.is_numeric:
        numbers = _numbers(ref, values)
        numbers, counts = np.unique(numbers[np.isfinite(numbers)], return_counts=True)
        return {value_key(v): int(n) for v, n in zip(numbers, counts, strict=True)}
    present = pd.Series(values, dtype=object).dropna()
    return {str(k): int(n) for k, n in present.astype(str).value_counts().items()}
