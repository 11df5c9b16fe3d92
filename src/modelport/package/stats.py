"""Reference statistics of the training data and of the model's predictions on it.

Drift monitoring compares live traffic with these, so they describe every feature:

* numeric: count, missing rate, mean, std, min, max, quantiles, and a histogram
  whose bin edges are the data's own quantiles (equal-mass bins, which is what PSI
  and similar tests expect; repeated edges of discrete data are merged); the number
  of distinct values, the counts of each value when there are few of them (for the
  chi-squared and Z-tests), and a bounded random sample of the raw values (for the
  Kolmogorov-Smirnov test and the Wasserstein distance);
* categorical (text, bool, category): count, missing rate, number of distinct
  values, the frequencies of the top values and the share of all others;
* predictions: the same summary of the model's outputs on the sample, and for
  classifiers one numeric summary per class probability.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# Version 2 added, per numeric column, "unique", "value_counts" and "sample", which
# the drift tests need; version-1 statistics are still read (the drift module says
# they lack these fields).
STATS_VERSION = 2
# The sample keeps every value of a reference up to this size, so the default
# Kolmogorov-Smirnov test (references of at most 1,000 rows) is exact.
SAMPLE_SIZE = 2000
_SAMPLE_SEED = 0
# Bound on the sampled values of all features together (~4 MB of JSON): a wide table
# gets smaller samples per column, never fewer than _MIN_SAMPLE.
_SAMPLE_BUDGET = 200_000
_MIN_SAMPLE = 100
_MAX_VALUE_COUNTS = 20
_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_MAX_FEATURES_PER_TENSOR = 1000
_MAX_DISTINCT_FOR_LABELS = 50


def numeric_summary(values: np.ndarray, *, bins: int = 10) -> dict[str, Any]:
    """Summary of numeric values (NaN counts as missing)."""
    data = np.asarray(values, dtype="float64").ravel()
    count = int(data.size)
    finite = data[np.isfinite(data)]
    summary: dict[str, Any] = {
        "kind": "numeric",
        "count": count,
        "missing_rate": _rate(int(np.isnan(data).sum()), count),
    }
    if finite.size == 0:
        return summary
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)))
    counts = _bin_counts(finite, edges)
    summary.update(
        mean=float(finite.mean()),
        std=float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
        min=float(finite.min()),
        max=float(finite.max()),
        quantiles={f"p{round(q * 100):02d}": float(np.quantile(finite, q)) for q in _QUANTILES},
        histogram={"edges": edges.tolist(), "counts": counts},
        **_distinct_values(finite),
        sample=_sample(finite).tolist(),
    )
    return summary


def value_key(value: float) -> str:
    """The key of a numeric value in ``value_counts`` (the same for live values)."""
    return repr(float(value))


def _distinct_values(finite: np.ndarray) -> dict[str, Any]:
    values, counts = np.unique(finite, return_counts=True)
    result: dict[str, Any] = {"unique": int(values.size)}
    if values.size <= _MAX_VALUE_COUNTS:
        result["value_counts"] = {value_key(v): int(n) for v, n in zip(values, counts, strict=True)}
    return result


def _sample(finite: np.ndarray, size: int = SAMPLE_SIZE) -> np.ndarray:
    """A uniform sample without replacement, the same for the same data."""
    if finite.size <= size:
        return finite
    rng = np.random.default_rng(_SAMPLE_SEED)
    return np.sort(rng.choice(finite, size=size, replace=False))


def _fit_samples(features: dict[str, Any]) -> None:
    """Shrink the features' samples to the budget (a uniform sample of a uniform
    sample is still uniform)."""
    sampled = [summary for summary in features.values() if "sample" in summary]
    if sum(len(summary["sample"]) for summary in sampled) <= _SAMPLE_BUDGET:
        return
    size = max(_MIN_SAMPLE, _SAMPLE_BUDGET // len(sampled))
    for summary in sampled:
        summary["sample"] = _sample(np.asarray(summary["sample"]), size).tolist()


def _bin_counts(finite: np.ndarray, edges: np.ndarray) -> list[int]:
    if edges.size == 1:  # one distinct value: a single bin holding everything
        return [int(finite.size)]
    counts, _ = np.histogram(finite, bins=edges)
    return [int(c) for c in counts]


def categorical_summary(values: Any, *, top_k: int = 20) -> dict[str, Any]:
    """Summary of categorical values: frequencies of the ``top_k`` most common."""
    series = pd.Series(np.asarray(values, dtype=object).ravel())
    count = len(series)
    present = series.dropna()
    frequencies = present.astype(str).value_counts()
    top = frequencies.head(top_k)
    return {
        "kind": "categorical",
        "count": count,
        "missing_rate": _rate(count - len(present), count),
        "distinct": int(frequencies.size),
        "top": {str(value): _rate(int(n), count) for value, n in top.items()},
        "other_rate": _rate(int(frequencies.iloc[top_k:].sum()), count),
    }


def datetime_summary(values: pd.Series, *, bins: int = 10) -> dict[str, Any]:
    """Numeric summary of timestamps as seconds since the epoch."""
    seconds = pd.to_datetime(values).astype("int64").astype("float64") / 1e9
    seconds[values.isna().to_numpy()] = np.nan
    return {**numeric_summary(seconds.to_numpy(), bins=bins), "kind": "datetime"}


def _rate(part: int, whole: int) -> float:
    return float(part / whole) if whole else 0.0


def column_summary(series: pd.Series, *, bins: int = 10, top_k: int = 20) -> dict[str, Any]:
    """The summary that fits a column's type."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return categorical_summary(series.to_numpy(dtype=object), top_k=top_k)
    if pd.api.types.is_numeric_dtype(dtype):
        return numeric_summary(series.to_numpy(dtype="float64", na_value=np.nan), bins=bins)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return datetime_summary(series, bins=bins)
    return categorical_summary(series.to_numpy(dtype=object), top_k=top_k)


def feature_statistics(sample: Any, *, bins: int = 10, top_k: int = 20) -> dict[str, Any]:
    """Per-feature summaries of a DataFrame, an ndarray or a dict of ndarrays."""
    if isinstance(sample, pd.DataFrame):
        return {str(name): column_summary(sample[name], bins=bins, top_k=top_k) for name in sample}
    tensors = sample if isinstance(sample, dict) else {"input": sample}
    features: dict[str, Any] = {}
    for name, array in tensors.items():
        features.update(_tensor_features(name, np.asarray(array), bins=bins, top_k=top_k))
    return features


def _tensor_features(name: str, array: np.ndarray, *, bins: int, top_k: int) -> dict[str, Any]:
    summarize = _summarizer(array, bins=bins, top_k=top_k)
    if array.ndim == 2 and array.shape[1] <= _MAX_FEATURES_PER_TENSOR:
        return {f"{name}[{j}]": summarize(array[:, j]) for j in range(array.shape[1])}
    return {name: summarize(array)}


def _summarizer(array: np.ndarray, *, bins: int, top_k: int) -> Any:
    if array.dtype.kind in "OUSb":
        return lambda values: categorical_summary(values, top_k=top_k)
    return lambda values: numeric_summary(values, bins=bins)


def prediction_statistics(
    predictions: Any,
    probabilities: np.ndarray | None = None,
    classes: list[Any] | None = None,
    *,
    bins: int = 10,
    top_k: int = 20,
) -> dict[str, Any]:
    """Summary of the model's outputs on the sample, and of its class probabilities."""
    result: dict[str, Any] = {}
    if isinstance(predictions, pd.DataFrame | dict):
        result["outputs"] = feature_statistics(predictions, bins=bins, top_k=top_k)
    else:
        array = np.asarray(predictions)
        is_labels = classes is not None or _looks_like_labels(array)
        if array.ndim == 1 and is_labels:
            result["outputs"] = categorical_summary(array, top_k=top_k)
        elif array.ndim == 1:
            result["outputs"] = numeric_summary(array, bins=bins)
        else:
            result["outputs"] = _tensor_features("output", array, bins=bins, top_k=top_k)
    if probabilities is not None:
        matrix = np.asarray(probabilities, dtype="float64").reshape(len(probabilities), -1)
        names = [str(c) for c in classes] if classes and len(classes) == matrix.shape[1] else None
        result["probabilities"] = {
            (names[j] if names else str(j)): numeric_summary(matrix[:, j], bins=bins)
            for j in range(matrix.shape[1])
        }
    return result


def _looks_like_labels(array: np.ndarray) -> bool:
    if array.dtype.kind in "OUSb":
        return True
    return array.dtype.kind in "iu" and np.unique(array).size <= _MAX_DISTINCT_FOR_LABELS


def reference_statistics(
    sample: Any,
    predictions: Any = None,
    probabilities: np.ndarray | None = None,
    classes: list[Any] | None = None,
) -> dict[str, Any]:
    """All reference statistics of a package, ready to be written as JSON."""
    rows = len(next(iter(sample.values()))) if isinstance(sample, dict) else len(sample)
    stats: dict[str, Any] = {
        "stats_version": STATS_VERSION,
        "rows": rows,
        "features": feature_statistics(sample),
    }
    _fit_samples(stats["features"])
    if predictions is not None:
        stats["predictions"] = prediction_statistics(predictions, probabilities, classes)
    return stats


_MAX_PREDICTION_ROWS = 10_000  # as registration: predictions describe the sample's head


def model_statistics(loaded: Any, sample: Any) -> dict[str, Any]:
    """Reference statistics of ``sample`` and of ``loaded``'s predictions on it (its first
    10,000 rows, as registration does): for a package registered before the statistics
    existed, or to recompute them from another sample. ``loaded`` is a LoadedModel."""
    head = (
        {name: array[:_MAX_PREDICTION_ROWS] for name, array in sample.items()}
        if isinstance(sample, dict)
        else sample.iloc[:_MAX_PREDICTION_ROWS]
        if isinstance(sample, pd.DataFrame)
        else sample[:_MAX_PREDICTION_ROWS]
    )
    predictions = loaded.predict(head)
    probabilities = np.asarray(loaded.predict_proba(head)) if loaded.supports_proba else None
    classes = getattr(loaded.predictor, "classes", None)
    return reference_statistics(
        sample, predictions, probabilities, list(classes) if classes is not None else None
    )
