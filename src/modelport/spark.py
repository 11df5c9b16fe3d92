"""Scoring Spark DataFrames with a registered model: ``modelport.spark.predict_udf``.

It works like MLflow's ``mlflow.pyfunc.spark_udf``: the UDF is called on the model's
input columns (``udf("tenure", "charges")``, matched to the signature's inputs by
position), on a struct of them (``udf(struct("tenure", "charges"))``, matched by name),
or on nothing (``udf()``: the signature's input columns, by name). It answers the
prediction as one column, or a struct of the prediction and the class probabilities
when they are asked for.

The reference is resolved once on the driver, which also loads the package once to learn
the output columns and their types; each Python worker then loads the package from the
artifact store once (verified) and scores Arrow batches with the same checks as the
server. Only the small package description travels to the executors, never the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

import pandas as pd

from modelport.batch.scoring import (
    MODEL_COLUMN,
    PREDICTION,
    VERSION_COLUMN,
    ChunkScorer,
    OnError,
    ScoringOptions,
)
from modelport.bootstrap import package_source
from modelport.config import Settings
from modelport.errors import InvalidArgumentError
from modelport.flavors.dependencies import require

if TYPE_CHECKING:
    from modelport.batch.source import PackageSource
    from modelport.package.loaded import LoadedModel

INPUT = "the Spark input"  # what a failing row's message names when no partition is known
Batch = Union[pd.Series, pd.DataFrame]  # noqa: UP007 - pyspark reads this hint at run time


def predict_udf(
    spark: Any,
    model_ref: str,
    *,
    outputs: Sequence[str] = (PREDICTION,),
    result_type: Any = None,
    on_error: OnError = "fail",
    settings: Settings | None = None,
) -> Callable[..., Any]:
    """A pandas UDF scoring rows with ``model_ref`` (``churn@production``) on Spark.

    ``spark`` is the session the UDF runs in (taken, as MLflow's ``spark_udf`` takes it,
    so that a ``result_type`` string is parsed by a running session).

    ``outputs=("prediction", "probabilities")`` answers a struct of ``prediction`` and a
    ``probability_<class>`` field per class. ``result_type`` (a Spark ``DataType`` or a
    DDL string such as ``"double"`` or ``"prediction double, probability_1 double"``)
    overrides the type read from the model's answer to its input example. ``on_error`` is
    ``fail`` (the first bad row fails the Spark job, naming the partition, row and
    column) or ``null`` (the row's prediction is empty); a UDF answers every row, so
    ``skip`` is refused.
    """
    functions = require("pyspark.sql.functions", extra="spark", package="pyspark")

    if on_error == "skip":
        raise InvalidArgumentError(
            "a Spark UDF answers one value per row, so it cannot skip rows; "
            "use on_error='null' (empty predictions) or 'fail'",
            field="on_error",
        )
    options = ScoringOptions(outputs=tuple(outputs), keep=(), on_error=on_error)
    source = package_source(model_ref, settings or Settings(), accelerate=True)
    model = source.load()  # here once, for the output columns; a worker loads its own
    spark_type = _inferred_type(model, options) if result_type is None else _parse_type(result_type)
    names = _input_names(model)
    udf = functions.pandas_udf(_udf_body(source, options, names, spark_type), returnType=spark_type)

    def predict(*columns: Any) -> Any:
        if not columns:
            if not names:
                raise InvalidArgumentError(
                    f"{source.ref} has no input column names in its signature; "
                    "call the UDF on its input columns",
                    field="columns",
                )
            columns = tuple(functions.col(name) for name in names)
        return udf(*columns)

    predict.__doc__ = f"Score rows with {source.ref} (a modelport pandas UDF)."
    return predict


def _udf_body(
    source: PackageSource, options: ScoringOptions, names: list[str], spark_type: Any
) -> Callable[..., Iterator[Batch]]:
    """The function Spark runs on each partition's Arrow batches."""
    from pyspark.sql.types import StructType

    fields = list(spark_type.fieldNames()) if isinstance(spark_type, StructType) else None

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        scorer = ChunkScorer(source.load(), options)  # once per Python worker process
        where, first_row = _partition(), 0
        for batch in batches:
            frame = _frame(batch, names)
            table = scorer.score(frame, file=where, first_row=first_row).table
            first_row += len(frame)
            yield _answer(table, fields, source.ref)

    score.__annotations__ = {  # pyspark picks the kind of UDF from these
        "batches": Iterator[tuple[Batch, ...]],
        "return": Iterator[pd.DataFrame] if fields is not None else Iterator[pd.Series],
    }
    return score


def _partition() -> str:
    from pyspark import TaskContext

    context = TaskContext.get()
    return f"Spark partition {context.partitionId()}" if context is not None else INPUT


def _frame(batch: Any, names: list[str]) -> pd.DataFrame:
    """The rows as the model's input table: a struct's fields by name, columns by
    position (the signature's input names, as MLflow's ``spark_udf`` does)."""
    if isinstance(batch, pd.DataFrame):
        return batch
    columns = (batch,) if isinstance(batch, pd.Series) else tuple(batch)
    if any(isinstance(column, pd.DataFrame) for column in columns):
        raise InvalidArgumentError(
            "the UDF takes either one struct or plain columns, not structs among columns",
            field="columns",
        )
    if names and len(columns) != len(names):
        raise InvalidArgumentError(
            f"the UDF was called on {len(columns)} columns; the model takes "
            f"{len(names)}: {', '.join(names)} (or pass a struct of named fields)",
            field="columns",
        )
    labels: Sequence[Any] = names or range(len(columns))
    return pd.DataFrame(
        {
            label: column.reset_index(drop=True)
            for label, column in zip(labels, columns, strict=True)
        }
    )


def _answer(table: pd.DataFrame, fields: list[str] | None, ref: str) -> Any:
    if fields is None:
        return table[_output_columns(table)[0]]
    missing = [name for name in fields if name not in table.columns]
    if missing:
        raise InvalidArgumentError(
            f"{ref} gives no output {missing[0]!r}; its outputs are "
            f"{', '.join(_output_columns(table))}",
            field="result_type",
        )
    return table[fields]


def _output_columns(table: pd.DataFrame) -> list[str]:
    return [name for name in table.columns if name not in (MODEL_COLUMN, VERSION_COLUMN)]


def _input_names(model: LoadedModel) -> list[str]:
    signature = model.signature
    if signature is None or signature.inputs.kind != "columns":
        return []
    return list(getattr(signature.inputs, "names", []))


def _parse_type(result_type: Any) -> Any:
    from pyspark.sql.types import DataType

    if isinstance(result_type, DataType):
        return result_type
    if isinstance(result_type, str):
        from pyspark.sql.types import _parse_datatype_string

        return _parse_datatype_string(result_type)  # by the active session's parser
    raise InvalidArgumentError(
        f"result_type {result_type!r} is not a Spark type; give a DataType or a DDL string "
        "such as 'double'",
        field="result_type",
    )


def _inferred_type(model: LoadedModel, options: ScoringOptions) -> Any:
    """The Spark type of the answer, from the model's answer to its input example: one
    column's type, or a struct of them."""
    from pyspark.sql.types import StructField, StructType

    example = model.input_example()
    if not isinstance(example, pd.DataFrame) or example.empty:
        raise InvalidArgumentError(
            f"{model.source} has no input example to read its output types from; "
            "pass result_type (e.g. 'double')",
            field="result_type",
        )
    table = ChunkScorer(model, options).score(example, file="the input example").table
    columns = _output_columns(table)
    types = [StructField(name, _spark_type(table[name]), True) for name in columns]
    if columns == [PREDICTION]:
        return types[0].dataType
    return StructType(types)


def _spark_type(values: pd.Series) -> Any:
    from pyspark.sql import types

    kind = values.dtype.kind
    if kind == "b":
        return types.BooleanType()
    if kind in "iu":
        return types.LongType() if values.dtype.itemsize > 4 else types.IntegerType()
    if kind == "f":
        return types.FloatType() if values.dtype.itemsize == 4 else types.DoubleType()
    if kind == "M":
        return types.TimestampType()
    return types.StringType()
