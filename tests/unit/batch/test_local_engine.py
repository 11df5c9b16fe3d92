"""The local engine: threads that read, score and write parts, stopped by the first error."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelport
from modelport.batch.files import find_inputs
from modelport.batch.local_engine import run_locally
from modelport.batch.parts import PartResult
from modelport.batch.scoring import BatchRowError, ScoringOptions
from modelport.batch.units import BatchPlan, plan_units
from modelport.errors import InvalidArgumentError
from testing_batch import rows, train


class _Package:
    """A package directory loaded the way a ``PackageSource`` loads a registered one."""

    def __init__(self, directory: Path) -> None:
        self._loaded = modelport.load(directory)

    def load(self) -> Any:
        return self._loaded


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> _Package:
    directory = tmp_path_factory.mktemp("package") / "churn"
    modelport.save(train(), directory, sample_input=rows(50)[["tenure", "charges"]],
                   accelerate=False, id_columns=["customer_id"])  # fmt: skip
    return _Package(directory)


def _plan(package: _Package, tmp_path: Path, done: frozenset[str] = frozenset()) -> BatchPlan:
    return BatchPlan(package, ScoringOptions(), str(tmp_path / "staging"), "parquet", 100, done)  # type: ignore[arg-type]


def _inputs(tmp_path: Path, bad_row: int | None = None) -> list[Any]:
    for index in range(3):
        data = rows(450, seed=index, start=1000 * index)
        if bad_row is not None and index == 1:
            data.loc[bad_row, "charges"] = np.nan
        data.to_parquet(tmp_path / f"in-{index}.parquet", row_group_size=100)
    return plan_units(find_inputs(str(tmp_path / "in-*.parquet")), 100)


@pytest.mark.parametrize("workers", [1, 4])
def test_every_part_is_written_and_reported_one_at_a_time(
    package: _Package, tmp_path: Path, workers: int
) -> None:
    units = _inputs(tmp_path)
    reported: list[PartResult] = []
    inside = threading.Semaphore(1)

    def on_part(part: PartResult) -> None:
        assert inside.acquire(blocking=False), "on_part called by two threads at once"
        reported.append(part)
        inside.release()

    results = run_locally(_plan(package, tmp_path), units, on_part, workers=workers)

    assert sorted(reported, key=lambda p: p.name) == results
    assert len(results) == 15 and sum(p.rows_out for p in results) == 1350
    written = sorted(p.name for p in (tmp_path / "staging").iterdir())
    assert written == [p.name for p in results]
    scored = pd.read_parquet(tmp_path / "staging")
    assert sorted(scored["customer_id"]) == sorted(
        i + 1000 * f for f in range(3) for i in range(450)
    )


def test_parts_already_done_are_not_written_again(package: _Package, tmp_path: Path) -> None:
    units = _inputs(tmp_path)
    done = frozenset({"part-00000-000000000000.parquet", "part-00002-000000000400.parquet"})
    results = run_locally(_plan(package, tmp_path, done), units, lambda _: None, workers=2)
    assert len(results) == 13 and not done & {p.name for p in results}


def test_the_first_error_stops_every_thread_and_is_raised_unchanged(
    package: _Package, tmp_path: Path
) -> None:
    units = _inputs(tmp_path, bad_row=250)
    before = {t.name for t in threading.enumerate()}

    with pytest.raises(BatchRowError) as info:
        run_locally(_plan(package, tmp_path), units, lambda _: None, workers=3)

    assert info.value.row == 250 and info.value.column == "charges"
    assert info.value.file.endswith("in-1.parquet")
    left = {t.name for t in threading.enumerate()} - before
    assert not [name for name in left if name.startswith("batch-")]


def test_workers_must_be_positive(package: _Package, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="at least 1"):
        run_locally(_plan(package, tmp_path), [], lambda _: None, workers=0)
