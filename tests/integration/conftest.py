"""Registries on every metadata back end, and a small classifier trained on mixed columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.artifacts.local import LocalArtifactStore
from modelport.flavors.catalog import default_catalog
from modelport.metadata.memory import MemoryMetadataStore
from modelport.metadata.sql import SqlMetadataStore
from modelport.metadata.store import MetadataStore
from modelport.registry.service import RegistryService

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def metadata_for(request: pytest.FixtureRequest, backend: str) -> MetadataStore:
    """An empty metadata store on ``backend``."""
    if backend == "memory":
        return MemoryMetadataStore()
    fixture = "sqlite_url" if backend == "sqlite" else "postgres_schema_url"
    return SqlMetadataStore(request.getfixturevalue(fixture))


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryService]:
    """A registry with local artifacts over each metadata back end."""
    service = RegistryService(
        metadata_for(request, request.param),
        LocalArtifactStore(tmp_path / "artifacts"),
        default_catalog(),
        actor="alice",
    )
    yield service
    service.close()


@pytest.fixture(scope="session")
def churn_data() -> tuple[pd.DataFrame, np.ndarray]:
    """Features with numeric and text columns, and a binary target."""
    rng = np.random.default_rng(7)
    rows = 300
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows),
            "charges": rng.normal(70, 20, rows).round(2),
            "contract": rng.choice(["monthly", "yearly", "two-year"], rows),
            "region": rng.choice(["north", "south"], rows),
        }
    )
    target = ((frame["contract"] == "monthly") & (frame["tenure"] < 24)).to_numpy().astype(int)
    return frame, target


@pytest.fixture(scope="session")
def churn_model(churn_data: tuple[pd.DataFrame, np.ndarray]) -> Any:
    """A Pipeline: scaled numbers and one-hot text into a logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, target = churn_data
    features = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["tenure", "charges"]),
            ("text", OneHotEncoder(handle_unknown="ignore"), ["contract", "region"]),
        ]
    )
    return make_pipeline(features, LogisticRegression(max_iter=500)).fit(frame, target)
