"""The prediction log: one row per answered request, in Parquet segments queried with DuckDB.

``records`` holds the row and its columnar layout, ``segments`` where segment files
live and how they are written, ``writer`` the non-blocking queue and its background
writer, ``reader`` the DuckDB queries and ``maintenance`` compaction and retention.
"""

from modelport.monitoring.prediction_log.batches import PredictionBatch
from modelport.monitoring.prediction_log.maintenance import compact, delete_expired
from modelport.monitoring.prediction_log.reader import query
from modelport.monitoring.prediction_log.records import PredictionRecord
from modelport.monitoring.prediction_log.writer import PredictionLogWriter

__all__ = [
    "PredictionBatch",
    "PredictionLogWriter",
    "PredictionRecord",
    "compact",
    "delete_expired",
    "query",
]
