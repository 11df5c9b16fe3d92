"""Classification and regression metrics over NumPy arrays, as scikit-learn defines them.

scikit-learn is an optional extra, and its metric functions validate and re-encode
their inputs on every call, which costs more than the arithmetic on a million rows;
these compute the same numbers directly (the tests compare them with scikit-learn's).

Conventions (scikit-learn's, with the choices it leaves to the caller made here):

* Binary (at most two classes among labels and predictions): precision, recall and F1
  of the positive class, the larger of the two (1 of 0/1, True of booleans, the later
  in alphabetical order of strings); with one class only, 1 for numbers, else that class.
* More classes: macro averages (each class counts the same, whatever its size).
* A ratio with a zero denominator is 0 (scikit-learn's ``zero_division`` default).
* ROC AUC: of the positive class's probability (binary), or one-vs-rest macro
  (multiclass); undefined (left out) when a class has no labeled row.
* Log loss: probabilities clipped to [eps, 1 - eps] as scikit-learn clips them.
* R²: 1 when predictions and labels are constant and equal, 0 when only the labels
  are constant (scikit-learn's ``force_finite``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def classes_of(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """The sorted classes among labels and predictions."""
    return np.unique(np.concatenate([y_true, y_pred]))


def positive_class(classes: np.ndarray) -> Any:
    """The positive class of a binary problem (see the module docstring)."""
    if len(classes) == 2:
        return classes[-1]
    only = classes[0]
    return only if isinstance(only, str) else 1.0


def classification(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 (binary: positive class; else macro)."""
    classes = classes_of(y_true, y_pred)
    metrics = {"accuracy": float(np.mean(y_true == y_pred))}
    if len(classes) <= 2:
        positive = positive_class(classes)
        true_pos, pred_pos = y_true == positive, y_pred == positive
        tp = int(np.count_nonzero(true_pos & pred_pos))
        fp = int(np.count_nonzero(pred_pos)) - tp
        fn = int(np.count_nonzero(true_pos)) - tp
        metrics.update(
            precision=_ratio(tp, tp + fp),
            recall=_ratio(tp, tp + fn),
            f1=_ratio(2 * tp, 2 * tp + fp + fn),
        )
        return metrics
    k = len(classes)
    t = np.searchsorted(classes, y_true)
    p = np.searchsorted(classes, y_pred)
    confusion = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    tp_k = np.diag(confusion).astype(np.float64)
    fp_k = confusion.sum(axis=0) - tp_k
    fn_k = confusion.sum(axis=1) - tp_k
    metrics.update(
        precision=float(np.mean(_ratios(tp_k, tp_k + fp_k))),
        recall=float(np.mean(_ratios(tp_k, tp_k + fn_k))),
        f1=float(np.mean(_ratios(2 * tp_k, 2 * tp_k + fp_k + fn_k))),
    )
    return metrics


def probabilistic(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """ROC AUC and log loss of ``proba`` (rows x classes, columns in ``classes``' order)."""
    index = np.searchsorted(classes, y_true)
    index = np.minimum(index, len(classes) - 1)
    if not np.all(classes[index] == y_true):
        return {}  # a label the model has no probability for: neither is defined
    eps = np.finfo(proba.dtype).eps
    chosen = np.clip(proba[np.arange(len(index)), index], eps, 1 - eps)
    metrics = {"log_loss": float(-np.mean(np.log(chosen)))}
    if len(classes) == 2:
        auc = roc_auc(index == 1, proba[:, 1])
    else:
        per_class = [roc_auc(index == c, proba[:, c]) for c in range(len(classes))]
        defined = [a for a in per_class if a is not None]
        auc = float(np.mean(defined)) if len(defined) == len(per_class) else None
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """The area under the ROC curve (Mann-Whitney U with average ranks for ties, which
    equals the trapezoidal area scikit-learn computes); None with a single class."""
    n_pos = int(np.count_nonzero(positive))
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    # Imported here: scipy.stats takes about a second to import, and every command that
    # opens the registry imports this module (through the promotion gates).
    from scipy.stats import rankdata

    ranks = rankdata(score)
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R²."""
    error = y_true - y_pred
    squared = float(np.mean(error * error))
    residual = float(np.sum(error * error))
    total = float(np.sum((y_true - np.mean(y_true)) ** 2))
    # Constant labels: scikit-learn's force_finite (1 when exactly right, else 0).
    constant = 1.0 if residual == 0.0 else 0.0
    r2 = constant if total == 0.0 else 1.0 - residual / total
    return {"mae": float(np.mean(np.abs(error))), "rmse": squared**0.5, "r2": r2}


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _ratios(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, numerator / safe)
