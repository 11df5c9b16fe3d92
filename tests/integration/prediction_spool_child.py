"""A serving worker's spool with no converter, killed while it logs (a server killed as
a whole: the worker and its converter gone at once).

Usage: python prediction_spool_child.py SPOOL_DIR LOG_URI. It spools one single-row
request every few milliseconds and prints ``put <i> <unix time>`` after each, until it
is killed.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from modelport.monitoring.prediction_log.batches import origin
from modelport.monitoring.prediction_log.spool import SpoolSink


def main() -> None:
    spool_dir, uri = sys.argv[1], sys.argv[2]
    sink = SpoolSink(spool_dir, uri, converter=False)
    where = origin("churn", "1", None, None, {"input": ("age", "income")})
    put = 0
    while True:
        now = time.time()
        sink.put_request(
            (
                where,
                f"k{put}",
                now,
                "v2",
                0.001,
                200,
                1,
                {"input": np.array([[put, 2.0 * put]])},
                {"predict": np.array([put % 2])},
                {},
            )
        )
        print(f"put {put} {now}", flush=True)
        put += 1
        time.sleep(0.003)


if __name__ == "__main__":
    main()
