"""A registered classifier and input files for the Dask batch tests (and the multi-host
end-to-end test): what a batch job scores, and the single-process run it must equal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from modelport.config import Settings

FEATURES = ("tenure", "charges", "calls")


def customers(rows: int, *, seed: int = 3, start: int = 0) -> pd.DataFrame:
    """Customers with an id (not a model input) and three numeric features."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(start, start + rows, dtype=np.int64),
            "tenure": rng.integers(1, 72, rows).astype(np.float64),
            "charges": rng.normal(70, 20, rows).round(2),
            "calls": rng.integers(0, 9, rows).astype(np.float64),
        }
    )


def register_churn(settings: Settings | None = None, name: str = "churn") -> str:
    """Register a logistic regression on ``customers`` (with ``customer_id`` as the id
    column) in the registry of ``settings`` (default: the environment's); returns its
    reference."""
    from sklearn.linear_model import LogisticRegression

    import modelport

    train = customers(400, seed=11)
    target = (train["tenure"] < 24).astype(int) + (train["calls"] > 6).astype(int)
    model = LogisticRegression(max_iter=500).fit(train[list(FEATURES)], target)
    version = modelport.register(
        model,
        name,
        sample_input=train[list(FEATURES)],
        id_columns=["customer_id"],
        accelerate=False,  # scikit-learn itself: the tests are about engines, not runtimes
        settings=settings,
    )
    return f"{name}/{version.version}"


def write_parquet(frame: pd.DataFrame, path: Path, row_group_rows: int) -> Path:
    """``frame`` as a Parquet file of row groups of ``row_group_rows`` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_rows
    )
    return path


def read_parts(staging: Path) -> pd.DataFrame:
    """Every part in ``staging`` (not the errors), in part-name order, as one frame."""
    frames = [pd.read_parquet(part) for part in sorted(staging.glob("part-*.parquet"))]
    frames += [pd.read_csv(part) for part in sorted(staging.glob("part-*.csv"))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
