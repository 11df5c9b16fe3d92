"""The deployment scenarios of the serving benchmark: what routing costs.

    python benchmarks/serve.py --deployments [--duration 5] [--workers 2]

The accelerated forest of ``serve.py`` (RandomForestClassifier(n_estimators=100) on 20
float64 columns) is registered twice (versions 1 and 2: the same model, so both arms
cost the same), and measured with ``wrk`` (single-row MLflow requests, as ``serve.py``):

* routing overhead: ``modelport serve forest@production`` (one model) against
  ``modelport serve forest`` serving the deployment ``forest`` with a canary (version 1
  on 90%, version 2 on 10%), at c=64: both servers up, measured in turns (ten rounds,
  the order flipped each round, so that the machine's drift hits both alike). Target:
  the canary's requests/s >= 95% of the single model's, as the median of the rounds'
  ratios: on a shared machine one run's throughput moves by +-20% (the same CPU loop,
  timed again and again, by +-30%), so one disturbed run must not decide, either way.
  The table also gives the ratio of the means and each server's CPU per request (every
  process of its tree, from /proc, read after the run's last flush settled).
* a shadow's cost to the caller: a server of the deployment ``forest`` (version 1 alone)
  against a server of the deployment ``mirror`` (the same version 1, and a shadow arm of
  version 2 getting every request: as slow as the champion), both up, measured in turns
  at c=8 and c=64, five rounds each (means), the order flipped each round, so that the shadow
  processes start with their server (not inside a measured run) and the machine's drift
  hits both alike. Target: the champion's p99 with the shadow <= 110% of without.
  Each worker answers its shadow copies in a process of its own at idle priority
  (``serve.shadow_process``), paused while the rest of the machine keeps more than
  ``serve.shadow_busy_limit`` (0.25) of the cores busy: the shadow gets only CPU the
  champion leaves, and the copies it cannot keep up with are dropped and counted. The
  table says what share of the copies made during the shadow runs were dropped
  (``modelport_shadow_dropped_total``) and answered
  (``modelport_arm_requests_total{arm="shadow"}``, counted once the shadow has caught up
  after the run). Every run waits until the shadow processes have answered their
  backlog, so that they idle during it.

Both parts measure only once every worker's live drift thread has imported pandas and
scipy (``serve.wait_drift_loaded``): those imports, 10 s after a worker first serves,
hold its GIL for a second or two, and used to land in the first round's runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import serve as bench

if TYPE_CHECKING:
    from modelport.registry.service import RegistryService

CANARY_WEIGHT = 10.0
POLL = {"MODELPORT_SERVE__POLL_INTERVAL_S": "0.2"}
ROUNDS = 10  # pairs of canary runs: single runs on this shared machine move by +-20%
SETTLE_S = 2.5  # after a canary run: > the log's 1 s flush and the drift thread's 2 s fold
SHADOW_ROUNDS = 5  # a p99 of single runs at c=8 moves by tens of percent on a shared machine


@dataclass(frozen=True)
class Run:
    """One wrk run of one scenario; for a shadow run, the copies dropped and answered."""

    scenario: str
    concurrency: int
    result: bench.WrkResult
    dropped: float = 0.0
    answered: float = 0.0
    cpu_us: float = 0.0  # the server's CPU per request (every process of its tree)


def shadow_counts(server: bench.Server) -> tuple[float, float]:
    """The shadow copies dropped and answered so far, from ``/metrics``."""
    _, body = bench.http_call(server.port, "GET", "/metrics")
    text = body.decode()

    def total(pattern: str) -> float:
        return sum(float(v) for v in re.findall(rf"^{pattern}\{{[^}}]*\}} (\S+)$", text, re.M))

    answered = sum(
        float(v)
        for v in re.findall(
            r'^modelport_arm_requests_total\{[^}]*arm="shadow"[^}]*\} (\S+)$', text, re.M
        )
    )
    return total("modelport_shadow_dropped_total"), answered


def settled_counts(server: bench.Server) -> tuple[float, float]:
    """The shadow counts once they stop moving: the shadow processes caught up (metrics
    are written every second)."""
    last = shadow_counts(server)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(1.5)
        now = shadow_counts(server)
        if now == last:
            return now
        last = now
    return last


def start(label: str, ref: str, workers: int, logs: Path) -> bench.Server:
    """A modelport server of ``ref``, ready."""
    port = bench.free_port()
    command = bench.modelport_command(ref, port, workers)
    server = bench.start_server(label, command, {**os.environ, **POLL}, port, logs)
    bench.wait_ready(server, "/v2/health/ready")
    return server


def measure(
    server: bench.Server, scenario: str, body: Path, concurrency: int, duration: int
) -> Run:
    """One wrk run, printed as it ends."""
    result = bench.run_wrk(server.url("/invocations"), body, concurrency, duration)
    print(
        f"  {scenario:<34} c={concurrency:<3} {result.requests_per_s:9.1f} req/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
        flush=True,
    )
    return Run(scenario, concurrency, result)


def revision_served(server: bench.Server) -> int | None:
    """The deployment revision the worker that answers says it serves."""
    status, payload = bench.http_call(server.port, "GET", "/api/models")
    if status != 200:
        return None
    deployment = json.loads(payload)["models"][0].get("deployment")
    return int(deployment["revision"]) if deployment else None


def change(act: Callable[[RegistryService], object], server: bench.Server | None = None) -> None:
    """Change the deployment in the registry; with ``server``, wait until it serves it
    (every worker polls every 0.2 s: a second after the first one does, all have)."""
    import modelport

    with modelport.connect() as registry:
        act(registry)
        revision = registry.get_deployment("forest").revision
    if server is None:
        return
    deadline = time.monotonic() + 30
    while revision_served(server) != revision:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server never served revision {revision}")
        time.sleep(0.1)
    time.sleep(1.0)


def canary_overhead(body: Path, duration: int, workers: int, logs: Path) -> list[Run]:
    """Single model against the two-arm canary, c=64: both servers up (the one not
    measured idles), measured in turns so that the machine's drift hits both alike."""
    runs = []
    servers = []
    try:
        for label, ref in (("single model", "forest@production"), ("two-arm canary", "forest")):
            servers.append((label, start(label, ref, workers, logs)))
        for _, server in servers:
            bench.run_wrk(server.url("/invocations"), body, 64, 2)  # warm-up
        bench.wait_drift_loaded([server for _, server in servers], time.monotonic())
        for turn in range(ROUNDS):
            for label, server in servers if turn % 2 == 0 else servers[::-1]:
                pids = server.tree()
                before = bench.tree_cpu_seconds(pids)
                run = measure(server, label, body, 64, duration)
                time.sleep(SETTLE_S)  # the run's last log flush and drift fold count here
                used = bench.tree_cpu_seconds(pids) - before
                runs.append(dataclasses.replace(run, cpu_us=used / run.result.requests * 1e6))
    finally:
        for _, server in servers:
            bench.stop_server(server)
    return runs


def shadow_cost(body: Path, duration: int, workers: int, logs: Path) -> list[Run]:
    """The champion alone against the same champion with a shadow: two servers, both up
    (the one not measured idles), measured in turns, the order flipped each round."""
    runs = []
    servers = {}
    try:
        for label, name in (("champion alone", "forest"), ("champion + shadow", "mirror")):
            servers[label] = start(label, name, workers, logs)
        for server in servers.values():
            bench.run_wrk(server.url("/invocations"), body, 64, 2)  # warm-up
        bench.wait_drift_loaded(list(servers.values()), time.monotonic())
        shadowed = servers["champion + shadow"]
        for concurrency in (8, 64):
            for turn in range(SHADOW_ROUNDS):
                order = list(servers) if turn % 2 == 0 else list(reversed(servers))
                for label in order:
                    # the shadow processes' backlog answered: they idle during the run
                    before = settled_counts(shadowed)
                    run = measure(servers[label], label, body, concurrency, duration)
                    if servers[label] is shadowed:
                        after = settled_counts(shadowed)
                        dropped, answered = (a - b for a, b in zip(after, before, strict=True))
                        run = dataclasses.replace(run, dropped=dropped, answered=answered)
                        print(
                            f"  {'':<34} shadow copies dropped {dropped:,.0f}, "
                            f"answered {answered:,.0f}",
                            flush=True,
                        )
                    runs.append(run)
    finally:
        for server in servers.values():
            bench.stop_server(server)
    return runs


def mean(runs: list[Run], scenario: str, concurrency: int, value: str) -> float:
    """The mean of ``value`` (requests_per_s, p99_ms) over a scenario's runs."""
    return statistics.fmean(
        getattr(run.result, value)
        for run in runs
        if run.scenario == scenario and run.concurrency == concurrency
    )


def report(canary: list[Run], shadow: list[Run]) -> None:
    """The runs, then the targets."""
    print("\n| scenario | c | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for run in canary + shadow:
        r = run.result
        print(
            f"| {run.scenario} | {run.concurrency} | {r.requests_per_s:.1f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {r.errors} |"
        )
    single = mean(canary, "single model", 64, "requests_per_s")
    routed = mean(canary, "two-arm canary", 64, "requests_per_s")
    single_runs = [run for run in canary if run.scenario == "single model"]
    routed_runs = [run for run in canary if run.scenario == "two-arm canary"]
    paired = bench.median_ratio(
        [run.result for run in single_runs], [run.result for run in routed_runs]
    )
    cpu_single = statistics.median(run.cpu_us for run in single_runs)
    cpu_routed = statistics.median(run.cpu_us for run in routed_runs)
    print("\n| target | measured | verdict |")
    print("|---|---|---|")
    print(
        f"| two-arm canary >= 95% of single model, c=64: median of the {len(single_runs)} "
        f"rounds' ratios | {paired:.1%} | {'PASS' if paired >= 0.95 else 'FAIL'} |"
    )
    print(
        f"| the same, ratio of the means | {routed:.0f} / {single:.0f} req/s "
        f"= {routed / single:.1%} | (info) |"
    )
    print(
        f"| server CPU per request, canary / single (medians) | {cpu_routed:.0f} / "
        f"{cpu_single:.0f} µs = {cpu_routed / cpu_single:.1%} | (info) |"
    )
    for concurrency in (8, 64) if shadow else ():
        shadowed_runs = [
            r for r in shadow if r.scenario == "champion + shadow" and r.concurrency == concurrency
        ]
        made = sum(r.result.requests for r in shadowed_runs)
        dropped = sum(r.dropped for r in shadowed_runs)
        answered = sum(r.answered for r in shadowed_runs)
        print(
            f"| shadow copies at c={concurrency}: answered / dropped of those made | "
            f"{answered:,.0f} ({answered / made:.1%}) / {dropped:,.0f} ({dropped / made:.1%}) "
            f"of {made:,} | (info) |"
        )
        alone = mean(shadow, "champion alone", concurrency, "p99_ms")
        shadowed = mean(shadow, "champion + shadow", concurrency, "p99_ms")
        ratio = shadowed / alone
        print(
            f"| champion p99 with a shadow <= 110% of without, c={concurrency} | "
            f"{shadowed:.2f} / {alone:.2f} ms = {ratio:.1%} | "
            f"{'PASS' if ratio <= 1.10 else 'FAIL'} |"
        )


def main(duration: int, workers: int) -> int:
    """Train, register, deploy, measure, report."""
    bench.check_tools()
    with tempfile.TemporaryDirectory(prefix="modelport-bench-deploy-") as scratch:
        bodies = bench.registered_forest(Path(scratch), versions=2)
        change(lambda r: r.create_deployment("forest", 1))
        change(lambda r: r.deploy_canary("forest", 2, CANARY_WEIGHT))
        logs = Path(scratch) / "logs"
        print("- routing overhead: single model vs two-arm canary", flush=True)
        canary = canary_overhead(bodies.single, duration, workers, logs)
        change(lambda r: r.remove_arm("forest", "canary"))
        change(lambda r: r.create_deployment("mirror", 1, model="forest"))
        change(lambda r: r.deploy_shadow("mirror", 2, 1.0, model="forest"))
        print("- a shadow's cost to the caller", flush=True)
        shadow = shadow_cost(bodies.single, duration, workers, logs)
        report(canary, shadow)
    return 0
