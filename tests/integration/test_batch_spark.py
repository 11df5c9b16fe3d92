"""``modelport.spark.predict_udf`` on a real local Spark session: called on columns, on a
struct or on nothing, with and without probabilities, it answers what pandas scoring
answers; a bad row fails the job naming its column, or gives an empty prediction.

One session for the module (``local[2]``, two shuffle partitions, no UI, bound to the
loopback), stopped by its own handle at the end.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.batch.scoring import ScoringOptions
from modelport.batch.source import PackageSource
from modelport.config import Settings
from modelport.errors import InvalidArgumentError
from modelport.spark import predict_udf
from testing_cluster_scoring import FEATURES, ID, register_classifier, rows, scored_locally

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip(
        "Spark needs Java, which is not installed (apt-get install default-jre-headless)",
        allow_module_level=True,
    )

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("spark"),
    # PySpark 4 still calls pandas in ways pandas 3 deprecates, and says so.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

PROBABILITIES = ("prediction", "probabilities")


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, PackageSource]:
    return register_classifier(tmp_path_factory.mktemp("spark-registry"))


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as env:
        # The Python workers must run this interpreter (and find modelport and pandas).
        env.setenv("PYSPARK_PYTHON", sys.executable)
        env.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
        session = _session(SparkSession, tmp_path_factory)
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


def _session(builder_of: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return (
        builder_of.builder.master("local[2]")
        .appName("modelport-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.local.dir", str(tmp_path_factory.mktemp("spark-local")))
        .getOrCreate()
    )


@pytest.fixture(scope="module")
def customers(spark: Any) -> tuple[pd.DataFrame, Any]:
    frame = rows(400)
    return frame, spark.createDataFrame(frame)  # two partitions: local[2]


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(ID, ignore_index=True)


def test_the_udf_on_columns_answers_the_prediction_pandas_scoring_answers(
    spark: Any, registered: tuple[Settings, PackageSource], customers: tuple[pd.DataFrame, Any]
) -> None:
    settings, source = registered
    frame, df = customers
    udf = predict_udf(spark, "churn@champion", settings=settings)
    scored = df.select(ID, udf(*FEATURES).alias("prediction")).toPandas()

    expected = scored_locally(source, frame, ScoringOptions(keep=(ID,)))
    assert dict(df.select(udf(*FEATURES)).dtypes).popitem()[1] == "bigint"
    pd.testing.assert_frame_equal(by_id(scored), expected[[ID, "prediction"]], check_dtype=False)


def test_the_udf_on_a_struct_or_on_nothing_answers_the_same(
    spark: Any, registered: tuple[Settings, PackageSource], customers: tuple[pd.DataFrame, Any]
) -> None:
    from pyspark.sql.functions import struct

    settings, _ = registered
    _, df = customers
    udf = predict_udf(spark, "churn@champion", settings=settings)
    # A struct is matched by field names, whatever their order.
    scored = df.select(
        ID,
        udf(*FEATURES).alias("columns"),
        udf(struct(*reversed(FEATURES))).alias("struct"),
        udf().alias("default"),
    ).toPandas()

    assert len(scored) == 400
    assert (scored["columns"] == scored["struct"]).all()
    assert (scored["columns"] == scored["default"]).all()


def test_probabilities_come_as_a_struct_of_the_prediction_and_one_field_per_class(
    spark: Any, registered: tuple[Settings, PackageSource], customers: tuple[pd.DataFrame, Any]
) -> None:
    from pyspark.sql.functions import struct

    settings, source = registered
    frame, df = customers
    udf = predict_udf(spark, "churn@champion", outputs=PROBABILITIES, settings=settings)
    on_columns = df.select(ID, udf(*FEATURES).alias("out")).select(ID, "out.*")
    on_struct = df.select(ID, udf(struct(*FEATURES)).alias("out")).select(ID, "out.*")

    expected = scored_locally(source, frame, ScoringOptions(outputs=PROBABILITIES, keep=(ID,)))
    expected = expected.drop(columns=["model", "model_version"])
    assert on_columns.columns == [ID, "prediction", "probability_0", "probability_1"]
    for scored in (on_columns.toPandas(), on_struct.toPandas()):
        pd.testing.assert_frame_equal(by_id(scored), expected, check_dtype=False)


def test_a_bad_row_fails_the_job_naming_its_column_or_answers_null(
    spark: Any, registered: tuple[Settings, PackageSource]
) -> None:
    settings, _ = registered
    frame = rows(50)
    frame.loc[7, "calls"] = np.nan  # not nullable in the signature
    df = spark.createDataFrame(frame).coalesce(1)
    failing = predict_udf(spark, "churn@champion", settings=settings)
    with pytest.raises(Exception, match=r"Spark partition 0, row 7, column 'calls'"):
        df.select(failing(*FEATURES)).collect()

    nulling = predict_udf(spark, "churn@champion", on_error="null", settings=settings)
    answers = [row[0] for row in df.select(nulling(*FEATURES)).collect()]
    assert answers[7] is None
    assert all(value is not None for i, value in enumerate(answers) if i != 7)


def test_skip_and_a_wrong_number_of_columns_are_refused(
    spark: Any, registered: tuple[Settings, PackageSource], customers: tuple[pd.DataFrame, Any]
) -> None:
    settings, _ = registered
    _, df = customers
    with pytest.raises(InvalidArgumentError, match="cannot skip rows"):
        predict_udf(spark, "churn@champion", on_error="skip", settings=settings)
    udf = predict_udf(spark, "churn@champion", settings=settings)
    with pytest.raises(Exception, match="called on 2 columns; the model takes 3"):
        df.select(udf("tenure", "charges")).collect()


def test_result_type_overrides_the_answer_type(
    spark: Any, registered: tuple[Settings, PackageSource], customers: tuple[pd.DataFrame, Any]
) -> None:
    settings, _ = registered
    _, df = customers
    udf = predict_udf(spark, "churn@champion", result_type="double", settings=settings)
    answers = df.select(udf(*FEATURES).alias("p"))

    assert answers.dtypes == [("p", "double")]
    assert set(answers.toPandas()["p"]) <= {0.0, 1.0}

    some = "probability_1 double, prediction bigint"
    udf = predict_udf(
        spark, "churn@champion", outputs=PROBABILITIES, result_type=some, settings=settings
    )
    fields = df.select(udf(*FEATURES).alias("out")).select("out.*")
    assert fields.dtypes == [("probability_1", "double"), ("prediction", "bigint")]
    assert fields.count() == 400
