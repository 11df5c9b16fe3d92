"""A worker that logs one prediction every few milliseconds until it is stopped.

Usage: python prediction_log_child.py ROOT TAG FLUSH_INTERVAL_S [COUNT]. It prints
``put <i> <unix time>`` after each row; on SIGTERM it closes the writer and prints
``closed <rows put>``. With COUNT it stops by itself after COUNT rows.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from datetime import UTC, datetime
from types import FrameType

from modelport.monitoring.prediction_log import PredictionLogWriter, PredictionRecord

stopping = threading.Event()


def stop(signum: int, frame: FrameType | None) -> None:
    stopping.set()


def main() -> None:
    root, tag, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
    count = int(sys.argv[4]) if len(sys.argv) > 4 else None
    signal.signal(signal.SIGTERM, stop)
    writer = PredictionLogWriter(root, flush_interval_s=interval)
    put = 0
    while not stopping.is_set() and (count is None or put < count):
        now = datetime.now(UTC)
        record = PredictionRecord(
            f"{tag}-{put:06d}", f"req-{put}", now, "churn", "1", "mlflow", 0.002, 200,
            {"age": put}, {"prediction": put % 2},
        )  # fmt: skip
        writer.put(record)
        print(f"put {put} {now.timestamp()}", flush=True)
        put += 1
        time.sleep(0.005)
    writer.close()
    print(f"closed {put}", flush=True)


if __name__ == "__main__":
    main()
