"""Batch scoring on Dask: ``run_on_dask`` (the engine of ``--engine dask``) writes the parts
a single-process run writes, row for row; a bad row fails the job naming its file, row
and column; each worker loads the package once; ``modelport.dask.predict`` scores a Dask
DataFrame as pandas would. The tests start their own LocalCluster and close it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")
distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")

from modelport.batch.dask_engine import run_on_dask  # noqa: E402
from modelport.batch.files import find_inputs  # noqa: E402
from modelport.batch.parts import PartResult  # noqa: E402
from modelport.batch.scoring import BatchRowError, ChunkScorer, ScoringOptions  # noqa: E402
from modelport.batch.units import BatchPlan, Unit, plan_units, score_unit  # noqa: E402
from modelport.bootstrap import package_source  # noqa: E402
from modelport.config import Settings  # noqa: E402
from modelport.errors import InvalidArgumentError  # noqa: E402
from testing_dask import customers, read_parts, register_churn, write_parquet  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask"), pytest.mark.timeout(240)]

BOTH = ("prediction", "probabilities")


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Settings]:
    """A registered classifier and the settings of its registry (a home of its own)."""
    settings = Settings(home=tmp_path_factory.mktemp("dask-home"))
    return register_churn(settings), settings


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two worker processes of one thread, as ``run_on_dask`` starts by default."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
    ) as local:
        yield local


def inputs(directory: Path, *, bad_row: int | None = None) -> list[Unit]:
    """A Parquet file of 7 row groups and a CSV file, cut into units of ~1,000 rows;
    ``bad_row`` of the Parquet file has no ``charges``."""
    directory.mkdir()
    frame = customers(5_000)
    if bad_row is not None:
        frame.loc[bad_row, "charges"] = np.nan
    write_parquet(frame, directory / "a.parquet", row_group_rows=700)
    customers(1_200, seed=5, start=9_000).to_csv(directory / "b.csv", index=False)
    return plan_units(find_inputs(str(directory)), 1_000)


def plan_for(churn: tuple[str, Settings], staging: Path, **options: Any) -> BatchPlan:
    ref, settings = churn
    source = package_source(ref, settings, accelerate=False)
    return BatchPlan(source, ScoringOptions(**options), str(staging), "parquet", 1_000)


def scored_here(plan: BatchPlan, units: list[Unit]) -> list[PartResult]:
    """The single-process run: every unit scored in this process, in order."""
    return [part for unit in units for part in score_unit(plan, unit)]


def test_dask_writes_the_parts_one_process_writes(
    churn: tuple[str, Settings], tmp_path: Path
) -> None:
    units = inputs(tmp_path / "in")
    assert len(units) > 2  # several units of the Parquet file, and the CSV file
    told: list[PartResult] = []

    written = run_on_dask(
        plan_for(churn, tmp_path / "dask", outputs=BOTH), units, told.append, workers=2
    )

    expected = scored_here(plan_for(churn, tmp_path / "local", outputs=BOTH), units)
    assert sorted(written, key=lambda p: p.name) == sorted(expected, key=lambda p: p.name)
    assert sorted(told, key=lambda p: p.name) == sorted(expected, key=lambda p: p.name)
    assert sum(part.rows_out for part in written) == 6_200
    pd.testing.assert_frame_equal(read_parts(tmp_path / "dask"), read_parts(tmp_path / "local"))
    assert {"customer_id", "prediction", "probability_0", "model", "model_version"} <= set(
        read_parts(tmp_path / "dask").columns
    )


def test_a_bad_row_fails_the_job_naming_its_file_row_and_column(
    churn: tuple[str, Settings], cluster: Any, tmp_path: Path
) -> None:
    units = inputs(tmp_path / "in", bad_row=3_456)  # in the Parquet file's fourth unit

    with pytest.raises(BatchRowError) as raised:
        run_on_dask(
            plan_for(churn, tmp_path / "out"),
            units,
            lambda part: None,
            scheduler=cluster.scheduler_address,
        )

    error = raised.value
    assert (error.file, error.row, error.column) == (
        str(tmp_path / "in" / "a.parquet"),
        3_456,
        "charges",
    )
    assert str(error).startswith(f"{tmp_path / 'in' / 'a.parquet'}, row 3456, column 'charges': ")
    assert "missing value" in str(error)


def test_skipped_rows_are_left_out_and_listed(
    churn: tuple[str, Settings], cluster: Any, tmp_path: Path
) -> None:
    units = inputs(tmp_path / "in", bad_row=3_456)
    plan = plan_for(churn, tmp_path / "out", on_error="skip")

    written = run_on_dask(plan, units, lambda part: None, scheduler=cluster.scheduler_address)

    assert sum(part.rows_failed for part in written) == 1
    output = read_parts(tmp_path / "out")
    assert len(output) == 6_199
    assert 3_456 not in set(output["customer_id"])
    errors = pd.concat(pd.read_parquet(p) for p in (tmp_path / "out" / "_errors").iterdir())
    assert errors[["row", "column"]].to_dict("records") == [{"row": 3_456, "column": "charges"}]


def test_each_worker_loads_the_package_once(
    churn: tuple[str, Settings], cluster: Any, tmp_path: Path
) -> None:
    units = inputs(tmp_path / "in")
    plan = plan_for(churn, tmp_path / "out")
    key_prefix = (plan.source.ref, plan.source.artifacts_uri)

    run_on_dask(plan, units, lambda part: None, scheduler=cluster.scheduler_address)
    run_on_dask(plan, units[:3], lambda part: None, scheduler=cluster.scheduler_address)

    def loads_of_this_version() -> int:  # runs on each worker (pickled by value)
        from modelport.batch import source

        return sum(1 for key in source._LOADED if key[:2] == key_prefix)

    with distributed.Client(cluster) as client:
        loads = client.run(loads_of_this_version)
    assert len(loads) == 2  # one count per worker
    assert set(loads.values()) <= {0, 1}  # 11 units, at most one load in each worker
    assert sum(loads.values()) >= 1


def test_predict_on_a_dask_dataframe_equals_pandas(
    churn: tuple[str, Settings], cluster: Any
) -> None:
    import modelport.dask

    ref, settings = churn
    frame = customers(3_000)
    frame.index += 10_000  # the output keeps the input's index
    expected = (
        ChunkScorer(package_source(ref, settings).load(), ScoringOptions(outputs=BOTH))
        .score(frame)
        .table
    )
    expected.index = frame.index

    with distributed.Client(cluster):
        scored = modelport.dask.predict(
            dd.from_pandas(frame, npartitions=4), ref, outputs=BOTH, settings=settings
        )
        assert isinstance(scored, dd.DataFrame)
        got = scored.compute()

    pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(scored._meta, expected.iloc[:0])


def test_predict_skips_or_nulls_bad_rows_and_keeps_the_index(
    churn: tuple[str, Settings], cluster: Any
) -> None:
    import modelport.dask

    ref, settings = churn
    frame = customers(2_000)
    frame.loc[777, "charges"] = np.nan
    ddf = dd.from_pandas(frame, npartitions=3)
    ddf = ddf[ddf["customer_id"] < 1_300]
    # a partition with no rows at all is scored to an empty frame of the right columns
    assert 0 in ddf.map_partitions(len).compute().tolist()

    with distributed.Client(cluster):
        skipped = modelport.dask.predict(ddf, ref, on_error="skip", settings=settings).compute()
        nulled = modelport.dask.predict(
            ddf, ref, on_error="null", keep=["customer_id", "tenure"], settings=settings
        ).compute()
        with pytest.raises(BatchRowError, match=r"row \d+, column 'charges'"):
            modelport.dask.predict(ddf, ref, settings=settings).compute()

    assert len(skipped) == 1_299
    assert 777 not in skipped.index
    assert (skipped.index == skipped["customer_id"]).all()
    assert list(nulled.columns) == ["customer_id", "tenure", "prediction", "model", "model_version"]
    assert len(nulled) == 1_300
    assert nulled["prediction"].dtype == "Int64"
    assert pd.isna(nulled.loc[777, "prediction"])
    assert nulled["prediction"].drop(index=777).tolist() == skipped["prediction"].tolist()


def test_predict_refuses_a_dataframe_without_the_inputs_at_once(
    churn: tuple[str, Settings],
) -> None:
    import modelport.dask

    ref, settings = churn
    ddf = dd.from_pandas(customers(50), npartitions=2).drop(columns=["calls"])

    with pytest.raises(BatchRowError, match="'calls'"):
        modelport.dask.predict(ddf, ref, settings=settings)  # before any compute


def test_predict_takes_a_dask_dataframe_only(churn: tuple[str, Settings]) -> None:
    import modelport.dask

    ref, settings = churn
    with pytest.raises(InvalidArgumentError, match="scores a dask.dataframe.DataFrame"):
        modelport.dask.predict(customers(5), ref, settings=settings)


def test_a_scheduler_that_cannot_be_reached_is_named(
    churn: tuple[str, Settings], tmp_path: Path
) -> None:
    import dask

    units = inputs(tmp_path / "in")
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(
            InvalidArgumentError, match="Dask scheduler at 'tcp://127.0.0.1:9'"
        ) as raised,
    ):
        run_on_dask(
            plan_for(churn, tmp_path / "out"),
            units,
            lambda part: None,
            scheduler="tcp://127.0.0.1:9",
        )
    assert raised.value.field == "scheduler"
    assert not (tmp_path / "out").exists()
