"""Scoring a Ray Dataset with a registered model: ``modelport.ray.predict``.

For users whose data is already a Ray Dataset. The reference is resolved once, here on
the driver; the scoring runs in ``map_batches`` on a pool of actors, each of which loads
the package from the artifact store once (and verifies it) and scores every batch it is
given with the same checks as the server. Only the small package description travels to
the actors, never the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelport.batch.scoring import PREDICTION, ChunkScorer, OnError, ScoringOptions
from modelport.bootstrap import package_source
from modelport.config import Settings
from modelport.errors import InvalidArgumentError
from modelport.flavors.dependencies import require

if TYPE_CHECKING:
    import pandas as pd

    from modelport.batch.source import PackageSource

DATASET = "the dataset"  # what a failing row's message names as its "file"


class BatchScorer:
    """A Ray Data actor: loads the package once, then scores each pandas batch.

    Rows of a batch that cannot be scored are handled as ``on_error`` says; in ``fail``
    mode the ``BatchRowError`` names the row by its position in the batch, since a Ray
    Dataset has no file to count rows in.
    """

    def __init__(self, source: PackageSource, options: ScoringOptions) -> None:
        self.scorer = ChunkScorer(source.load(), options)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return self.scorer.score(batch, file=DATASET).table


def predict(
    dataset: Any,
    model_ref: str,
    *,
    outputs: Sequence[str] = (PREDICTION,),
    keep: Sequence[str] | None = None,
    on_error: OnError = "fail",
    concurrency: int | tuple[int, int] | None = None,
    batch_size: int | None = None,
    settings: Settings | None = None,
) -> Any:
    """Score the Ray Dataset ``dataset`` with ``model_ref`` (``churn@production``); the
    result is a lazy Ray Dataset of the scored rows.

    Its columns are those ``modelport batch predict`` writes: the ``keep`` columns (by
    default the signature's id columns), ``prediction`` (and ``probability_<class>`` when
    ``outputs`` has ``"probabilities"``), ``model`` and ``model_version``. ``on_error``
    is ``fail`` (the first bad row stops the job), ``skip`` (bad rows are left out) or
    ``null`` (kept with empty predictions). ``concurrency`` sizes the actor pool: a number,
    or ``(min, max)`` to let Ray Data scale it (default: from 1 to as many as it sees fit).
    ``batch_size`` is the rows per call (default: Ray Data's blocks as they come).
    """
    ray_data = require("ray.data", extra="ray", package="ray")
    _check_pool_size(concurrency)
    options = ScoringOptions(
        outputs=tuple(outputs), keep=None if keep is None else tuple(keep), on_error=on_error
    )
    source = package_source(model_ref, settings or Settings(), accelerate=True)
    return dataset.map_batches(
        BatchScorer,
        fn_constructor_args=(source, options),
        batch_format="pandas",
        batch_size=batch_size,
        **_pool_arguments(ray_data, concurrency),
    )


def _pool_arguments(ray_data: Any, concurrency: int | tuple[int, int] | None) -> dict[str, Any]:
    """``map_batches``'s actor pool: ``compute=ActorPoolStrategy(...)`` from Ray 2.51
    (which deprecates ``concurrency``), ``concurrency=`` before it (which deprecates
    ``compute``), so neither warns."""
    from packaging.version import Version

    ray = require("ray", extra="ray")

    if Version(ray.__version__) >= Version("2.51"):
        if isinstance(concurrency, int):
            return {"compute": ray_data.ActorPoolStrategy(size=concurrency)}
        low, high = concurrency or (1, None)  # None: Ray Data scales the pool from one
        return {"compute": ray_data.ActorPoolStrategy(min_size=low, max_size=high)}
    if concurrency is None:  # older Ray Data wants a bound: the cluster's CPUs
        concurrency = (1, max(1, int(ray.cluster_resources().get("CPU", 1))))
    return {"concurrency": concurrency}


def _check_pool_size(concurrency: int | tuple[int, int] | None) -> None:
    if concurrency is None or (isinstance(concurrency, int) and concurrency >= 1):
        return
    if isinstance(concurrency, tuple) and len(concurrency) == 2:
        low, high = concurrency
        if isinstance(low, int) and isinstance(high, int) and 1 <= low <= high:
            return
    raise InvalidArgumentError(
        f"concurrency {concurrency!r} is not a pool size; give a number of actors (>= 1) "
        "or (min, max) with 1 <= min <= max",
        field="concurrency",
    )
