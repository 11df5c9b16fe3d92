"""Monitoring benchmark: is monitoring fast enough to leave on? One command, one table.

    python benchmarks/monitoring.py [--quick] [--duration 5] [--rounds 7] [--workers 2]
                                    [--skip-log | --log-only] [--path-share]

The prediction log's part (issue 11, section 6): the accelerated forest of
``benchmarks/serve.py`` (RandomForestClassifier, 100 trees, 20 float64 features,
served by onnxruntime), registered in a fresh MODELPORT_HOME and served by two
``modelport serve`` processes at once, one with ``[prediction_log] enabled = false``
and one logging every request with every input column and every output (V2 requests,
which answer predictions and probabilities). Load is ``wrk`` (serve.py's runner: one
thread pinned to core 0) at 64 connections, with single-row requests and with 64-row
requests. The two servers take turns, run by run, for ``--rounds`` rounds (the order
flips each round), so that both see the same machine; the verdicts take the median of
the rounds' on/off ratios (throughput with logging on must be at least 95% of off) and
of their p99 differences (at most 0.5 ms higher): on a shared machine one run moves by
+-20% (the same CPU loop, timed again and again, by +-30%), so one disturbed run must
not decide, either way; the medians of each server's runs are printed beside them, and
so is the server's CPU time per request (every process of its tree, from /proc). After the runs the
logging server is stopped (SIGTERM) and the rows in its log are counted against the
rows it predicted and the rows it dropped (both from its ``/metrics``).

Two measurement fixes keep one server's background work out of the other's figures:

- Each worker's live drift thread imports pandas and scipy ``START_DELAY_S`` (10 s)
  after it first serves, holding the GIL for a second or two
  (``monitoring.drift_live``). Measured runs start only once every server is past
  that: ``START_DELAY_S`` plus a margin after the last server was ready, and
  ``modelport_feature_drift`` in each server's ``/metrics`` (the gauges appear once
  the imports are done). Before this, the first runs absorbed the imports (the first
  "off" run measured ~7,300 req/s against ~11,100 in later ones).
- After each wrk run the script waits ``SETTLE_S`` (longer than the log's 1 s flush
  interval and the drift thread's 2 s fold) before it reads the server's CPU time and
  starts the next run: the last flush of the requests a run sent is counted in that
  server's CPU per request, never in the next run's throughput (which may be the other
  server's).

Each run also prints how many CPUs the rest of the machine kept busy meanwhile (from
/proc/stat, less the measured server, wrk and this script), and the table gives their
median: on a shared machine, runs that other work disturbed are visible as such.

With ``--threads``, the server's CPU per request is also printed per thread name
summed over its workers: ``MainThread`` is the event loop; Python 3.11 gives the
others no system name (they show as the process's, ``python3``): the log's writer,
the drift thread and the model's threads.

Then every module in ``benchmarks/monitoring_parts/`` that has ``run(quick) -> list of
{case, value, unit, target, verdict}`` runs (drift, live accuracy, ...), and its rows
join the table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # serve.py's helpers, however this file is run

import serve  # noqa: E402 (after the path above)

PARTS = HERE / "monitoring_parts"
CONNECTIONS = 64
CONVERTER = "modelport-log"  # the prediction log converter process names itself so
THROUGHPUT_TARGET = 0.95
P99_BUDGET_MS = 0.5
SETTLE_S = 3.0  # > flush interval (1 s) and the drift thread's fold (every 2 s)
Row = dict[str, Any]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=7, help="on/off turns per scenario")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per server")
    parser.add_argument("--skip-log", action="store_true", help="only the parts")
    parser.add_argument("--log-only", action="store_true", help="only the prediction log's part")
    parser.add_argument(
        "--path-share",
        action="store_true",
        help="a third server with sample_rate 0: what the request path alone costs",
    )
    parser.add_argument(
        "--threads", action="store_true", help="print the CPU per request per thread name"
    )
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- log part


def v2_body(frame: Any) -> bytes:
    """A V2 JSON request for the rows of ``frame`` (one FP64 matrix, every output)."""
    values = frame.to_numpy(dtype=float)
    tensor = {"name": "input", "shape": list(values.shape), "datatype": "FP64"}
    return json.dumps({"inputs": [{**tensor, "data": values.ravel().tolist()}]}).encode()


def prepare_forest(scratch: Path) -> dict[int, Path]:
    """Train and register the forest; its 1-row and 64-row request bodies by rows."""
    print("- training and registering the forest (ONNX conversion takes a while)", flush=True)
    forest, train, test, accuracy = serve.train_forest()
    serve.register(forest, "forest", train, {"accuracy": accuracy})
    bodies = {}
    for rows in (1, serve.BATCH_ROWS):
        path = scratch / f"forest-v2-{rows}.json"
        path.write_bytes(v2_body(test.head(rows)))
        bodies[rows] = path
    return bodies


def start(label: str, logging: bool, workers: int, logs: Path, **settings: str) -> serve.Server:
    port = serve.free_port()
    env = {**os.environ, "MODELPORT_PREDICTION_LOG__ENABLED": "true" if logging else "false"}
    env.update({f"MODELPORT_PREDICTION_LOG__{k.upper()}": v for k, v in settings.items()})
    command = serve.modelport_command("forest@production", port, workers)
    server = serve.start_server(label, command, env, port, logs)
    serve.wait_ready(server, "/v2/health/ready")
    return server


def counted_rows(server: serve.Server) -> tuple[float, float]:
    """The server's rows predicted and rows its log dropped, from ``/metrics``."""
    time.sleep(1.5)  # requests wrk left in flight finish; workers flush every second
    _, body = serve.http_call(server.port, "GET", "/metrics")
    text = body.decode()

    def total(name: str) -> float:
        found = re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M)
        return sum(float(value) for value in found)

    return total("modelport_predictions_total"), total("modelport_prediction_log_dropped_total")


def thread_cpu(pids: Sequence[int]) -> dict[str, float]:
    """CPU seconds so far per thread name, summed over the threads of ``pids``."""
    totals: dict[str, float] = {}
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                text = Path(f"/proc/{pid}/task/{task}/stat").read_text()
            except OSError:
                continue
            name = text[text.index("(") + 1 : text.rindex(")")]
            # A process's first thread, unless it named itself (the log's converter does).
            name = "MainThread" if task == str(pid) and name != CONVERTER else name
            fields = text[text.rindex(")") + 2 :].split()
            seconds = (int(fields[11]) + int(fields[12])) / serve.CLK_TCK
            totals[name] = totals.get(name, 0.0) + seconds
    return totals


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (every CPU, every process)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle, iowait
    return (sum(fields[:8]) - idle) / serve.CLK_TCK


def own_seconds() -> float:
    """CPU seconds of this script and its finished children (wrk)."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def run_log_part(args: argparse.Namespace) -> list[Row]:
    """Logging on vs off, turn by turn; the rows of the table."""
    serve.check_tools()
    duration = 2 if args.quick else args.duration
    rounds = 1 if args.quick else args.rounds
    with tempfile.TemporaryDirectory(prefix="modelport-bench-monitoring-") as scratch_dir:
        scratch = Path(scratch_dir)
        home = scratch / "home"
        os.environ["MODELPORT_HOME"] = str(home)
        bodies = prepare_forest(scratch)
        servers = {
            "off": start("forest log off", False, args.workers, scratch / "logs"),
            "on": start("forest log on", True, args.workers, scratch / "logs"),
        }
        if args.path_share:  # the request path's share: batches made, then sampled out
            logs = scratch / "logs"
            servers["path"] = start("forest log path", True, args.workers, logs, sample_rate="0")
        ready_at = time.monotonic()
        results: dict[tuple[int, str], list[serve.WrkResult]] = {}
        cpu: dict[tuple[int, str], list[float]] = {}  # server CPU seconds per request
        others: list[float] = []  # CPUs busy with anything else, per run
        try:
            for server in servers.values():  # every worker serves: the drift delay starts
                url = server.url("/v2/models/forest/infer")
                serve.run_wrk(url, bodies[1], CONNECTIONS, 1)
            serve.wait_drift_loaded(list(servers.values()), ready_at)
            for server in servers.values():  # warm-up, not counted in the figures
                url = server.url("/v2/models/forest/infer")
                serve.run_wrk(url, bodies[1], CONNECTIONS, 1 if args.quick else 3)
            time.sleep(SETTLE_S)
            for rows, body in bodies.items():
                for turn in range(rounds):
                    order = tuple(servers) if turn % 2 == 0 else tuple(reversed(servers))
                    for mode in order:
                        url = servers[mode].url("/v2/models/forest/infer")
                        pids = servers[mode].tree()
                        before = serve.tree_cpu_seconds(pids)
                        threads_before = thread_cpu(pids)
                        machine, own, started = busy_seconds(), own_seconds(), time.monotonic()
                        result = serve.run_wrk(url, body, CONNECTIONS, duration)
                        time.sleep(SETTLE_S)  # its last flush: this server's CPU
                        used = serve.tree_cpu_seconds(pids) - before
                        # what the rest of the machine took meanwhile (other work on a
                        # shared machine, the idle servers): CPUs busy on average
                        machine = busy_seconds() - machine - used - (own_seconds() - own)
                        others.append(machine / (time.monotonic() - started))
                        threads_used = {
                            name: seconds - threads_before.get(name, 0.0)
                            for name, seconds in thread_cpu(pids).items()
                        }
                        results.setdefault((rows, mode), []).append(result)
                        cpu.setdefault((rows, mode), []).append(used / max(result.requests, 1))
                        print(
                            f"  {rows:>2} rows c={CONNECTIONS} log {mode:<3} "
                            f"{result.requests_per_s:9.1f} req/s  p50 {result.p50_ms:6.2f} ms  "
                            f"p99 {result.p99_ms:6.2f} ms  errors {result.errors}  "
                            f"server CPU {cpu[(rows, mode)][-1] * 1e6:6.1f} us/request  "
                            f"other processes {others[-1]:.2f} CPUs",
                            flush=True,
                        )
                        if args.threads:
                            per_thread = sorted(threads_used.items(), key=lambda kv: -kv[1])
                            print(
                                "      per thread (us/request): "
                                + ", ".join(
                                    f"{name} {seconds / max(result.requests, 1) * 1e6:.1f}"
                                    for name, seconds in per_thread
                                    if seconds > 0
                                ),
                                flush=True,
                            )
            predicted, dropped = counted_rows(servers["on"])
        finally:
            codes = {mode: serve.stop_server(server) for mode, server in servers.items()}
        logged = count_logged(home)
    rows = log_rows(results, cpu, predicted, logged, dropped, codes)
    busy = f"median {statistics.median(others):.2f}, max {max(others):.2f} of {os.cpu_count()}"
    return [*rows, info("CPUs busy with other processes during the runs", busy, "CPUs")]


def count_logged(home: Path) -> int:
    from modelport.monitoring.prediction_log import query

    return query(str(home / "predictions"), "forest").num_rows


def log_rows(
    results: dict[tuple[int, str], list[serve.WrkResult]],
    cpu: dict[tuple[int, str], list[float]],
    predicted: float,
    logged: int,
    dropped: float,
    codes: dict[str, int | None],
) -> list[Row]:
    rows: list[Row] = []
    for size in sorted({size for size, _ in results}):
        off, on = results[(size, "off")], results[(size, "on")]
        rate_off = statistics.median(r.requests_per_s for r in off)
        rate_on = statistics.median(r.requests_per_s for r in on)
        p99_off = statistics.median(r.p99_ms for r in off)
        p99_on = statistics.median(r.p99_ms for r in on)
        scenario = f"log every request, {size} row{'s' if size > 1 else ''}, c={CONNECTIONS}"
        # Each round's on/off pair shares the machine's state: the verdicts take the median
        # of the rounds' ratios and differences, which one disturbed run cannot decide.
        ratio = serve.median_ratio(off, on)
        p99_added = statistics.median(b.p99_ms - a.p99_ms for a, b in zip(off, on, strict=True))
        cpu_off = statistics.median(cpu[(size, "off")]) * 1e6
        cpu_on = statistics.median(cpu[(size, "on")]) * 1e6
        if (size, "path") in cpu:
            cpu_path = statistics.median(cpu[(size, "path")]) * 1e6
            rate_path = statistics.median(r.requests_per_s for r in results[(size, "path")])
            rows.append(
                info(
                    f"{scenario}: request path only (sample_rate 0): CPU, req/s",
                    f"{cpu_path:.0f} us ({(cpu_path / cpu_off - 1) * 100:+.1f}%), "
                    f"{rate_path:,.0f} req/s",
                    "",
                )
            )
        rows += [
            info(
                f"{scenario}: server CPU per request off / on (change)",
                f"{cpu_off:.0f} / {cpu_on:.0f} ({(cpu_on / cpu_off - 1) * 100:+.1f}%)",
                "us",
            ),
            info(
                f"{scenario}: req/s off / on (medians)",
                f"{rate_off:,.0f} / {rate_on:,.0f} ({rate_on / rate_off:.1%})",
                "req/s",
            ),
            verdict(
                f"{scenario}: throughput on/off (median of the rounds' ratios)",
                ratio * 100,
                "%",
                ">= 95",
                ratio >= 0.95,
            ),
            info(f"{scenario}: p99 off / on (medians)", f"{p99_off:.2f} / {p99_on:.2f}", "ms"),
            verdict(
                f"{scenario}: p99 on - off (median of the rounds' differences)",
                p99_added,
                "ms",
                f"<= +{P99_BUDGET_MS}",
                p99_added <= P99_BUDGET_MS,
            ),
        ]
    complete = logged + dropped == predicted and all(code == 0 for code in codes.values())
    rows.append(
        verdict(
            "rows logged + dropped = rows predicted (log read after SIGTERM)",
            f"{logged:,} + {dropped:,.0f} of {predicted:,.0f}",
            "rows",
            "equal",
            complete,
        )
    )
    return rows


def info(case: str, value: Any, unit: str) -> Row:
    return {"case": case, "value": value, "unit": unit, "target": "", "verdict": ""}


def verdict(case: str, value: Any, unit: str, target: str, passed: bool) -> Row:
    return {
        "case": case,
        "value": round(value, 2) if isinstance(value, float) else value,
        "unit": unit,
        "target": target,
        "verdict": "PASS" if passed else "FAIL",
    }


# ----------------------------------------------------------------------------- parts


def part_runners() -> list[tuple[str, Callable[[bool], list[Row]]]]:
    """``run`` of every module in ``monitoring_parts/`` that has one, by file name."""
    runners = []
    for path in sorted(PARTS.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"monitoring_parts.{path.stem}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        run = getattr(module, "run", None)
        if callable(run):
            runners.append((path.stem, run))
    return runners


def run_parts(quick: bool) -> list[Row]:
    rows: list[Row] = []
    for name, run in part_runners():
        print(f"- part {name}", flush=True)
        try:
            rows += run(quick)
        except Exception as exc:  # one broken part must not hide the others' figures
            traceback.print_exc()
            rows.append(info(f"{name}: failed", f"{type(exc).__name__}: {exc}", ""))
            rows[-1]["verdict"] = "ERROR"
    return rows


def print_table(rows: Sequence[Row]) -> None:
    print()
    print("| case | value | unit | target | verdict |")
    print("|---|---:|---|---|---|")
    for row in rows:
        value = row["value"]
        shown = f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else value
        print(f"| {row['case']} | {shown} | {row['unit']} | {row['target']} | {row['verdict']} |")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load_start = os.getloadavg()
    rows = [] if args.skip_log else run_log_part(args)
    if not args.log_only:
        rows += run_parts(args.quick)
    print_table(rows)
    load_end = os.getloadavg()
    print(
        f"\n{time.monotonic() - started:.0f} s; load average at start "
        f"{load_start[0]:.2f}, at end {load_end[0]:.2f} (on {os.cpu_count()} CPUs)"
    )
    return 1 if any(row["verdict"] in ("FAIL", "ERROR") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
