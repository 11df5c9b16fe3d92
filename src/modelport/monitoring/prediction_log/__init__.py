"""The prediction log: one row per answered request, in Parquet segments queried with DuckDB.

``records`` holds the row and its columnar layout, ``segments`` where segment files
live and how they are written, ``writer`` the non-blocking queue and its background
writer, ``spool`` and ``converter`` a serving worker's spool and the process that
converts it, ``reader`` the DuckDB queries and ``maintenance`` compaction and retention.

The names below are imported when first used: the converter process, which needs
neither DuckDB nor the reader, starts in half the time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelport.monitoring.prediction_log.batches import PredictionBatch
    from modelport.monitoring.prediction_log.maintenance import compact, delete_expired
    from modelport.monitoring.prediction_log.reader import query
    from modelport.monitoring.prediction_log.records import PredictionRecord
    from modelport.monitoring.prediction_log.writer import PredictionLogWriter

_MODULES = {
    "PredictionBatch": "batches",
    "PredictionLogWriter": "writer",
    "PredictionRecord": "records",
    "compact": "maintenance",
    "delete_expired": "maintenance",
    "query": "reader",
}

__all__ = [
    "PredictionBatch",
    "PredictionLogWriter",
    "PredictionRecord",
    "compact",
    "delete_expired",
    "query",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
