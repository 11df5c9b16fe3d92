"""A registered classifier and its input rows, for the tests that score on Ray and Spark.

The registry lives in a directory of its own (``Settings(home=...)``), so a module-scoped
fixture can register once and every engine's workers read the package from its
artifact store, as they would from a shared one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from modelport.batch.scoring import ChunkScorer, ScoringOptions
from modelport.batch.source import PackageSource
from modelport.bootstrap import package_source
from modelport.config import Settings

FEATURES = ("tenure", "charges", "calls")
ID = "customer_id"


def rows(count: int, seed: int = 0) -> pd.DataFrame:
    """``count`` customers: an id column and three float features."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            ID: np.arange(count, dtype=np.int64),
            "tenure": rng.integers(1, 72, count).astype(np.float64),
            "charges": rng.normal(70, 20, count),
            "calls": rng.poisson(3, count).astype(np.float64),
        }
    )


def register_classifier(home: Path) -> tuple[Settings, PackageSource]:
    """Register a logistic regression as ``churn`` version 1 (id column ``customer_id``)
    under ``home``; its settings and the source workers load it from."""
    from sklearn.linear_model import LogisticRegression

    import modelport

    settings = Settings(home=home)
    train = rows(300, seed=1)
    target = (train["tenure"] < 24).astype(np.int64)
    features = train[list(FEATURES)]
    modelport.register(
        LogisticRegression().fit(features, target),
        "churn",
        sample_input=features,
        id_columns=[ID],
        accelerate=False,
        settings=settings,
    )
    modelport.set_alias("churn", "champion", 1, settings=settings)
    return settings, package_source("churn@champion", settings)


def scored_locally(
    source: PackageSource, frame: pd.DataFrame, options: ScoringOptions
) -> pd.DataFrame:
    """What scoring ``frame`` in this process gives: the reference for every engine."""
    return ChunkScorer(source.load(), options).score(frame).table
