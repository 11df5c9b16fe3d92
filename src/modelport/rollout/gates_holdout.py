"""The holdout gate: the candidate scores no worse than the baseline on the same
labelled data.

Both versions are loaded through the registry and predict every row of the holdout
file (CSV or Parquet) without its label column; the metric is accuracy for a
classifier (a model with class probabilities) and RMSE for a regressor unless one is
configured (``[gates] metric``), computed as scikit-learn does (``monitoring.scores``).
The candidate fails when it is worse by more than ``max_metric_loss``, in the metric's
own units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelport.config import HoldoutMetric
from modelport.domain.entities import ModelVersion
from modelport.domain.gates import GateOutcome, GateResult
from modelport.errors import InvalidArgumentError, MissingDependencyError
from modelport.package.loaded import LoadedModel
from modelport.rollout.gates import GateContext

_LOWER_IS_BETTER = frozenset({"mae", "rmse"})
_CLASSIFICATION = frozenset({"accuracy", "precision", "recall", "f1"})
_SUFFIXES = (".csv", ".parquet", ".pq")


class HoldoutMetricGate:
    """The candidate's holdout metric is not worse than the baseline's (threshold
    ``max_loss``)."""

    name = "holdout"

    def __init__(self, metric: HoldoutMetric = "auto", max_loss: float = 0.0) -> None:
        if max_loss < 0:
            raise InvalidArgumentError(
                f"max_loss={max_loss}: the loss allowed is 0 or more", field="max_metric_loss"
            )
        self.metric = metric
        self.max_loss = max_loss

    def evaluate(
        self, candidate: ModelVersion, baseline: ModelVersion | None, context: GateContext
    ) -> GateResult:
        """SKIPPED without a holdout file; with no baseline, SKIPPED with the
        candidate's score; else PASSED or FAILED with both scores."""
        if context.holdout is None:
            message = "no holdout file given (--holdout FILE --label COLUMN, or [gates] holdout)"
            return GateResult(self.name, GateOutcome.SKIPPED, message)
        features, labels = read_holdout(context.holdout, context.label)
        loaded = context.load(candidate)
        metric = self._metric_for(loaded)
        score = _score(metric, labels, _predict(loaded, features))
        details: dict[str, Any] = {
            "metric": metric,
            "rows": len(labels),
            "holdout": str(context.holdout),
            "candidate": score,
        }
        if baseline is None:
            message = f"{metric} {score:.4g}; no other version holds the target to compare with"
            return GateResult(self.name, GateOutcome.SKIPPED, message, details)
        reference = _score(metric, labels, _predict(context.load(baseline), features))
        return self._compare(metric, score, reference, baseline, details)

    def _compare(
        self,
        metric: str,
        score: float,
        reference: float,
        baseline: ModelVersion,
        details: dict[str, Any],
    ) -> GateResult:
        loss = score - reference if metric in _LOWER_IS_BETTER else reference - score
        details.update(
            baseline=reference, baseline_version=baseline.version, loss=loss, max_loss=self.max_loss
        )
        worse = loss > self.max_loss + 1e-12  # a tie in floating point is no loss
        message = (
            f"{metric} {score:.4g} vs {reference:.4g} for version {baseline.version} on "
            f"{details['rows']} rows (worse by {max(loss, 0.0):.4g}, allowed {self.max_loss:.4g})"
        )
        outcome = GateOutcome.FAILED if worse else GateOutcome.PASSED
        return GateResult(self.name, outcome, message, details)

    def _metric_for(self, loaded: LoadedModel) -> str:
        if self.metric != "auto":
            return self.metric
        return "accuracy" if loaded.supports_proba else "rmse"


def read_holdout(path: Path, label: str | None) -> tuple[Any, np.ndarray]:
    """The features (a DataFrame without the label column) and the labels of a CSV or
    Parquet file."""
    import pandas as pd  # only when a holdout is scored

    if label is None:
        raise InvalidArgumentError(
            f"the holdout file {path} needs its label column named (--label COLUMN, or "
            "[gates] label)",
            field="label",
        )
    if path.suffix.lower() not in _SUFFIXES or not path.is_file():
        raise InvalidArgumentError(
            f"cannot read the holdout file {path}: give an existing .csv or .parquet file",
            field="holdout",
        )
    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except ImportError:
        raise MissingDependencyError(
            "reading Parquet needs pyarrow; install it with: pip install pyarrow",
            package="pyarrow",
            extra="all",
        ) from None
    if label not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise InvalidArgumentError(
            f"the holdout file {path} has no column {label!r}; its columns: {columns}",
            field="label",
        )
    if frame.empty:
        raise InvalidArgumentError(f"the holdout file {path} has no rows", field="holdout")
    return frame.drop(columns=[label]), frame[label].to_numpy()


def _predict(loaded: LoadedModel, features: Any) -> np.ndarray:
    """The model's predictions as one value per row."""
    predictions = loaded.predict(features)
    if isinstance(predictions, dict):
        predictions = predictions.get("predictions", next(iter(predictions.values())))
    array = np.asarray(predictions)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidArgumentError(
            f"the model answers {array.shape} for {len(features)} rows; the holdout gate "
            "scores one prediction per row",
            field="holdout",
        )
    return array


def _score(metric: str, labels: np.ndarray, predictions: np.ndarray) -> float:
    from modelport.monitoring import scores  # scipy: only when a holdout is scored

    if metric in _CLASSIFICATION:
        if labels.dtype.kind in "fiub" and predictions.dtype.kind in "fiub":
            values = scores.classification(
                labels.astype(np.float64), predictions.astype(np.float64)
            )
        else:
            values = scores.classification(labels.astype(str), predictions.astype(str))
        return values[metric]
    try:
        truth, guess = labels.astype(np.float64), predictions.astype(np.float64)
    except ValueError:
        raise InvalidArgumentError(
            f"{metric} needs numeric labels and predictions", field="metric"
        ) from None
    return scores.regression(truth, guess)[metric]
