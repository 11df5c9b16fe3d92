"""Live drift across the workers of a real ``modelport serve --workers 2``: each worker
sketches the requests it answers, and one scrape merges them."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

import modelport
from modelport.package.options import PackageOptions
from testing_process import serving

COLUMNS = ["a", "b", "c", "d"]


def _frame(rows: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(shift, 1.0, size=(rows, 4)), columns=COLUMNS)


def _register() -> None:
    from sklearn.linear_model import LinearRegression

    reference = _frame(2000, 0.0, 1)
    model = LinearRegression().fit(reference, reference.sum(axis=1))
    options = PackageOptions(sample_input=reference, accelerate=False)
    with modelport.connect() as registry:
        registry.register(model, "linear", options)


def _gauges(client: httpx.Client) -> dict[str, float]:
    text = client.get("/metrics").text
    found = {}
    for line in text.splitlines():
        match = re.match(
            r"(modelport_(?:feature_drift|dataset_drift_share|drift_window_rows))\{(.*)\} (\S+)",
            line,
        )
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            found[f"{match.group(1)}:{labels.get('feature', '')}"] = float(match.group(3))
    return found


def _send(url: str, frame: pd.DataFrame, batch: int = 25) -> None:
    def post(start: int) -> int:
        part = frame.iloc[start : start + batch]
        body = {"dataframe_split": {"columns": COLUMNS, "data": part.to_numpy().tolist()}}
        with httpx.Client(base_url=url, timeout=10) as client:  # a connection each: both workers
            return client.post("/invocations", json=body).status_code

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(post, range(0, len(frame), batch))) == {200}


def test_two_workers_sketches_merge_into_the_gauges(isolated_home: Path) -> None:
    _register()
    with (
        serving(
            isolated_home, ["linear", "--workers", "2"], MODELPORT_MONITOR__DRIFT_MIN_ROWS="20"
        ) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        _send(server.url, _frame(1000, 1.5, 2))
        deadline = time.monotonic() + 45  # the drift thread starts 10 s after the workers
        gauges = _gauges(client)
        while gauges.get("modelport_drift_window_rows:") != 1000 and time.monotonic() < deadline:
            time.sleep(0.5)  # then each worker writes its sketch every 2 s
            gauges = _gauges(client)

    assert gauges["modelport_drift_window_rows:"] == 1000
    assert gauges["modelport_dataset_drift_share:"] == 1.0
    for column in COLUMNS:
        assert gauges[f"modelport_feature_drift:{column}"] > 0.1  # normed Wasserstein ~1.5
