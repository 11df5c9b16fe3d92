"""The Ray Serve scenario of the serving benchmark: ``modelport ray serve`` beside
``modelport serve``.

    python benchmarks/serve.py --ray-serve [--duration 10] [--workers 2]

The accelerated forest of ``serve.py`` (RandomForestClassifier(n_estimators=100) on 20
float64 columns) is served by ``modelport serve forest@production --workers N``, then
by ``modelport ray serve forest@production --replicas N`` on a local Ray of N CPUs that
the command starts and stops itself (one CPU per replica). The servers run one after
the other, never both at once: an idle Ray (its GCS, raylet, controller and proxy)
would otherwise take CPU from the other server. ``wrk`` posts single-row MLflow
``/invocations`` requests on 8 and 64 keep-alive connections (after a warm-up), and the
CPU the server's whole process tree used is read from /proc: with Ray Serve every
request also crosses Ray's HTTP proxy and its actor call to a replica.

A third server shows what Ray Serve itself costs: a bare ASGI app (a constant JSON
answer, no model) deployed the same way, with as many replicas, by this script
(``serve_ray.py --bare PORT REPLICAS``, which runs until SIGTERM): Ray Serve's ceiling
on this machine, as ``ceiling.py`` is uvicorn's.

Needs ``ray[serve]`` (``pip install 'modelport[rayserve]'``); without it the scenario
says so and exits 0.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import serve as bench

CONCURRENCY = (8, 64)
WARM_UP_S = 3
SERVE, RAY_SERVE = "modelport serve", "modelport ray serve"
BARE = "Ray Serve, bare ASGI app"


@dataclass(frozen=True)
class Run:
    """One wrk run of one server, with the CPU its process tree used per request."""

    server: str
    connections: int
    result: bench.WrkResult
    cpu_ms_per_request: float


def ray_serve_command(ref: str, port: int, replicas: int) -> list[str]:
    """``modelport ray serve`` on a local Ray with one CPU per replica."""
    command = bench.modelport_command(ref, port, replicas)
    base = command[: command.index("serve")]
    return [
        *base,
        "ray",
        "serve",
        ref,
        "--host",
        bench.HOST,
        "--port",
        str(port),
        "--replicas",
        str(replicas),
        "--num-cpus",
        str(replicas),
    ]


def bare_command(port: int, replicas: int) -> list[str]:
    """The bare ASGI app on Ray Serve (this script's ``--bare`` mode)."""
    return [sys.executable, str(Path(__file__).resolve()), "--bare", str(port), str(replicas)]


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A constant answer to every request: no parsing, no model."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BARE_BODY})


BARE_BODY = b'{"predictions":[0]}'


class BareReplica:
    """The bare app behind ``serve.ingress()``, built in each replica."""

    def __serve_build_asgi_app__(self) -> Any:
        return bare_app


def bare_main(port: int, replicas: int) -> int:
    """Serve the bare app on a local Ray of ``replicas`` CPUs until SIGTERM."""
    import signal
    import threading

    import ray
    from ray import serve

    ray.init(num_cpus=replicas, include_dashboard=False, log_to_driver=False)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    logging = {"enable_access_log": False}
    try:
        serve.start(http_options={"host": bench.HOST, "port": port}, logging_config=logging)
        deployment = serve.deployment(
            serve.ingress()(BareReplica), num_replicas=replicas, max_ongoing_requests=256
        )
        serve.run(deployment.bind(), route_prefix="/", logging_config=logging)
        while not stop.wait(0.5):
            pass
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


def start(label: str, command: list[str], port: int, logs: Path) -> bench.Server:
    """A server, ready; it must answer the forest's first test row."""
    server = bench.start_server(label, command, dict(os.environ), port, logs)
    bench.wait_ready(server, "/v2/health/ready" if label != BARE else "/")
    return server


def check_answer(server: bench.Server, body: Path, expected: object) -> None:
    """The server's answer to the 1-row body is the model's own prediction."""
    if server.label == BARE:
        return
    status, answer = bench.http_call(server.port, "POST", "/invocations", body.read_bytes())
    predictions = json.loads(answer).get("predictions") if status == 200 else None
    if predictions != [expected]:
        raise RuntimeError(f"{server.label} answered {status} {answer[:200]!r}")


def measure(server: bench.Server, body: Path, duration: int) -> list[Run]:
    """A warm-up, then one run per concurrency, printed as each ends."""
    url = server.url("/invocations")
    bench.run_wrk(url, body, max(CONCURRENCY), WARM_UP_S)
    runs = []
    for connections in CONCURRENCY:
        pids = server.tree()
        before = bench.tree_cpu_seconds(pids)
        result = bench.run_wrk(url, body, connections, duration)
        used = bench.tree_cpu_seconds(server.tree()) - before
        run = Run(server.label, connections, result, 1000 * used / max(result.requests, 1))
        print(
            f"  {server.label:<20} c={connections:<3} {result.requests_per_s:9.1f} req/s  "
            f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
            f"cpu {run.cpu_ms_per_request:.2f} ms/req  errors {result.errors}",
            flush=True,
        )
        runs.append(run)
    return runs


def serve_and_measure(
    label: str, command: list[str], port: int, bodies: bench.Bodies, duration: int, logs: Path
) -> tuple[list[Run], float]:
    """Start, check, measure and stop one server; its runs and seconds to readiness."""
    started = time.monotonic()
    server = start(label, command, port, logs)
    ready_s = time.monotonic() - started
    try:
        check_answer(server, bodies.single, bodies.expected[0])
        return measure(server, bodies.single, duration), ready_s
    finally:
        code = bench.stop_server(server)
        print(f"  {label} stopped (exit code {code})", flush=True)


def report(runs: list[Run], ready: dict[str, float], workers: int) -> None:
    """The table of runs, then Ray Serve as a share of modelport serve."""
    print(
        f"\n| server ({workers} workers / replicas) | c | req/s | p50 ms | p99 ms "
        "| server CPU ms/req | errors |"
    )
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        r = run.result
        print(
            f"| {run.server} | {run.connections} | {r.requests_per_s:.1f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {run.cpu_ms_per_request:.2f} | {r.errors} |"
        )
    print("\n| c | modelport ray serve / modelport serve | modelport ray serve / bare app |")
    print("|---|---|---|")
    for connections in CONCURRENCY:
        rates = {
            run.server: run.result.requests_per_s for run in runs if run.connections == connections
        }
        print(
            f"| {connections} | {rates[RAY_SERVE] / rates[SERVE]:.1%} "
            f"| {rates[RAY_SERVE] / rates[BARE]:.1%} |"
        )
    print("\nseconds from start to ready: " + ", ".join(f"{k} {v:.1f}" for k, v in ready.items()))


def main(duration: int, workers: int) -> int:
    """Train, register, measure both servers in turn, report."""
    try:
        import ray.serve  # noqa: F401
    except ImportError as exc:
        print(f"Ray Serve is not installed ({exc}): pip install 'modelport[rayserve]'")
        return 0
    bench.check_tools()
    with tempfile.TemporaryDirectory(prefix="modelport-bench-ray-") as directory:
        scratch = Path(directory)
        bodies = bench.registered_forest(scratch)
        logs = scratch / "logs"
        runs: list[Run] = []
        ready: dict[str, float] = {}
        ref = "forest@production"
        for label, command_for in (
            (SERVE, lambda port: bench.modelport_command(ref, port, workers)),
            (RAY_SERVE, lambda port: ray_serve_command(ref, port, workers)),
            (BARE, lambda port: bare_command(port, workers)),
        ):
            print(f"- {label}, {workers} workers/replicas", flush=True)
            port = bench.free_port()
            measured, ready[label] = serve_and_measure(
                label, command_for(port), port, bodies, duration, logs
            )
            runs.extend(measured)
        report(runs, ready, workers)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--bare":
        sys.exit(bare_main(int(sys.argv[2]), int(sys.argv[3])))
    sys.exit(main(10, 2))
