"""Logged traffic for rollout tests: versions 3 and 4 of ``churn`` answering requests,
written to a prediction log as a serving process would, until the block ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord


@contextmanager
def logged_traffic(root_uri: str, *, pause_s: float = 0.01) -> Iterator[None]:
    """Ten answered requests (five per version) flushed to the log at ``root_uri`` every
    ``pause_s`` until the block ends."""
    stop = threading.Event()

    def serve() -> None:
        count = 0
        while not stop.is_set():
            writer = PredictionLogWriter(root_uri, flush_interval_s=60)
            for version in (3, 4):
                for _ in range(5):
                    count += 1
                    request = f"r{count}"
                    writer.put(
                        PredictionRecord(
                            f"{request}-0", request, datetime.now(UTC), "churn", str(version),
                            "v2", 0.002, 200, {"x": count}, {"predictions": 1},
                        )
                    )  # fmt: skip
            writer.close()
            stop.wait(pause_s)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
