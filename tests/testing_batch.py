"""Small registered models and input files for the batch scoring tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import modelport


def rows(count: int, *, seed: int = 0, start: int = 0) -> pd.DataFrame:
    """Customers: an id, then the two features the models take."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(start, start + count, dtype=np.int64),
            "tenure": rng.integers(1, 72, count).astype(np.int64),
            "charges": rng.normal(70, 20, count).round(2),
        }
    )


def train(offset: float = 0.0) -> Any:
    """A logistic regression on tenure and charges (``offset`` moves its threshold, so two
    versions answer differently)."""
    from sklearn.linear_model import LogisticRegression

    frame = rows(300, seed=7)
    target = (frame["tenure"] + offset < 24).astype(int)
    return LogisticRegression(max_iter=500).fit(frame[["tenure", "charges"]], target)


def register(
    name: str = "churn", *, offset: float = 0.0, alias: str | None = "production", **options: Any
) -> int:
    """Register a new version of ``name`` (id column ``customer_id``) and point ``alias``
    at it; its number."""
    options.setdefault("accelerate", False)
    model = train(offset)
    version = modelport.register(
        model,
        name,
        sample_input=rows(50, seed=3)[["tenure", "charges"]],
        id_columns=["customer_id"],
        **options,
    )
    if alias is not None:
        modelport.set_alias(name, alias, version.version)
    return version.version


def expected(frame: pd.DataFrame, offset: float = 0.0) -> np.ndarray:
    """What the model of ``train(offset)`` predicts for ``frame``."""
    return np.asarray(train(offset).predict(frame[["tenure", "charges"]]))


def read_output(path: Path | str) -> pd.DataFrame:
    """Every part of an output directory, ordered by customer."""
    directory = Path(path)
    parts = sorted(directory.glob("part-*"))
    frames = [
        pd.read_csv(part) if part.suffix == ".csv" else pd.read_parquet(part) for part in parts
    ]
    return pd.concat(frames).sort_values("customer_id").reset_index(drop=True)


def part_names(path: Path | str) -> list[str]:
    return sorted(p.name for p in Path(path).glob("part-*"))
