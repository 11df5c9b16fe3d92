"""What checking API keys costs: the serving benchmark's forest with and without keys.

    python benchmarks/serve.py --auth [--duration 10] [--workers 2]

The accelerated forest of ``serve.py`` (RandomForestClassifier(n_estimators=100) on 20
float64 columns) is served twice, both servers up: ``modelport serve forest@production``
on loopback (no keys checked) and the same with ``MODELPORT_SECURITY__AUTH=on``, whose
requests carry ``Authorization: Bearer`` with a ``predict:forest`` key. Single-row
MLflow requests at c=64 with ``wrk``, measured in turns (three rounds, so that the
machine's drift hits both alike). Target: with keys >= 97% of the requests/s without.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

import serve as bench

ROUNDS = 3
CONCURRENCY = 64
SCENARIOS = (("auth off", {}), ("auth on", {"MODELPORT_SECURITY__AUTH": "on"}))


def make_key() -> str:
    """A ``predict:forest`` key in the benchmark's registry."""
    import modelport
    from modelport.security.key_admin import KeyAdmin

    with modelport.connect() as registry:
        _, token = KeyAdmin(registry.metadata).create("bench", ["predict:forest"], actor="bench")
    return token


def start(label: str, env: dict[str, str], workers: int, logs: Path) -> bench.Server:
    """A modelport server of the forest, ready."""
    port = bench.free_port()
    command = bench.modelport_command("forest@production", port, workers)
    server = bench.start_server(label, command, {**os.environ, **env}, port, logs)
    bench.wait_ready(server, "/v2/health/ready")
    return server


def run(
    label: str, server: bench.Server, body: Path, duration: int, token: str | None
) -> tuple[float, float]:
    """One wrk run (with the key when ``token``), printed; its requests/s and the server's
    CPU seconds per request (every process of its tree, from /proc)."""
    os.environ["AUTHORIZATION"] = f"Bearer {token}" if token else ""
    pids = server.tree()
    before = bench.tree_cpu_seconds(pids)
    try:
        result = bench.run_wrk(server.url("/invocations"), body, CONCURRENCY, duration)
    finally:
        os.environ.pop("AUTHORIZATION", None)
    cpu = (bench.tree_cpu_seconds(pids) - before) / max(result.requests, 1)
    if result.errors != "0":
        raise RuntimeError(f"{label}: {result.errors} errors (refused requests?)")
    print(
        f"  {label:<10} c={CONCURRENCY} {result.requests_per_s:9.1f} req/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
        f"server CPU {cpu * 1e6:6.1f} us/request",
        flush=True,
    )
    return result.requests_per_s, cpu


def measure(
    body: Path, duration: int, workers: int, logs: Path, token: str
) -> dict[str, list[tuple[float, float]]]:
    """Both servers up, measured in turns."""
    servers = []
    rates: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in SCENARIOS}
    try:
        for label, env in SCENARIOS:
            servers.append((label, start(label, env, workers, logs)))
        for label, server in servers:  # warm-up
            run(label, server, body, 2, token if label == "auth on" else None)
        for _ in range(ROUNDS):
            for label, server in servers:
                key = token if label == "auth on" else None
                rates[label].append(run(label, server, body, duration, key))
    finally:
        for _, server in servers:
            bench.stop_server(server)
    return rates


def report(rates: dict[str, list[tuple[float, float]]], workers: int, duration: int) -> None:
    """The rows and the target: throughput, and the server's CPU per request, which a
    busy shared machine disturbs much less than throughput (a 2-core machine's runs
    differ by +-10% from round to round)."""
    print(f"\n{workers} workers per server, {duration} s per wrk run, c={CONCURRENCY}, 1 row")
    print("\n| server | runs (req/s) | mean req/s | server CPU per request (median) |")
    print("|---|---|---|---|")
    for label, values in rates.items():
        runs = ", ".join(f"{rate:.0f}" for rate, _ in values)
        mean = statistics.fmean(rate for rate, _ in values)
        cpu = statistics.median(cpu for _, cpu in values)
        print(f"| forest, {label} | {runs} | {mean:.0f} | {cpu * 1e6:.1f} us |")
    off, on = (statistics.fmean(r for r, _ in rates[label]) for label, _ in SCENARIOS)
    cpu_off, cpu_on = (statistics.median(c for _, c in rates[label]) for label, _ in SCENARIOS)
    share = on / off
    cpu_share = cpu_off / cpu_on  # the throughput the CPU cost alone leaves
    print("\n| target | measured | verdict |")
    print("|---|---|---|")
    print(
        f"| auth on >= 97% of auth off, c=64 (throughput) | {on:.0f} / {off:.0f} req/s = "
        f"{share:.1%} | {'PASS' if share >= 0.97 else 'FAIL'} |"
    )
    print(
        f"| auth on >= 97% of auth off, c=64 (server CPU per request, off / on) | "
        f"{cpu_off * 1e6:.1f} / {cpu_on * 1e6:.1f} us = {cpu_share:.1%} "
        f"| {'PASS' if cpu_share >= 0.97 else 'FAIL'} |"
    )


def main(duration: int, workers: int) -> int:
    """Train, register, make a key, measure, report."""
    bench.check_tools()
    with tempfile.TemporaryDirectory(prefix="modelport-bench-auth-") as scratch:
        bodies = bench.registered_forest(Path(scratch))
        token = make_key()
        print("- auth off vs auth on", flush=True)
        rates = measure(bodies.single, duration, workers, Path(scratch) / "logs", token)
        report(rates, workers, duration)
    return 0
