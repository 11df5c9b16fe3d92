"""Scoring a Dask DataFrame with a registered model: ``modelport.dask.predict``.

For users already on Dask: ``predict(ddf, "churn@production")`` returns a lazy Dask
DataFrame of the output rows (kept columns, predictions, probabilities, model name and
version), the same columns ``modelport batch predict`` writes, built partition by
partition with ``map_partitions``.

The reference is resolved once, here, on the client. What each task carries is a small
``PackageSource`` (the version and the artifact store's URI): each worker process loads
the package from the artifact store once, verifies its digests, and keeps it for its
later partitions. The model is never pickled through the scheduler, and workers need no
database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelport.batch.scoring import (
    MODEL_COLUMN,
    VERSION_COLUMN,
    ChunkScorer,
    OnError,
    ScoringOptions,
)
from modelport.bootstrap import package_source
from modelport.config import Settings
from modelport.errors import InvalidArgumentError, MissingDependencyError

if TYPE_CHECKING:
    from modelport.batch.source import PackageSource
    from modelport.package.loaded import LoadedModel

__all__ = ["predict"]


def predict(
    ddf: Any,
    model_ref: str,
    *,
    outputs: Sequence[str] = ("prediction",),
    keep: Sequence[str] | None = None,
    on_error: OnError = "fail",
    accelerate: bool = True,
    settings: Settings | None = None,
) -> Any:
    """``ddf`` (a ``dask.dataframe.DataFrame``) scored by ``model_ref``, as a lazy Dask
    DataFrame.

    ``outputs`` is ``("prediction",)`` or ``("prediction", "probabilities")``; ``keep``
    names the input columns to carry into the output (default: the signature's id
    columns). Each output row keeps its input row's index, so the result can be joined
    back to ``ddf``. ``on_error``: ``"fail"`` (the computation raises ``BatchRowError``
    naming the partition, the row's position in it and the column), ``"skip"`` (bad rows
    are left out, so partitions may shrink) or ``"null"`` (bad rows get empty
    predictions; integer and boolean predictions then use pandas' nullable types).

    The output's columns and types (Dask's ``meta``) are found now, on the client, by
    scoring a few rows: the package's input example (real rows the model scored when it
    was registered) in the columns of ``ddf``. This loads the model once in this process.
    """
    _dask_dataframe(ddf)
    options = ScoringOptions(
        outputs=tuple(outputs), keep=None if keep is None else tuple(keep), on_error=on_error
    )
    source = package_source(model_ref, settings or Settings(), accelerate=accelerate)
    meta = _output_meta(source.load(), options, ddf._meta)
    scorer = _PartitionScorer(source, options, meta)
    # token: the tasks' names on the dashboard and in worker logs (the default is the
    # scorer's repr, cut at 50 characters).
    token = f"modelport-predict-{source.version.name}-{source.version.version}"
    return ddf.map_partitions(scorer, meta=meta, token=token)


@dataclass(frozen=True)
class _PartitionScorer:
    """Scores one partition on a worker (pickled by reference to this module, with the
    source, options and empty output frame it holds)."""

    source: PackageSource
    options: ScoringOptions
    meta: pd.DataFrame

    def __call__(
        self, frame: pd.DataFrame, partition_info: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if frame.empty:
            return _conformed(self.meta.iloc[:0], self.meta, frame.index[:0])
        number = partition_info.get("number") if partition_info else None
        where = f"partition {number}" if number is not None else "a partition"
        scored = ChunkScorer(self.source.load(), self.options).score(frame, file=where)
        kept = [True] * len(frame)
        if self.options.on_error == "skip":
            for row in scored.errors["row"]:
                kept[int(row)] = False
        return _conformed(scored.table, self.meta, frame.index[kept])


def _output_meta(model: LoadedModel, options: ScoringOptions, empty: pd.DataFrame) -> pd.DataFrame:
    """The output's empty frame: the columns and types a scored partition has."""
    sample = _sample(model, empty)
    checked = replace(options, on_error="fail")  # the sample rows must score
    scorer = ChunkScorer(model, checked)
    table = scorer.score(sample, file="the sample rows that give the output's columns").table
    types: dict[str, Any] = {name: empty[name].dtype for name in scorer.keep}
    if options.on_error == "null":
        # A partition with a bad row has empty predictions; every partition then uses the
        # nullable type, so that all of them match the meta.
        fixed = (*scorer.keep, MODEL_COLUMN, VERSION_COLUMN)
        for name in [column for column in table.columns if column not in fixed]:
            kind = table[name].dtype.kind
            if kind in "iub":
                types[name] = pd.api.types.pandas_dtype("boolean" if kind == "b" else "Int64")
    meta = table.iloc[:0].astype(types)
    meta.index = empty.index[:0]
    return meta


def _sample(model: LoadedModel, empty: pd.DataFrame) -> pd.DataFrame:
    """A few rows in ``empty``'s columns: dask's made-up values (``meta_nonempty``), with
    the model's inputs taken from the package's input example where it has one (made-up
    values may be refused, e.g. an unknown category)."""
    from dask.dataframe.dispatch import meta_nonempty

    fake = meta_nonempty(empty).reset_index(drop=True)
    example = model.input_example()
    if not isinstance(example, pd.DataFrame) or example.empty:
        return fake
    rows = min(len(fake), len(example))
    sample = fake.iloc[:rows].copy()
    for name in example.columns:
        if name in sample.columns:  # a missing input fails here, not at compute time
            sample[name] = example[name].to_numpy()[:rows]
    return sample


def _conformed(table: pd.DataFrame, meta: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """``table`` with exactly ``meta``'s columns and types, on the input rows' index."""
    conformed = table.reindex(columns=meta.columns).astype(meta.dtypes.to_dict())
    conformed.index = index
    return conformed


def _dask_dataframe(ddf: Any) -> None:
    try:
        import dask.dataframe as dd
    except ImportError:
        raise MissingDependencyError(
            "modelport.dask needs dask.dataframe; install it with: pip install 'modelport[dask]'",
            package="dask",
            extra="dask",
        ) from None
    if not isinstance(ddf, dd.DataFrame):
        raise InvalidArgumentError(
            f"modelport.dask.predict scores a dask.dataframe.DataFrame, not a "
            f"{type(ddf).__module__}.{type(ddf).__name__}; for pandas use "
            "modelport.load(...).predict or modelport.batch_predict",
            field="ddf",
        )
