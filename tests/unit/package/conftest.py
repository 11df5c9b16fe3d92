"""Fixtures for the package tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def mixed_frame() -> pd.DataFrame:
    """A small table with a column of every signature kind."""
    return pd.DataFrame(
        {
            "age": [31, 45, 52],
            "income": [1200.5, np.nan, 3100.0],
            "city": ["paris", "rome", "oslo"],
            "member": [True, False, True],
            "plan": pd.Categorical(["a", "b", "a"]),
            "since": pd.to_datetime(["2020-01-01", "2021-06-30", "2022-12-31"]),
        }
    )
