"""The streaming histograms behind live drift (``monitoring.drift_live``): one
version's time buckets in one worker, and the merge of every worker's buckets.

Built and updated in the drift thread only, so the heavy imports (pandas, scipy) never
slow a worker's start.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable, Mapping
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
Extractor = Callable[[Any], Columns]
"""Turns what ``observe`` queued into reference column name -> 1-D values."""


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
        self.samples: dict[str, np.ndarray] = {}
        self.seen: dict[str, int] = {}
        self._columns = columns
        self._rng = rng

    def add(self, name: str, values: np.ndarray) -> None:
        column = self._columns[name]
        if column.need == _CATEGORIES:
            counter = self.categories.setdefault(name, collections.Counter())
            counter.update(_category_counts(column.ref, values))
            return
        numbers = _numbers(column.ref, values)
        if column.need == _BINS:
            assert column.edges is not None
            bins = len(column.ref.summary["histogram"]["counts"])
            index = np.clip(np.searchsorted(column.edges, numbers, side="right") - 1, 0, bins - 1)
            counts = np.bincount(index, minlength=bins)
            known = self.bins.get(name)
            self.bins[name] = counts if known is None else known + counts
            return
        self._reservoir(name, numbers)

    def _reservoir(self, name: str, values: np.ndarray) -> None:
        """Algorithm R, vectorized: item i (0-based over the bucket) replaces a random
        slot with probability SAMPLE_SIZE / (i + 1)."""
        sample = self.samples.get(name, np.empty(0))
        seen = self.seen.get(name, 0)
        room = max(SAMPLE_SIZE - sample.size, 0)
        sample = np.concatenate([sample, values[:room]])
        rest = values[room:]
        if rest.size:
            positions = np.arange(seen + room, seen + room + rest.size)
            slots = (self._rng.random(rest.size) * (positions + 1)).astype(np.int64)
            keep = slots < SAMPLE_SIZE
            sample[slots[keep]] = rest[keep]  # later items overwrite earlier: sequential order
        self.samples[name] = sample
        self.seen[name] = seen + values.size

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "bins": {k: v.tolist() for k, v in self.bins.items()},
            "categories": {k: dict(v) for k, v in self.categories.items()},
            "samples": {k: [v.tolist(), self.seen[k]] for k, v in self.samples.items()},
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
        self._rng = np.random.default_rng()

    def fold(self, payloads: list[Any], now: float) -> None:
        """Add the requests' rows to the bucket of ``now``, each column in one numpy pass."""
        key = int(now // self._bucket_s)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.columns, self._rng)
        gathered: dict[str, list[np.ndarray]] = collections.defaultdict(list)
        for payload in payloads:
            rows = 0
            for name, values in self._extract(payload).items():
                if name in self.columns:
                    gathered[name].append(np.asarray(values).ravel())
                    rows = max(rows, len(values))
            bucket.rows += rows
        for name, parts in gathered.items():
            bucket.add(name, np.concatenate(parts) if len(parts) > 1 else parts[0])

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
    """One sample from per-bucket reservoirs: each contributes in proportion to the rows
    it saw, so the result stays uniform over the window."""
    total = sum(seen for _, seen in parts)
    size = sum(len(values) for values, _ in parts)
    if total == 0:
        return np.empty(0)
    rng = np.random.default_rng(0)
    chunks = []
    for values, seen in parts:
        take = min(len(values), round(size * seen / total))
        chunks.append(rng.permutation(np.asarray(values, dtype="float64"))[:take])
    return np.concatenate(chunks) if chunks else np.empty(0)


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
    if values.dtype.kind in "iufb":
        data = values.astype("float64", copy=False)
    elif values.dtype.kind == "M":
        data = values.astype("datetime64[ns]").astype("int64").astype("float64") / 1e9
    else:
        data = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    finite: np.ndarray = data[np.isfinite(data)]
    return finite


def _category_counts(ref: ColumnReference, values: np.ndarray) -> dict[str, int]:
    if ref.is_numeric:
        numbers, counts = np.unique(_numbers(ref, values), return_counts=True)
        return {value_key(v): int(n) for v, n in zip(numbers, counts, strict=True)}
    present = pd.Series(values, dtype=object).dropna()
    return {str(k): int(n) for k, n in present.astype(str).value_counts().items()}
