"""Prediction log CPU per request, in one process: where the logger's cycles go.

    python benchmarks/log_path.py [--requests 20000] [--rate 5000] [--repeat 3]

What ``benchmarks/monitoring.py`` measures through HTTP on a loaded machine, this
measures without the server, so that other processes on the machine hardly move it
(it counts this process's CPU time, not wall time). The requests are those of the
monitoring benchmark: the accelerated forest's V2 requests of 1 and of 64 rows (one
20-column float64 matrix in, int64 predictions and 2 float64 probabilities out). Each
is answered by a target returning a ready answer, wrapped in the ``LoggedTarget`` the
server uses, and logged by a real ``PredictionLogWriter`` (its background thread,
conversion to Arrow and Parquet segments included) into a temporary directory.

Requests arrive at ``--rate`` per second (about one worker's share of the monitoring
benchmark's throughput; 64-row requests at ``--rate / 8``), so that the writer converts
and writes at the cadence it has in a server. Their values are distinct (4,096
different rows), as production traffic's would be (``monitoring.py`` sends one body
again and again, which compresses better). Rows of the table, in CPU microseconds per
request (medians of ``--repeat`` runs, after a warm-up run):

- request path: the main thread's CPU with the log minus without it (LoggedTarget
  and ``put_request``);
- writer thread: the rest of the process's CPU with the log (the background thread:
  Arrow, Parquet, file system), its last flush at ``close`` included;
- then the parts of the writer, each timed alone on the same requests: ``to_table``
  (Arrow conversion) per request, ``write_segment`` (Parquet) per request.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import modelport
from modelport.domain.layout import MATRIX_INPUT
from modelport.domain.signature import ColumnSpec
from modelport.monitoring.prediction_log import PredictionLogWriter
from modelport.monitoring.prediction_log.segments import open_root, write_segment
from modelport.serving.binding import Bound, NamedInputs, Tensor
from modelport.serving.interface import IOSpec, Layout, ModelIO
from modelport.serving.logged import LoggedTarget
from modelport.serving.target import InferenceRequest, InferenceResult

try:  # --baseline runs this file with an older modelport: what it had instead
    from modelport.monitoring.prediction_log.batches import requests_table
    from modelport.monitoring.prediction_log.segments import required
except ImportError:
    from modelport.monitoring.prediction_log.batches import to_table as requests_table

    def required(table: Any) -> Any:
        return table


FEATURES = 20
BIG = 64
DISTINCT_ROWS = 4096  # answers cycle over this many distinct rows (not one row in cache)
SWITCH_INTERVAL_S = 0.0005
ID_PREFIX = secrets.token_hex(8)  # a serving worker's (server.process.worker)


def model_io() -> ModelIO:
    columns = tuple(ColumnSpec(f"f{i}", "float64") for i in range(FEATURES))
    return ModelIO(
        Layout.MATRIX,
        (IOSpec(MATRIX_INPUT, "FP64", (-1, FEATURES)),),
        (IOSpec("predictions", "INT64", (-1,)), IOSpec("probabilities", "FP64", (-1, 2))),
        columns,
    )


def answers(rows: int, io: ModelIO) -> list[InferenceResult]:
    """Answers of ``rows`` rows, arrays as a V2 request and the forest give them."""
    rng = np.random.default_rng(rows)
    results = []
    for _ in range(max(1, DISTINCT_ROWS // rows)):
        matrix = rng.normal(size=(rows, FEATURES))
        first = rng.random(rows)
        outputs = {
            "predictions": (first < 0.5).astype(np.int64),
            "probabilities": np.column_stack([first, 1 - first]),
        }
        bound = Bound({MATRIX_INPUT: matrix}, rows)
        results.append(InferenceResult(outputs, "forest", 1, rows, io, bound))
    return results


class Ready:
    """A target that answers from a list of ready answers, in turn."""

    def __init__(self, results: list[InferenceResult]) -> None:
        self._results = results
        self._next = 0

    async def infer(self, request: InferenceRequest) -> InferenceResult:
        result = self._results[self._next % len(self._results)]
        self._next += 1
        return result


def request(number: int) -> InferenceRequest:
    """A request; its id is made as the server makes one (``server.http.request_ids``)."""
    inputs = NamedInputs({MATRIX_INPUT: Tensor(np.zeros((1, FEATURES)), "FP64")})
    now = time.monotonic()
    return InferenceRequest(inputs, None, now + 10, f"{ID_PREFIX}{number:016x}", "v2", now)


async def drive(target: Any, requests: list[InferenceRequest], rate: float) -> None:
    """Send ``requests`` at ``rate`` per second."""
    started = time.monotonic()
    for n, one in enumerate(requests):
        await target.infer(one)
        if n % 16 == 15:  # pace in steps: a sleep per request would cost more than a request
            ahead = started + (n + 1) / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)


def run_once(rows: int, count: int, rate: float, logging: bool) -> tuple[float, float]:
    """(main thread, rest of the process) CPU seconds for ``count`` requests."""
    io = model_io()
    inner = Ready(answers(rows, io))
    with tempfile.TemporaryDirectory(prefix="modelport-log-path-") as scratch:
        writer = PredictionLogWriter(scratch) if logging else None
        target: Any = inner
        if writer is not None:
            target = LoggedTarget(
                inner, writer, model="forest", version="1", io=io, status_of=lambda _: 500
            )
        requests = [request(n) for n in range(count)]
        process, main = time.process_time(), time.thread_time()
        asyncio.run(drive(target, requests, rate))
        if writer is not None:
            writer.close()  # the last flush, in the writer's thread
        main = time.thread_time() - main
        total = time.process_time() - process
    return main, total - main


def batches_of(rows: int, count: int) -> list[Any]:
    """What ``LoggedTarget`` queues for ``count`` requests (made by it, collected)."""
    io = model_io()
    collected: list[Any] = []

    class Collect:
        def put_request(self, request: Any) -> bool:
            collected.append(request)
            return True

        put_batch = put_request  # an older modelport's LoggedTarget

    target = LoggedTarget(
        Ready(answers(rows, io)), Collect(), model="forest", version="1", io=io, status_of=str
    )

    async def go() -> None:
        for n in range(count):
            await target.infer(request(n))

    asyncio.run(go())
    return collected


def cpu_of(work: Callable[[], Any]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def parts(rows: int, per_flush: int, flushes: int) -> tuple[float, float]:
    """CPU seconds per request of ``requests_table`` and of ``write_segment``, on flushes of
    ``per_flush`` requests (what the writer gathers in one conversion and one write)."""
    batches = batches_of(rows, per_flush)
    fs, _ = open_root("/")
    convert = write = 0.0
    with tempfile.TemporaryDirectory(prefix="modelport-log-path-") as scratch:
        for n in range(flushes):
            started = time.process_time()
            table = requests_table(batches, None)
            convert += time.process_time() - started
            write += cpu_of(functools.partial(write_segment, fs, scratch, f"s{n}", required(table)))
    return convert / (per_flush * flushes), write / (per_flush * flushes)


PARTS = (
    "request path (LoggedTarget + put_request)",
    "writer thread (all of it)",
    "  of which to_table (Arrow)",
    "  of which write_segment (Parquet)",
    "total",
)


def measure(requests: int, rate: float, repeat: int) -> dict[str, float]:
    """CPU µs per request by ``"<rows> <part>"``."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    found = {}
    for rows, count, pace in ((1, requests, rate), (BIG, requests // 8, rate / 8)):
        # Warm-up: the first conversion imports what pyarrow converts with (pandas), once
        # per process; a server pays that once, not per request.
        run_once(rows, count // 10, pace, True)
        off = [run_once(rows, count, pace, False) for _ in range(repeat)]
        on = [run_once(rows, count, pace, True) for _ in range(repeat)]
        path = (statistics.median(m for m, _ in on) - statistics.median(m for m, _ in off)) / count
        thread = statistics.median(t for _, t in on) / count
        # one conversion every 0.1 s, one write every second or 10,000 rows (the writer's)
        convert, _ = parts(rows, max(1, int(pace * 0.1)), 10)
        _, write = parts(rows, min(int(pace), 10_000 // rows), 3)
        for name, seconds in zip(PARTS, (path, thread, convert, write, path + thread), strict=True):
            found[f"{rows} {name}"] = seconds * 1e6
    return found


def in_subprocess(src: str, args: argparse.Namespace) -> dict[str, float]:
    """``measure`` with the modelport of ``src`` (a ``src`` directory) in a new process."""
    command = [sys.executable, __file__, "--json", "--repeat", "1"]
    command += ["--requests", str(args.requests), "--rate", str(args.rate)]
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="single-row requests")
    parser.add_argument("--rate", type=float, default=5_000, help="single-row requests/s")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="a src directory of another modelport (e.g. `git archive` of an older commit): "
        "both measured in turns, one process each, the table shows before -> after",
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.json:
        print(json.dumps(measure(args.requests, args.rate, args.repeat)))
        return 0
    if args.baseline is None:
        after = measure(args.requests, args.rate, args.repeat)
        print("| rows/request | part | CPU µs/request | CPU µs/row |")
        print("|---:|---|---:|---:|")
        for key, micros in after.items():
            rows, name = key.split(" ", 1)
            print(f"| {rows} | {name} | {micros:.2f} | {micros / int(rows):.3f} |")
        return 0
    current = str(Path(modelport.__file__).resolve().parents[1])
    turns: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for turn in range(args.repeat):  # in turns, so that both see the same machine
        for label, src in (("before", args.baseline), ("after", current))[:: 1 - 2 * (turn % 2)]:
            turns[label].append(in_subprocess(src, args))
    print("| rows/request | part | CPU µs/request before | after | change |")
    print("|---:|---|---:|---:|---:|")
    for key in turns["after"][0]:
        rows, name = key.split(" ", 1)
        before = statistics.median(t[key] for t in turns["before"])
        after = statistics.median(t[key] for t in turns["after"])
        print(
            f"| {rows} | {name} | {before:.2f} | {after:.2f} | {(after / before - 1) * 100:+.0f}% |"
        )
    print(f"\nload average {os.getloadavg()[0]:.2f} (on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
