"""drift_over_log against Evidently's DataDriftPreset on the same data, column by column.

Skipped when Evidently is not importable (it is not a dependency: its 0.7 line does not
import under pandas 3; see docs/monitoring.md). Run it in an environment that has it,
e.g. a throwaway venv with ``pip install evidently "pandas<3"``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from drift_logs import NOW, log_table, write_log
from modelport.monitoring.drift_window import drift_over_log
from modelport.package.stats import reference_statistics

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        from evidently import Report
        from evidently.presets import DataDriftPreset
    except ImportError as exc:  # absent, or present but broken beside these libraries
        pytest.skip(f"evidently is not importable: {exc}", allow_module_level=True)

# Evidently's method names -> ours.
_METHODS = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
}


def _frame(rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift * 5, 10, rows),
            "few": rng.integers(0, 4, rows).astype(float),
            "flag": (rng.random(rows) < 0.3 + 0.2 * shift).astype(np.int64),
            "plan": rng.choice(
                ["a", "b", "c"], rows, p=[0.5 - 0.2 * shift, 0.3, 0.2 + 0.2 * shift]
            ),
        }
    )


def _evidently(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, tuple[str, float]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    result: dict[str, tuple[str, float]] = {}
    for metric in snapshot.dict()["metrics"]:
        config: dict[str, Any] = metric["config"]
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            result[config["column"]] = (_METHODS[config["method"]], float(metric["value"]))
    return result


@pytest.mark.parametrize("reference_rows", [600, 1800], ids=["p-values", "distances"])
@pytest.mark.parametrize("shift", [0.0, 0.5], ids=["same", "shifted"])
def test_per_column_results_equal_evidentlys(
    tmp_path: Path, reference_rows: int, shift: float
) -> None:
    rng = np.random.default_rng(reference_rows)
    reference = _frame(rng, reference_rows, 0.0)
    current = _frame(rng, 1200, shift)
    stats = json.loads(json.dumps(reference_statistics(reference)))
    write_log(
        tmp_path,
        log_table(current, model="churn", version="1", start=NOW),
        model="churn",
        version="1",
    )

    ours = {c.column: c for c in drift_over_log(str(tmp_path), "churn", stats).report.columns}
    theirs = _evidently(reference, current)

    assert set(ours) == set(theirs)
    for column, (method, score) in theirs.items():
        assert ours[column].method == method, column
        # Wasserstein: Evidently norms by the population std (ddof=0), we by the sample
        # std (ddof=1): a relative difference of about 1/(2n).
        tolerance = 1 / reference_rows if method == "wasserstein" else 1e-7
        assert ours[column].score == pytest.approx(score, rel=tolerance, abs=1e-12), column
