"""A committed batch output written to the prediction log, to be joined with labels.

Each part becomes one logged "request" (protocol ``batch``, request id
``batch-<job>-<part>``, so a row's prediction id is ``batch-<job>-<part>-<i>``): its
kept columns are logged as ids (``id_<name>``, what ``modelport feedback upload --id``
matches labels against), its predictions as ``out_predictions`` and its class
probabilities as ``out_probabilities``, as the server logs them. The inputs are not
logged (the output does not hold them). The log is written after the commit, by the
same writer the server uses; it waits when its queue is full instead of dropping rows.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

import numpy as np

from modelport.batch.commit import Location
from modelport.batch.scoring import MODEL_COLUMN, PREDICTION, VERSION_COLUMN
from modelport.config import PredictionLogSettings
from modelport.monitoring.prediction_log import PredictionBatch, PredictionLogWriter

if TYPE_CHECKING:
    import pandas as pd

OK = 200
PROTOCOL = "batch"
_PROBABILITY = "probability_"


def log_output(
    output: str,
    *,
    model: str,
    version: int,
    uri: str,
    settings: PredictionLogSettings,
    ids: tuple[str, ...] | None = None,
) -> int:
    """Log every row of the committed ``output``; returns the rows logged. ``ids``: the
    columns to log as ids (default: every kept column)."""
    location = Location(output)
    job = f"batch-{secrets.token_hex(4)}"
    writer = PredictionLogWriter.from_settings(settings, uri)
    limit = max(1, settings.max_queue_rows // 2)
    logged = 0
    try:
        for path in sorted(location.fs.ls(location.path, detail=False)):
            name = str(path).rsplit("/", 1)[-1]
            if not name.startswith("part-"):
                continue
            frame = _read(location, str(path), name)
            if frame.empty:
                continue
            while writer.queued_rows > limit:  # back pressure, not drops
                time.sleep(0.02)
            writer.put_batch(_batch(frame, f"{job}-{name.split('.')[0]}", model, version, ids))
            logged += len(frame)
    finally:
        writer.close()
    return logged


def _read(location: Location, path: str, name: str) -> pd.DataFrame:
    import pandas as pd

    with location.fs.open(path, "rb") as handle:
        if name.endswith(".csv"):
            return pd.read_csv(handle)
        return pd.read_parquet(handle)


def _batch(
    frame: pd.DataFrame, request_id: str, model: str, version: int, ids: tuple[str, ...] | None
) -> PredictionBatch:
    probabilities = [c for c in frame.columns if str(c).startswith(_PROBABILITY)]
    predictions = [c for c in frame.columns if str(c).startswith(PREDICTION)]
    outputs_taken = {*probabilities, *predictions, MODEL_COLUMN, VERSION_COLUMN}
    kept = [c for c in frame.columns if c not in outputs_taken]
    outputs: dict[str, np.ndarray] = {}
    if PREDICTION in frame.columns:
        outputs["predictions"] = frame[PREDICTION].to_numpy()
    elif predictions:
        outputs["predictions"] = frame[predictions].to_numpy()
    if probabilities:
        outputs["probabilities"] = frame[probabilities].to_numpy(dtype=float, na_value=np.nan)
    chosen = kept if ids is None else [c for c in kept if c in ids]
    return PredictionBatch(
        request_id,
        time.time(),
        model,
        str(version),
        PROTOCOL,
        0.0,
        OK,
        len(frame),
        outputs=outputs,
        ids={str(c): frame[c].to_numpy() for c in chosen},
    )
