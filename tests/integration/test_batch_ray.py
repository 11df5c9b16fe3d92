"""Batch scoring on a real local Ray: the engine (``run_on_ray``) writes the parts a local
run writes and raises a bad row's error as it was raised; ``modelport.ray.predict`` on a
Ray Dataset answers what pandas scoring answers.

The first test lets ``run_on_ray`` start and stop a Ray of its own; the others share one
local Ray for the module, started with its own temporary directory and stopped by its
own handle (``ray.shutdown``), never ``ray stop``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.batch.files import find_inputs
from modelport.batch.parts import PartResult
from modelport.batch.ray_engine import run_on_ray
from modelport.batch.scoring import BatchRowError, ScoringOptions
from modelport.batch.source import PackageSource
from modelport.batch.units import BatchPlan, plan_units, score_unit
from modelport.config import Settings
from modelport.errors import InvalidArgumentError
from modelport.ray import predict
from testing_cluster_scoring import ID, register_classifier, rows, scored_locally

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("ray"),
    # Ray Data warns of its own deprecated settings as it copies its context.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"),
    # ... and calls pandas in ways pandas 3 deprecates.
    pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index"),
]


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, PackageSource]:
    return register_classifier(tmp_path_factory.mktemp("ray-registry"))


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """One local Ray for the module's tests (2 CPUs, no dashboard, its own temp dir)."""
    assert not ray.is_initialized()
    temp_dir = tempfile.mkdtemp(prefix="mp-ray-test-")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=128 * 1024 * 1024,
        configure_logging=False,
        log_to_driver=False,
        _temp_dir=temp_dir,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def job(tmp_path: Path, source: PackageSource, frame: pd.DataFrame, **options: Any) -> Any:
    """A job over ``frame`` written as Parquet in row groups of 100 (several units)."""
    frame.to_parquet(tmp_path / "customers.parquet", row_group_size=100)
    units = plan_units(find_inputs(str(tmp_path / "customers.parquet")), 100)
    plan = BatchPlan(source, ScoringOptions(**options), str(tmp_path / "staging"), "parquet", 100)
    return plan, units


def read_parts(staging: Path, parts: list[PartResult]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(staging / p.name) for p in parts], ignore_index=True)


def test_run_on_ray_writes_what_a_local_loop_writes_and_stops_its_own_ray(
    registered: tuple[Settings, PackageSource], tmp_path: Path
) -> None:
    _, source = registered
    plan, units = job(tmp_path, source, rows(450), outputs=("prediction", "probabilities"))
    told: list[PartResult] = []

    parts = run_on_ray(plan, units, told.append, workers=2)

    assert not ray.is_initialized()  # the Ray it started is shut down
    assert len(units) == 5 and [p.name for p in parts] == sorted(p.name for p in told)
    assert sum(p.rows_out for p in parts) == 450
    local = BatchPlan(source, plan.options, str(tmp_path / "local"), "parquet", 100)
    expected = [part for unit in units for part in score_unit(local, unit)]
    assert parts == expected
    pd.testing.assert_frame_equal(
        read_parts(tmp_path / "staging", parts), read_parts(tmp_path / "local", expected)
    )


def test_a_bad_row_on_a_ray_worker_fails_the_job_naming_its_file_row_and_column(
    local_ray: Any, registered: tuple[Settings, PackageSource], tmp_path: Path
) -> None:
    _, source = registered
    frame = rows(300)
    frame.loc[234, "charges"] = np.nan  # not nullable in the signature
    plan, units = job(tmp_path, source, frame)

    with pytest.raises(BatchRowError) as info:
        run_on_ray(plan, units, lambda part: None)

    error = info.value
    assert type(error) is BatchRowError
    assert (error.file, error.row, error.column) == (units[0].file.uri, 234, "charges")
    assert str(error).startswith(f"{units[0].file.uri}, row 234, column 'charges': ")
    assert local_ray.is_initialized()  # a Ray it did not start is left running


def test_a_skipped_row_on_ray_is_counted_and_listed(
    local_ray: Any, registered: tuple[Settings, PackageSource], tmp_path: Path
) -> None:
    _, source = registered
    frame = rows(300)
    frame.loc[17, "tenure"] = np.nan
    plan, units = job(tmp_path, source, frame, on_error="skip")

    parts = run_on_ray(plan, units, lambda part: None)

    first = parts[0]
    assert (first.rows_in, first.rows_out, first.rows_failed) == (100, 99, 1)
    errors = pd.read_parquet(tmp_path / "staging" / "_errors" / "part-00000-000000000000.parquet")
    assert errors[["row", "column"]].to_dict("records") == [{"row": 17, "column": "tenure"}]


def test_a_csv_file_on_ray_comes_back_part_by_part(
    local_ray: Any, registered: tuple[Settings, PackageSource], tmp_path: Path
) -> None:
    _, source = registered
    rows(250).to_csv(tmp_path / "customers.csv", index=False)
    units = plan_units(find_inputs(str(tmp_path / "customers.csv")), 100)
    plan = BatchPlan(source, ScoringOptions(), str(tmp_path / "staging"), "csv", 100)
    told: list[PartResult] = []

    parts = run_on_ray(plan, units, told.append)

    assert len(units) == 1  # a CSV file is one unit, told of as each of its parts is written
    assert told == parts
    assert [(p.name, p.rows_out) for p in parts] == [
        ("part-00000-000000000000.csv", 100),
        ("part-00000-000000000100.csv", 100),
        ("part-00000-000000000200.csv", 50),
    ]


def test_predict_on_a_ray_dataset_answers_what_pandas_scoring_answers(
    local_ray: Any, registered: tuple[Settings, PackageSource]
) -> None:
    settings, source = registered
    frame = rows(500)
    options = ScoringOptions(outputs=("prediction", "probabilities"))

    blocks = [frame.iloc[start : start + 125] for start in range(0, 500, 125)]
    dataset = local_ray.data.from_pandas(blocks)
    scored = predict(
        dataset,
        "churn@champion",
        outputs=("prediction", "probabilities"),
        concurrency=2,
        batch_size=128,
        settings=settings,
    ).to_pandas()

    expected = scored_locally(source, frame, options)
    assert list(scored.columns) == list(expected.columns)
    assert list(scored.columns)[:2] == [ID, "prediction"]
    scored = scored.sort_values(ID, ignore_index=True)
    pd.testing.assert_frame_equal(scored, expected, check_dtype=False)


def test_predict_on_a_ray_dataset_skips_bad_rows_or_fails_naming_the_column(
    local_ray: Any, registered: tuple[Settings, PackageSource]
) -> None:
    settings, _ = registered
    frame = rows(60)
    frame.loc[41, "tenure"] = np.nan
    dataset = local_ray.data.from_pandas(frame)

    skipped = predict(dataset, "churn@champion", on_error="skip", concurrency=1, settings=settings)
    assert sorted(skipped.to_pandas()[ID]) == [i for i in range(60) if i != 41]

    failing = predict(dataset, "churn@champion", concurrency=1, settings=settings)
    with pytest.raises(Exception, match=r"the dataset, row 41, column 'tenure'"):
        failing.materialize()


@pytest.mark.parametrize("concurrency", [0, (2, 1), (0, 3), (1, 2, 3)])
def test_a_pool_size_that_is_not_one_is_refused(concurrency: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="is not a pool size"):
        predict(object(), "churn@champion", concurrency=concurrency)
