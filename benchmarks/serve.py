"""Serving benchmark: modelport's server against ``mlflow models serve``, in one run.

    python benchmarks/serve.py [--duration 10] [--workers 2] [--mlflow-python PATH]
                               [--baseline-python PATH] [--quick]
    python benchmarks/serve.py --deployments [--duration 10] [--workers 2]
    python benchmarks/serve.py --tls [--duration 10] [--workers 2]
    python benchmarks/serve.py --ray-serve [--duration 10] [--workers 2]

Models, trained here: a RandomForestClassifier(n_estimators=100, random_state=0) on
5,000 synthetic rows of 20 float64 columns f0..f19, and the quickstart model (scaled
logistic regression, 30 features). Both are registered in a fresh temporary
MODELPORT_HOME; registration converts them to ONNX. The forest is served twice from
the same package: accelerated (onnxruntime, the default) and native (scikit-learn,
``--no-accelerate``). When a Python that can import mlflow is found (``--mlflow-python``;
default /work/mlflow-venv/bin/python when it exists, else this interpreter), the same
fitted models are saved with ``mlflow.sklearn.save_model`` and served by ``mlflow
models serve --env-manager local`` with the same number of workers.

Two more servers run the accelerated forest in the same run:

* the ceiling (``benchmarks/ceiling.py``): a bare ASGI app on uvicorn with the same
  number of workers, orjson, and onnxruntime with the session options modelport uses,
  running the package's own ONNX graph with no validation, batching or metrics: the
  least a Python server can do per request. modelport's requests/s read as a share of it.
* with ``--baseline-python``, modelport as installed in another environment (say, the
  commit before a change on the request path): before and after, measured side by side.

Measured, for each server:

* requests/s and p50/p99 latency of single-row requests at concurrency 1, 8 and 64,
  and rows/s of 64-row requests at concurrency 8. The load generator is ``wrk``
  (one thread, pinned to core 0 with ``taskset``; ``lua/post.lua`` posts the body).
  Every request is MLflow's ``POST /invocations`` with a ``dataframe_split`` body, the
  same bytes for both servers. Non-2xx answers and socket errors are counted.
* CPU used by each process of the server during each run (utime + stime from
  /proc/PID/stat), in cores: it shows how requests spread over the workers.
* idle memory after a warm-up: the sum over the server's whole process tree
  (modelport: supervisor and workers; MLflow: the CLI, uvicorn and its workers) of
  VmRSS and of Pss (/proc/PID/smaps_rollup, which counts shared pages once).
* cold start: from starting ``modelport serve quickstart@production --workers 1`` to
  the first 200 answer to a prediction (polled every 5 ms); the same for ``mlflow
  models serve`` of the quickstart model.

Beside them, the in-process limit on one core (a subprocess pinned to core 1 with one
BLAS/OpenMP thread): rows/s of the model's own ``predict`` on a 1-row and a 64-row
DataFrame, of onnxruntime on a float64 matrix (modelport's accelerated predictor, the
call the server makes), and of ``modelport.load(...).predict(DataFrame)``. They are
measured before the load tests (the targets' reference) and again after them; the
notes show how far the reference limits drifted in between.

``--auth`` runs only the API-key scenario instead (``serve_auth.py``): the forest at
c=64 with keys checked against without.

``--deployments`` runs only the deployment scenarios instead (``serve_deployments.py``):
routing overhead of a two-arm canary against one model at c=64, and the champion's
p99 with a shadow as slow as the champion against without. ``--tls`` runs only the TLS
scenario (``serve_tls.py``): plain HTTP against HTTPS on the accelerated forest at c=64.
``--ray-serve`` runs only the Ray Serve scenario (``serve_ray.py``, when ``ray[serve]`` is
installed): ``modelport ray serve`` beside ``modelport serve`` with as many replicas as
workers, single-row requests at c=8 and c=64.

Prints one report: the load table, memory, cold start, in-process limits, then the
issue's targets with PASS/FAIL, and the load average. ``--quick`` is a short smoke run
(2-second load runs, fewer cold starts, no MLflow load test of the quickstart model).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LUA_SCRIPT = HERE / "lua" / "post.lua"
DEFAULT_MLFLOW_PYTHON = Path("/work/mlflow-venv/bin/python")  # a separate venv for MLflow
HOST = "127.0.0.1"
FOREST_ROWS = 5000
FOREST_FEATURES = 20
BATCH_ROWS = 64
SINGLE_CONCURRENCY = (1, 8, 64)
BATCH_CONCURRENCY = 8
WRK_CORE = "0"
INPROCESS_CORE = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
STOP_TIMEOUT_S = 40.0  # modelport drains for up to 30 s, then kills after 5 more
READY_TIMEOUT_S = 180.0
MODEL_PREDICT = "model.predict(DataFrame)"
MATRIX_PREDICT = "AcceleratedPredictor.predict(float64 matrix)"  # the server's call
LOADED_PREDICT = "modelport.load().predict(DataFrame)"
SERVED_LINE = re.compile(r"serving (\S+) version \d+ \(([^)]+)\)")

MLFLOW_SAVE = """
import json, sys
import joblib, pandas as pd, mlflow.sklearn
model = joblib.load(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    split = json.load(f)
example = pd.DataFrame(split["data"], columns=split["columns"])
options = {}
try:
    import skops.io  # MLflow 3 saves scikit-learn models with skops by default
    # Our own freshly trained model: trust the types skops would refuse (tree storage).
    options["skops_trusted_types"] = skops.io.get_untrusted_types(data=skops.io.dumps(model))
except ImportError:
    pass
mlflow.sklearn.save_model(model, sys.argv[3], input_example=example, **options)
"""


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Config:
    """How long and how much to measure."""

    duration: int
    warmup: int
    workers: int
    cold_runs: int
    mlflow_cold_runs: int
    inprocess_seconds: float
    mlflow_python: str | None
    mlflow_quickstart_load: bool
    baseline_python: str | None = None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per server")
    parser.add_argument("--mlflow-python", help="a python that can import mlflow")
    parser.add_argument(
        "--baseline-python",
        help="a python whose environment has another modelport build (e.g. the commit "
        "before a change), measured in the same run as 'modelport (baseline)'",
    )
    parser.add_argument("--cold-runs", type=int, default=5, help="modelport cold starts")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--deployments",
        action="store_true",
        help="only the deployment scenarios (serve_deployments.py): a two-arm canary against "
        "one model, and the champion's p99 with and without a shadow",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="only the TLS scenario (serve_tls.py): plain HTTP against HTTPS, forest, c=64",
    )
    parser.add_argument(
        "--auth",
        action="store_true",
        help="only the API-key scenario (serve_auth.py): the forest with and without keys",
    )
    parser.add_argument(
        "--ray-serve",
        action="store_true",
        help="only the Ray Serve scenario (serve_ray.py): modelport ray serve beside "
        "modelport serve, forest, c=8 and c=64",
    )
    parser.add_argument("--inprocess", help=argparse.SUPPRESS)  # the pinned subprocess
    # The baseline build registers the same models into a registry of its own.
    parser.add_argument("--register-baseline", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_config(args: argparse.Namespace) -> tuple[Config, str | None]:
    """Settings from the command line, and a note when MLflow is not measured."""
    mlflow_python, note = find_mlflow_python(args.mlflow_python)
    baseline = args.baseline_python
    if args.quick:
        return Config(2, 1, args.workers, 2, 1, 0.5, mlflow_python, False, baseline), note
    config = Config(
        args.duration, 3, args.workers, args.cold_runs, 3, 2.0, mlflow_python, True, baseline
    )
    return config, note


def find_mlflow_python(given: str | None) -> tuple[str | None, str | None]:
    """The python to run MLflow with, or None and why not."""
    candidates = [given] if given else []
    if not given:
        if DEFAULT_MLFLOW_PYTHON.exists():
            candidates.append(str(DEFAULT_MLFLOW_PYTHON))
        candidates.append(sys.executable)
    for python in candidates:
        check = subprocess.run(
            [
                python,
                "-c",
                "import mlflow, sklearn; print(mlflow.__version__, sklearn.__version__)",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode == 0:
            return python, None
    return None, f"MLflow not measured: none of {candidates} can import mlflow and sklearn"


def check_tools() -> None:
    """wrk and taskset must be installed."""
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing tools: {', '.join(missing)} (apt-get install wrk util-linux)")


# ----------------------------------------------------------------------------- processes


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat fields from the state on (field 3 is index 0), or None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                parents[int(entry)] = int(fields[1])
    return parents


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        if _stat(pid) is not None:
            tree.append(pid)
            queue.extend(children.get(pid, ()))
    return sorted(tree)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks (tells a reused pid apart)."""
    fields = _stat(pid)
    return int(fields[19]) if fields is not None else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 when gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK if fields is not None else 0.0


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    """CPU seconds so far of every process in ``pids`` (a server's ``tree()``)."""
    return sum(map(cpu_seconds, pids))


WORKER_MARKS = (
    b"modelport.server.process.worker",  # modelport's worker module
    b"modelport.server.worker",  # its module before the server was split (a baseline)
    b"spawn_main",  # a worker spawned by uvicorn (MLflow, the ceiling)
)


def is_worker(pid: int) -> bool:
    """A serving worker: modelport's worker module or a uvicorn worker."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return any(mark in command for mark in WORKER_MARKS)


def _status_kb(pid: int, path: str, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/{path}").read_text()
    except OSError:
        return None
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Memory:
    """Memory of a process tree, in MiB."""

    processes: int
    rss: float
    pss: float | None
    workers_pss: float | None


def tree_memory(pids: Sequence[int]) -> Memory:
    """Sum of VmRSS and of Pss over ``pids``."""
    rss = sum(_status_kb(pid, "status", "VmRSS") or 0 for pid in pids)
    pss_values = {pid: _status_kb(pid, "smaps_rollup", "Pss") for pid in pids}
    known = None not in pss_values.values()
    pss = sum(v or 0 for v in pss_values.values()) if known else None
    workers = sum(v or 0 for p, v in pss_values.items() if is_worker(p)) if known else None
    return Memory(
        len(pids),
        rss / 1024,
        pss / 1024 if pss is not None else None,
        workers / 1024 if workers is not None else None,
    )


@dataclass
class Server:
    """A server process we started, and every process of its tree we saw."""

    label: str
    process: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path
    seen: dict[int, int | None] = field(default_factory=dict)  # pid -> start time

    def tree(self) -> list[int]:
        """The live process tree; remembered so that stop() can reach strays."""
        pids = process_tree(self.process.pid)
        for pid in pids:
            self.seen.setdefault(pid, start_time(pid))
        return pids

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def log_tail(self, lines: int = 15) -> str:
        text = self.stderr.read_text(errors="replace") if self.stderr.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A port that was free a moment ago."""
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(
    label: str, command: Sequence[str], env: dict[str, str], port: int, logs: Path
) -> Server:
    """Start ``command`` in its own session (a Ctrl+C reaches only this script)."""
    logs.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower())
    stdout, stderr = logs / f"{slug}.out", logs / f"{slug}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    server = Server(label, process, port, stdout, stderr)
    server.tree()
    return server


def stop_server(server: Server) -> int | None:
    """SIGTERM the server, wait, SIGKILL it and any stray process of its tree; its exit
    code (None when it had to be killed)."""
    server.tree()
    code: int | None = None
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_same(p, s) for p, s in server.seen.items()):
        time.sleep(0.05)
    for pid, started in server.seen.items():
        if _same(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return code


def _same(pid: int, started: int | None) -> bool:
    """True while ``pid`` is still the process we saw (not a reused pid, not a zombie)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == started


# ----------------------------------------------------------------------------- HTTP


def http_call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request; the status and the body."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_ready(server: Server, path: str, timeout: float = READY_TIMEOUT_S) -> None:
    """Poll ``path`` until it answers 200; raise if the server exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.label} exited:\n{server.log_tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_call(server.port, "GET", path)[0] == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{server.label} not ready after {timeout:.0f} s:\n{server.log_tail()}")


DRIFT_MARGIN_S = 5.0  # after the drift thread's start delay: its imports take a second or two


def wait_drift_loaded(servers: Sequence[Server], served_at: float) -> None:
    """Until every worker of ``servers`` has imported the live drift's modules.

    Each worker's live drift thread imports pandas and scipy ``START_DELAY_S`` (10 s)
    after the worker starts serving, holding the GIL for a second or two
    (``monitoring.drift_live``): a run measured meanwhile measures the imports. Waits
    ``START_DELAY_S`` and a margin after ``served_at`` (when the servers last started
    serving), then for the drift gauges in each server's ``/metrics`` (they appear once
    the imports are done)."""
    from modelport.monitoring.drift_live import START_DELAY_S

    wait = served_at + START_DELAY_S + DRIFT_MARGIN_S - time.monotonic()
    print(f"- waiting {max(wait, 0):.0f} s for the live drift threads' imports", flush=True)
    time.sleep(max(wait, 0.0))
    for server in servers:
        deadline = time.monotonic() + 60
        while b"modelport_feature_drift" not in http_call(server.port, "GET", "/metrics")[1]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.label}: no drift gauges after 60 s")
            time.sleep(0.5)


# ----------------------------------------------------------------------------- wrk


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reports."""

    requests_per_s: float
    requests: int
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]

    @property
    def errors(self) -> str:
        """Non-2xx answers and socket errors, "0" when none."""
        parts = [f"non-2xx {self.non_2xx}"] if self.non_2xx else []
        parts += [f"{kind} {count}" for kind, count in self.socket_errors.items() if count]
        return ", ".join(parts) or "0"


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> WrkResult:
    """Requests/s, percentiles and errors from wrk's ``--latency`` output."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    percentiles = {
        int(m.group(1)): float(m.group(2)) * _UNITS_MS[m.group(3)]
        for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    }
    if rate is None or total is None or set(percentiles) != {50, 99}:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    kinds = ("connect", "read", "write", "timeout")
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        requests=int(total.group(1)),
        p50_ms=percentiles[50],
        p99_ms=percentiles[99],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors={k: int(v) for k, v in zip(kinds, sockets.groups(), strict=True)}
        if sockets
        else {},
    )


def run_wrk(url: str, body: Path, connections: int, duration: int) -> WrkResult:
    """One wrk run: one thread pinned to one core, ``connections`` keep-alive connections."""
    command = ["taskset", "-c", WRK_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
    command += ["--latency", "--timeout", "30s", "-s", str(LUA_SCRIPT), url]
    result = subprocess.run(
        command,
        env={**os.environ, "BODY_FILE": str(body)},
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr}{result.stdout}")
    return parse_wrk(result.stdout)


def median_ratio(base: Sequence[WrkResult], other: Sequence[WrkResult]) -> float:
    """The median over rounds of ``other``'s requests/s over ``base``'s, the runs paired
    by position (the same round): one disturbed run cannot decide, either way."""
    return statistics.median(
        b.requests_per_s / a.requests_per_s for a, b in zip(base, other, strict=True)
    )


# ----------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Bodies:
    """One model's request bodies (files) and the labels it gives for the 64 rows."""

    single: Path
    batch: Path
    expected: list[Any]


def split(frame: Any) -> dict[str, Any]:
    """The rows of ``frame`` in pandas' ``split`` orientation (no index)."""
    return {"columns": [str(c) for c in frame.columns], "data": frame.to_numpy().tolist()}


def split_body(frame: Any) -> bytes:
    """MLflow's ``dataframe_split`` request for the rows of ``frame``."""
    return json.dumps({"dataframe_split": split(frame)}).encode()


def write_bodies(model: Any, rows: Any, directory: Path, name: str) -> Bodies:
    """The 1-row and 64-row bodies of ``rows`` (a DataFrame of at least 64 rows)."""
    batch = rows.head(BATCH_ROWS)
    single, many = directory / f"{name}-1.json", directory / f"{name}-{BATCH_ROWS}.json"
    single.write_bytes(split_body(batch.head(1)))
    many.write_bytes(split_body(batch))
    return Bodies(single, many, model.predict(batch).tolist())


def train_forest() -> tuple[Any, Any, Any, float]:
    """The forest, its training rows, 256 test rows and its test accuracy."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    columns = [f"f{i}" for i in range(FOREST_FEATURES)]
    x = pd.DataFrame(rng.normal(size=(FOREST_ROWS + 256, FOREST_FEATURES)), columns=columns)
    noise = rng.normal(scale=0.5, size=len(x))
    y = (x["f0"] + x["f1"] * x["f2"] - np.sin(x["f3"]) + noise > 0).astype(int)
    x_train, y_train = x.iloc[:FOREST_ROWS], y.iloc[:FOREST_ROWS]
    x_test = x.iloc[FOREST_ROWS:].reset_index(drop=True)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(x_train, y_train)
    accuracy = float((model.predict(x_test) == y.iloc[FOREST_ROWS:].to_numpy()).mean())
    return model, x_train, x_test, accuracy


def register(model: Any, name: str, sample: Any, metrics: dict[str, float]) -> int:
    """Register (with acceleration) and promote to production; the version number."""
    import modelport
    from modelport.package.options import PackageOptions

    with modelport.connect() as registry:
        version = registry.register(
            model, name, PackageOptions(sample_input=sample, metrics=metrics)
        )
        registry.promote(name, version.version, "production")
    return version.version


def registered_forest(scratch: Path, versions: int = 1) -> Bodies:
    """The scenario modules' set-up in ``scratch``: MODELPORT_HOME there, modelport
    compiled, the forest trained and registered ``versions`` times (the same model, so
    every version costs the same), and its request bodies written."""
    os.environ["MODELPORT_HOME"] = str(scratch / "home")
    compile_modelport()
    print("- training and registering the forest", flush=True)
    forest, train, test, accuracy = train_forest()
    bodies = write_bodies(forest, test, scratch, "forest")
    for _ in range(versions):
        register(forest, "forest", train, {"accuracy": accuracy})
    return bodies


@contextlib.contextmanager
def background(command: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A helper process (saving the MLflow models); killed by pid if still running."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def mlflow_save_command(python: str, model_file: Path, example: Path, target: Path) -> list[str]:
    """Save a joblib-pickled scikit-learn model as an MLflow model at ``target``."""
    return [python, "-c", MLFLOW_SAVE, str(model_file), str(example), str(target)]


# ----------------------------------------------------------------------------- in-process


def inprocess_main(spec_path: Path) -> int:
    """The pinned subprocess: rows/s of each model's predict calls; JSON on stdout."""
    import joblib

    import modelport

    spec = json.loads(spec_path.read_text())
    seconds = float(spec["seconds"])
    results = []
    with modelport.connect() as registry:
        for entry in spec["models"]:
            model, frame = joblib.load(entry["pickle"])
            accelerated = registry.load(entry["ref"], accelerate=True)
            native = registry.load(entry["ref"], accelerate=False)
            calls: list[tuple[str, str, Callable[[Any], Any]]] = [
                ("scikit-learn", MODEL_PREDICT, model.predict),
                ("scikit-learn", LOADED_PREDICT, native.predict),
            ]
            if accelerated.runtime == "onnxruntime":  # the package has a verified graph
                calls.insert(1, ("onnxruntime", MATRIX_PREDICT, accelerated.predictor.predict))
                calls.append(("onnxruntime", LOADED_PREDICT, accelerated.predict))
            for runtime, call, function in calls:
                rates = []
                for rows in (1, BATCH_ROWS):
                    batch = frame.head(rows)
                    argument = batch.to_numpy() if call == MATRIX_PREDICT else batch
                    rates.append(_rate(lambda a=argument, f=function: f(a), rows, seconds))
                results.append(
                    {
                        "model": entry["name"],
                        "runtime": runtime,
                        "call": call,
                        "limit": call != LOADED_PREDICT,
                        "single": rates[0],
                        "batch": rates[1],
                    }
                )
    print(json.dumps(results))
    return 0


def drift_notes(before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]) -> list[str]:
    """One line per reference limit: its 64-row rate before and after the load tests.

    The targets use the first measurement, taken just before the forest's load tests;
    on a shared machine the second one shows how far the ground moved meanwhile."""
    later = {(r["model"], r["runtime"], r["call"]): r for r in after}
    notes = []
    for first in before:
        second = later.get((first["model"], first["runtime"], first["call"]))
        if first["limit"] and second is not None:
            notes.append(
                f"in-process 64-row limit, {first['model']} {first['runtime']}: "
                f"{first['batch']:,.0f} rows/s before the load tests, "
                f"{second['batch']:,.0f} after ({second['batch'] / first['batch']:.2f}x)"
            )
    return notes


def _rate(call: Callable[[], Any], rows: int, seconds: float) -> float:
    """Rows per second of ``call`` repeated for ``seconds`` (after one warm-up call)."""
    call()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call()
        calls += 1
    return calls * rows / (time.perf_counter() - start)


def measure_inprocess(
    config: Config, directory: Path, models: dict[str, tuple[Any, Any]]
) -> list[dict[str, Any]]:
    """Run ``inprocess_main`` pinned to one core with one BLAS thread."""
    import joblib

    entries = []
    for name, (model, frame) in models.items():
        pickle = directory / f"{name}-inprocess.joblib"
        joblib.dump((model, frame.head(BATCH_ROWS)), pickle)
        entries.append({"name": name, "ref": f"{name}@production", "pickle": str(pickle)})
    spec = directory / "inprocess.json"
    spec.write_text(json.dumps({"seconds": config.inprocess_seconds, "models": entries}))
    command = ["taskset", "-c", INPROCESS_CORE, sys.executable, __file__, "--inprocess", str(spec)]
    result = subprocess.run(
        command,
        env={**os.environ, **ONE_THREAD},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"in-process measurement failed:\n{result.stderr[-3000:]}")
    measured: list[dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


# ----------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class LoadRow:
    """One wrk run against one server."""

    model: str
    server: str
    runtime: str
    scenario: str
    rows_per_request: int
    concurrency: int
    result: WrkResult
    cpu: str


@dataclass
class ServerResult:
    """Everything measured on one server."""

    model: str
    server: str
    runtime: str
    agreement: str
    memory: Memory
    rows: list[LoadRow]
    notes: list[str]


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server."""

    model: str
    label: str
    command: list[str]
    env: dict[str, str]
    port: int
    ready_path: str
    bodies: Bodies
    modelport: bool
    runtime: str = "scikit-learn (pyfunc)"  # what a server that is not modelport runs


def cpu_split(before: dict[int, float], pids: Sequence[int], wall: float) -> str:
    """Cores used by each worker during a run, then by the other processes."""
    used = {pid: (cpu_seconds(pid) - before.get(pid, 0.0)) / wall for pid in pids}
    workers = [f"{used[pid]:.2f}" for pid in pids if is_worker(pid)]
    others = sum(used[pid] for pid in pids if not is_worker(pid))
    return f"{' + '.join(workers) or '-'} (+{others:.2f})"


def load_runs(server: Server, spec: ServerSpec, runtime: str, config: Config) -> list[LoadRow]:
    """The four wrk runs of one server."""
    url = server.url("/invocations")
    runs = [(spec.bodies.single, 1, c) for c in SINGLE_CONCURRENCY]
    runs.append((spec.bodies.batch, BATCH_ROWS, BATCH_CONCURRENCY))
    rows = []
    for body, rows_per_request, concurrency in runs:
        pids = server.tree()
        before = {pid: cpu_seconds(pid) for pid in pids}
        start = time.monotonic()
        result = run_wrk(url, body, concurrency, config.duration)
        wall = time.monotonic() - start
        scenario = f"{rows_per_request} row{'s' if rows_per_request > 1 else ''}, c={concurrency}"
        cpu = cpu_split(before, pids, wall)
        rows.append(
            LoadRow(
                spec.model,
                spec.label,
                runtime,
                scenario,
                rows_per_request,
                concurrency,
                result,
                cpu,
            )
        )
        print(
            f"  {spec.label:<28} {scenario:<14} {result.requests_per_s:9.1f} req/s  "
            f"p50 {result.p50_ms:8.2f} ms  p99 {result.p99_ms:8.2f} ms  "
            f"errors {result.errors}  cpu {cpu}",
            flush=True,
        )
    return rows


def agreement(server: Server, bodies: Bodies) -> str:
    """How many of the 64 rows' labels match the model's own ``predict``."""
    status, payload = http_call(server.port, "POST", "/invocations", bodies.batch.read_bytes())
    if status != 200:
        return f"HTTP {status}: {payload[:200]!r}"
    predictions = json.loads(payload)["predictions"]
    same = sum(1 for a, b in zip(predictions, bodies.expected, strict=False) if a == b)
    return f"{same}/{len(bodies.expected)}"


def served_runtime(server: Server, spec: ServerSpec) -> str:
    """The runtime the modelport workers say they serve (their log lines)."""
    if not spec.modelport:
        return spec.runtime
    found = {m.group(2) for m in SERVED_LINE.finditer(server.stderr.read_text(errors="replace"))}
    return ", ".join(sorted(found)) or "unknown"


def measure_server(spec: ServerSpec, config: Config, logs: Path) -> ServerResult:
    """Start, check, warm up, measure idle memory and load, stop."""
    print(f"- {spec.model}: {spec.label}", flush=True)
    server = start_server(f"{spec.model} {spec.label}", spec.command, spec.env, spec.port, logs)
    notes = []
    try:
        wait_ready(server, spec.ready_path)
        same = agreement(server, spec.bodies)
        run_wrk(server.url("/invocations"), spec.bodies.single, 64, config.warmup)
        time.sleep(1.0)
        memory = tree_memory(server.tree())
        runtime = served_runtime(server, spec)
        if spec.modelport and "modelport serving" not in server.stdout.read_text():
            notes.append(
                f"{spec.model} {spec.label}: ready (GET /v2/health/ready 200, serving) but the "
                "supervisor never printed its 'modelport serving ...' line"
            )
        rows = load_runs(server, spec, runtime, config)
    finally:
        code = stop_server(server)
    if code != 0:
        notes.append(f"{spec.model} {spec.label}: exit code {code} after SIGTERM")
    return ServerResult(spec.model, spec.label, runtime, same, memory, rows, notes)


# ----------------------------------------------------------------------------- cold start


def cold_start(
    label: str, command: Sequence[str], env: dict[str, str], port: int, body: bytes, logs: Path
) -> float:
    """Seconds from starting ``command`` to the first 200 answer to ``body``."""
    start = time.perf_counter()
    server = start_server(label, command, env, port, logs)
    try:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"{label} exited:\n{server.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_call(port, "POST", "/invocations", body)[0] == 200:
                    return time.perf_counter() - start
            if time.perf_counter() - start > READY_TIMEOUT_S:
                raise RuntimeError(f"{label}: no answer after {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.005)
    finally:
        stop_server(server)


def cold_starts(
    label: str,
    runs: int,
    make: Callable[[int], list[str]],
    env: dict[str, str],
    body: bytes,
    logs: Path,
) -> list[float]:
    """``runs`` cold starts, each on a fresh port."""
    times = []
    for _ in range(runs):
        port = free_port()
        times.append(cold_start(label, make(port), env, port, body, logs))
    print(f"- cold start {label}: " + ", ".join(f"{t:.3f}" for t in times) + " s", flush=True)
    return times


# ----------------------------------------------------------------------------- report


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_load_table(results: Sequence[ServerResult]) -> None:
    print(
        "| model | server | runtime | scenario | req/s | rows/s | p50 ms | p99 ms | errors "
        "| CPU cores: workers (+others) |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---|---|")
    for server in results:
        for row in server.rows:
            r = row.result
            print(
                f"| {row.model} | {row.server} | {row.runtime} | {row.scenario} "
                f"| {_fmt(r.requests_per_s)} | {_fmt(r.requests_per_s * row.rows_per_request, 0)} "
                f"| {_fmt(r.p50_ms, 2)} | {_fmt(r.p99_ms, 2)} | {r.errors} | {row.cpu} |"
            )


def print_memory(results: Sequence[ServerResult], workers: int) -> None:
    print(
        f"\nIdle memory after warm-up ({workers} workers; sums over the process tree, MiB; "
        "PSS from /proc/PID/smaps_rollup counts shared pages once, RSS counts them in "
        "every process)"
    )
    print(
        "| model | server | processes | RSS sum | PSS sum | PSS of workers | 64-row answers agree |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    for s in results:
        m = s.memory
        print(
            f"| {s.model} | {s.server} | {m.processes} | {_fmt(m.rss, 0)} | {_fmt(m.pss, 0)} "
            f"| {_fmt(m.workers_pss, 0)} | {s.agreement} |"
        )


def print_cold(cold: dict[str, list[float]]) -> None:
    print("\nCold start (command to first 200 answer to a 1-row prediction, 1 worker, seconds)")
    print("| what | runs | best | median | all |")
    print("|---|---:|---:|---:|---|")
    for label, times in cold.items():
        every = ", ".join(f"{t:.3f}" for t in times)
        print(
            f"| {label} | {len(times)} | {min(times):.3f} | {statistics.median(times):.3f} "
            f"| {every} |"
        )


def print_inprocess(inprocess: Sequence[dict[str, Any]]) -> None:
    print(
        f"\nIn-process predict, one core (taskset -c {INPROCESS_CORE}, 1 BLAS/OpenMP thread), "
        "rows/s; 'limit' rows are the targets' reference"
    )
    print("| model | runtime | call | 1-row calls | 64-row calls | limit |")
    print("|---|---|---|---:|---:|---|")
    for r in inprocess:
        print(
            f"| {r['model']} | {r['runtime']} | {r['call']} | {_fmt(r['single'], 0)} "
            f"| {_fmt(r['batch'], 0)} | {'yes' if r['limit'] else ''} |"
        )


def _row(results: Sequence[ServerResult], model: str, server: str, scenario: str) -> LoadRow | None:
    for result in results:
        if result.model == model and result.server == server:
            for row in result.rows:
                if row.scenario == scenario:
                    return row
    return None


def _memory(results: Sequence[ServerResult], model: str, server: str) -> Memory | None:
    for result in results:
        if result.model == model and result.server == server:
            return result.memory
    return None


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def targets(
    results: Sequence[ServerResult],
    inprocess: Sequence[dict[str, Any]],
    cold: dict[str, list[float]],
) -> list[tuple[str, str, str, str]]:
    """(target, measured, goal, verdict) for each of the issue's targets."""
    rows = []
    c64 = "1 row, c=64"
    mlflow = _row(results, "forest", MLFLOW_LABEL, c64)
    for label, goal in ((NATIVE_LABEL, 8.0), (ACCELERATED_LABEL, 25.0)):
        ours = _row(results, "forest", label, c64)
        if ours is None or mlflow is None:
            rows.append(
                (f"forest {label} vs mlflow, c=64", "mlflow not measured", f">= {goal:g}x", "n/a")
            )
            continue
        ratio = ours.result.requests_per_s / mlflow.result.requests_per_s
        p99 = f"p99 {ours.result.p99_ms:.1f} vs {mlflow.result.p99_ms:.1f} ms"
        need_p99 = label == NATIVE_LABEL
        ok = ratio >= goal and (ours.result.p99_ms < mlflow.result.p99_ms or not need_p99)
        goal_text = f">= {goal:g}x" + (", lower p99" if need_p99 else "")
        rows.append(
            (
                f"forest {label} vs mlflow req/s, c=64",
                f"{ratio:.1f}x, {p99}",
                goal_text,
                _verdict(ok),
            )
        )
    for result in results:
        if result.server in (MLFLOW_LABEL, CEILING_LABEL):
            continue
        batch = _row(
            results, result.model, result.server, f"{BATCH_ROWS} rows, c={BATCH_CONCURRENCY}"
        )
        runtime = "onnxruntime" if "onnxruntime" in result.runtime else "scikit-learn"
        limit = next(
            (
                r
                for r in inprocess
                if r["model"] == result.model and r["runtime"] == runtime and r["limit"]
            ),
            None,
        )
        if batch is None or limit is None:
            continue
        served = batch.result.requests_per_s * BATCH_ROWS
        # The targets are set on the forest. The quickstart model's ONNX graph
        # answers 64 rows in under a microsecond a row: parsing 64x30 JSON numbers costs
        # more, so its row is shown for information only.
        is_target = result.model == "forest" and result.server in (ACCELERATED_LABEL, NATIVE_LABEL)
        rows.append(
            (
                f"{result.model} {result.server}: 64-row requests vs in-process 1 core ({runtime})",
                f"{served:,.0f} vs {limit['batch']:,.0f} rows/s ({served / limit['batch']:.2f}x; "
                f"{served / limit['single']:.1f}x the 1-row calls)",
                ">= 1x the 64-row calls" if is_target else "(not a target)",
                _verdict(served >= limit["batch"]) if is_target else "info",
            )
        )
    rows.extend(ceiling_targets(results))
    rows.extend(baseline_comparison(results))
    quick = cold.get(COLD_MODELPORT)
    if quick:
        median = statistics.median(quick)
        rows.append(
            (
                "cold start, quickstart, modelport",
                f"median {median:.3f} s, best {min(quick):.3f} s",
                "< 1 s (median)",
                _verdict(median < 1.0),
            )
        )
    before = cold.get(COLD_BASELINE)
    if quick and before:
        rows.append(
            (
                "cold start, quickstart, modelport vs baseline",
                f"median {statistics.median(quick):.3f} vs {statistics.median(before):.3f} s",
                "unchanged or faster",
                "info",
            )
        )
    theirs = _memory(results, "forest", MLFLOW_LABEL)
    for label in (ACCELERATED_LABEL, NATIVE_LABEL):
        ours_memory = _memory(results, "forest", label)
        if ours_memory is None:
            continue
        if theirs is None or ours_memory.pss is None or theirs.pss is None:
            rows.append((f"idle memory, forest {label}", "mlflow not measured", "< mlflow", "n/a"))
            continue
        rows.append(
            (
                f"idle memory, forest {label} vs mlflow",
                f"PSS {ours_memory.pss:,.0f} vs {theirs.pss:,.0f} MiB "
                f"(RSS {ours_memory.rss:,.0f} vs {theirs.rss:,.0f})",
                "< mlflow",
                _verdict(ours_memory.pss < theirs.pss and ours_memory.rss < theirs.rss),
            )
        )
    return rows


CEILING_SHARE = 0.60


def ceiling_targets(results: Sequence[ServerResult]) -> list[tuple[str, str, str, str]]:
    """modelport's (and the baseline's) requests/s as a share of the bare ASGI app's."""
    rows = []
    for scenario, is_target in (("1 row, c=64", True), (f"{BATCH_ROWS} rows, c=8", False)):
        ceiling = _row(results, "forest", CEILING_LABEL, scenario)
        if ceiling is None:
            continue
        for label in (ACCELERATED_LABEL, BASELINE_LABEL):
            ours = _row(results, "forest", label, scenario)
            if ours is None:
                continue
            share = ours.result.requests_per_s / ceiling.result.requests_per_s
            target = is_target and label == ACCELERATED_LABEL
            rows.append(
                (
                    f"forest {label} vs bare ASGI ceiling, {scenario}",
                    f"{share:.0%} ({ours.result.requests_per_s:,.0f} vs "
                    f"{ceiling.result.requests_per_s:,.0f} req/s)",
                    f">= {CEILING_SHARE:.0%}" if target else "(not a target)",
                    _verdict(share >= CEILING_SHARE) if target else "info",
                )
            )
    return rows


def baseline_comparison(results: Sequence[ServerResult]) -> list[tuple[str, str, str, str]]:
    """This build against the baseline build, scenario by scenario (same run)."""
    rows = []
    for ours_label, theirs_label in (
        (ACCELERATED_LABEL, BASELINE_LABEL),
        (NATIVE_LABEL, BASELINE_NATIVE_LABEL),
    ):
        for result in results:
            if result.model != "forest" or result.server != theirs_label:
                continue
            for before in result.rows:
                after = _row(results, "forest", ours_label, before.scenario)
                if after is None:
                    continue
                rows.append(
                    (
                        f"forest {ours_label} vs baseline, {before.scenario}",
                        f"{after.result.requests_per_s / before.result.requests_per_s:.2f}x "
                        f"({after.result.requests_per_s:,.0f} vs "
                        f"{before.result.requests_per_s:,.0f} req/s; p99 "
                        f"{after.result.p99_ms:.1f} vs {before.result.p99_ms:.1f} ms)",
                        "unchanged or faster",
                        "info",
                    )
                )
    return rows


def print_report(report: Report, config: Config) -> None:
    print("\n## Serving benchmark\n")
    print(
        f"{config.workers} workers per server, {config.duration} s per wrk run (1 thread, "
        f"taskset -c {WRK_CORE}), single rows at c=1/8/64, {BATCH_ROWS}-row requests at "
        f"c={BATCH_CONCURRENCY}; POST /invocations with a dataframe_split body.\n"
    )
    print_load_table(report.results)
    print_memory(report.results, config.workers)
    print_cold(report.cold)
    print_inprocess(report.inprocess)
    print("\nTargets (one run, same machine)")
    print("| target | measured | goal | result |")
    print("|---|---|---|---|")
    for target, measured, goal, verdict in targets(report.results, report.inprocess, report.cold):
        print(f"| {target} | {measured} | {goal} | {verdict} |")
    notes = report.notes + [note for result in report.results for note in result.notes]
    if notes:
        print("\nNotes")
        for note in notes:
            print(f"- {note}")
    loads = ", ".join(
        f"{when}: {' '.join(f'{v:.2f}' for v in value)}" for when, value in report.loads
    )
    print(f"\nLoad average (1/5/15 min) {loads}; {os.cpu_count()} CPUs")
    print(f"Total run time {report.elapsed:.0f} s")


# ----------------------------------------------------------------------------- the run

NATIVE_LABEL = "modelport --no-accelerate"
ACCELERATED_LABEL = "modelport"
CEILING_LABEL = "bare ASGI (ceiling)"
BASELINE_LABEL = "modelport (baseline)"
BASELINE_NATIVE_LABEL = "modelport (baseline) --no-accelerate"
MLFLOW_LABEL = "mlflow models serve"
COLD_MODELPORT = "modelport serve quickstart@production"
COLD_BASELINE = "modelport (baseline) serve quickstart@production"
COLD_MLFLOW = "mlflow models serve (quickstart model)"


@dataclass
class Report:
    """Everything the run measured."""

    results: list[ServerResult] = field(default_factory=list)
    inprocess: list[dict[str, Any]] = field(default_factory=list)
    cold: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    loads: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)
    elapsed: float = 0.0


def modelport_command(
    ref: str, port: int, workers: int, *extra: str, python: str = sys.executable
) -> list[str]:
    """``modelport serve`` from ``python``'s environment (this interpreter's by default)."""
    cli = Path(python).parent / "modelport"
    base = [str(cli)] if cli.exists() else [python, "-m", "modelport.cli.main"]
    return [
        *base,
        "serve",
        ref,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        *extra,
    ]


def mlflow_command(python: str, model: Path, port: int, workers: int) -> list[str]:
    """``mlflow models serve`` of a saved model, in the current environment."""
    cli = Path(python).parent / "mlflow"
    base = [str(cli)] if cli.exists() else [python, "-m", "mlflow"]
    return [
        *base,
        "models",
        "serve",
        "-m",
        str(model),
        "--env-manager",
        "local",
        "-w",
        str(workers),
        "-p",
        str(port),
        "-h",
        HOST,
    ]


def mlflow_env(python: str) -> dict[str, str]:
    """MLflow runs ``uvicorn`` from PATH: put its environment's bin first."""
    path = f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path}


def ceiling_spec(config: Config, bodies: Bodies) -> ServerSpec:
    """The bare ASGI app (``ceiling.py``) on the forest's own ONNX graph."""
    import modelport
    from modelport.package.manifest import ACCELERATED_FILE

    with modelport.connect() as registry:
        version = registry.resolve("forest@production")
        graph = registry.artifacts.local_path(version.artifact_key) / ACCELERATED_FILE
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "ceiling:app", "--app-dir", str(HERE)]
    command += ["--workers", str(config.workers), "--loop", "uvloop", "--http", "httptools"]
    command += ["--no-access-log", "--host", HOST, "--port", str(port)]
    env = {**os.environ, "MODELPORT_CEILING_GRAPH": str(graph)}
    return ServerSpec(
        "forest", CEILING_LABEL, command, env, port, "/", bodies, False, "onnxruntime (bare)"
    )


def baseline_specs(config: Config, bodies: Bodies, scratch: Path) -> list[ServerSpec]:
    """modelport from ``--baseline-python``'s environment and registry, on the forest."""
    python = config.baseline_python
    if python is None:
        return []
    w, env, ready = config.workers, baseline_env(scratch), "/v2/health/ready"
    specs = []
    for label, extra in ((BASELINE_LABEL, ()), (BASELINE_NATIVE_LABEL, ("--no-accelerate",))):
        port = free_port()
        command = modelport_command("forest@production", port, w, *extra, python=python)
        specs.append(ServerSpec("forest", label, command, env, port, ready, bodies, True))
    return specs


def baseline_env(scratch: Path) -> dict[str, str]:
    """The environment of the baseline build's servers: its own registry."""
    return {**os.environ, "MODELPORT_HOME": str(baseline_home(scratch))}


def server_specs(
    config: Config, bodies: dict[str, Bodies], mlflow_models: dict[str, Path], scratch: Path
) -> list[ServerSpec]:
    """Every server to measure, in order: those compared with each other side by side."""
    w = config.workers
    env = dict(os.environ)
    ready = "/v2/health/ready"
    baselines = baseline_specs(config, bodies["forest"], scratch)  # accelerated, then native
    specs = [
        ceiling_spec(config, bodies["forest"]),
        ServerSpec(
            "forest",
            ACCELERATED_LABEL,
            modelport_command("forest@production", p := free_port(), w),
            env,
            p,
            ready,
            bodies["forest"],
            True,
        ),
        *baselines[:1],
        ServerSpec(
            "forest",
            NATIVE_LABEL,
            modelport_command("forest@production", p := free_port(), w, "--no-accelerate"),
            env,
            p,
            ready,
            bodies["forest"],
            True,
        ),
        *baselines[1:],
        ServerSpec(
            "quickstart",
            ACCELERATED_LABEL,
            modelport_command("quickstart@production", p := free_port(), w),
            env,
            p,
            ready,
            bodies["quickstart"],
            True,
        ),
    ]
    python = config.mlflow_python
    if python is not None:
        for name, path in mlflow_models.items():
            if name == "quickstart" and not config.mlflow_quickstart_load:
                continue
            port = free_port()
            specs.append(
                ServerSpec(
                    name,
                    MLFLOW_LABEL,
                    mlflow_command(python, path, port, w),
                    mlflow_env(python),
                    port,
                    "/ping",
                    bodies[name],
                    False,
                )
            )
    return specs


def prepare(
    config: Config, scratch: Path
) -> tuple[dict[str, Bodies], dict[str, Path], dict[str, tuple[Any, Any]]]:
    """Train, register, save the MLflow models, write the request bodies."""
    import joblib

    from modelport.cli.quickstart import train_demo_model

    print(
        "- training and registering the models (the forest's ONNX conversion takes a while)",
        flush=True,
    )
    forest, forest_train, forest_test, accuracy = train_forest()
    quick, quick_train, quick_test, quick_metrics, _ = train_demo_model()
    tables = {
        "forest": (forest, forest_train, forest_test),
        "quickstart": (quick, quick_train, quick_test),
    }
    bodies = {name: write_bodies(m, test, scratch, name) for name, (m, _, test) in tables.items()}
    mlflow_models: dict[str, Path] = {}
    with contextlib.ExitStack() as stack:
        savers = []
        if config.mlflow_python is not None:  # MLflow saves meanwhile, in its own venv
            for name, (model, train, _) in tables.items():
                model_file, example = scratch / f"{name}.joblib", scratch / f"{name}-example.json"
                joblib.dump(model, model_file)
                example.write_text(json.dumps(split(train.head(5))))
                target = scratch / f"mlflow-{name}"
                command = mlflow_save_command(config.mlflow_python, model_file, example, target)
                log = scratch / f"mlflow-save-{name}.log"
                savers.append((name, target, log, stack.enter_context(background(command, log))))
        register(forest, "forest", forest_train, {"accuracy": accuracy})
        register(quick, "quickstart", quick_train, quick_metrics)
        prepare_baseline(
            config,
            scratch,
            {
                "forest": (forest, forest_train, {"accuracy": accuracy}),
                "quickstart": (quick, quick_train, quick_metrics),
            },
        )
        for name, target, log, process in savers:
            if process.wait(timeout=600) != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
                raise RuntimeError(f"saving the MLflow {name} model failed:\n{tail}")
            mlflow_models[name] = target
    frames = {name: (m, test) for name, (m, _, test) in tables.items()}
    return bodies, mlflow_models, frames


def register_baseline_main(spec_path: Path) -> int:
    """Run by ``--baseline-python``: register the models pickled in ``spec_path``'s list
    into this build's own registry (``MODELPORT_HOME``). Each build serves what it
    registered itself: a newer build's registry may have a schema an older one refuses."""
    import joblib

    for entry in json.loads(spec_path.read_text()):
        model, sample = joblib.load(entry["pickle"])
        register(model, entry["name"], sample, entry["metrics"])
    return 0


def prepare_baseline(config: Config, scratch: Path, tables: dict[str, Any]) -> None:
    """The baseline build's registry, at ``baseline_home(scratch)``, with the same models."""
    import joblib

    python = config.baseline_python
    if python is None:
        return
    print("- registering the same models with the baseline build", flush=True)
    entries = []
    for name, (model, train, metrics) in tables.items():
        pickle = scratch / f"{name}-baseline.joblib"
        joblib.dump((model, train), pickle)
        entries.append({"name": name, "pickle": str(pickle), "metrics": metrics})
    spec = scratch / "baseline-models.json"
    spec.write_text(json.dumps(entries))
    env = {**os.environ, "MODELPORT_HOME": str(baseline_home(scratch))}
    command = [python, __file__, "--register-baseline", str(spec)]
    subprocess.run(command, env=env, check=True, timeout=900)


def baseline_home(scratch: Path) -> Path:
    """Where the baseline build keeps its registry."""
    return scratch / "baseline-home"


def compile_modelport() -> None:
    """Write modelport's bytecode, as ``pip install`` of the wheel does: an editable
    install under PYTHONDONTWRITEBYTECODE=1 (set on some machines here) would otherwise
    recompile every module at each start and count that into the cold start."""
    import compileall

    import modelport

    compileall.compile_dir(Path(modelport.__file__).parent, quiet=1)


def run(config: Config, scratch: Path, report: Report) -> None:
    """Everything, in order; servers are stopped as each measurement ends."""
    compile_modelport()
    bodies, mlflow_models, frames = prepare(config, scratch)
    print("- in-process limits (pinned subprocess)", flush=True)
    report.inprocess = measure_inprocess(config, scratch, frames)
    report.loads.append(("after in-process", os.getloadavg()))
    logs = scratch / "logs"
    for spec in server_specs(config, bodies, mlflow_models, scratch):
        report.results.append(measure_server(spec, config, logs))
    report.loads.append(("after load tests", os.getloadavg()))
    print("- in-process limits again (how much the machine drifted)", flush=True)
    report.notes.extend(drift_notes(report.inprocess, measure_inprocess(config, scratch, frames)))
    body = bodies["quickstart"].single.read_bytes()
    makers: dict[str, Callable[[int], list[str]]] = {
        COLD_MODELPORT: lambda port: modelport_command("quickstart@production", port, 1)
    }
    baseline = config.baseline_python
    if baseline is not None:
        makers[COLD_BASELINE] = lambda port: modelport_command(
            "quickstart@production", port, 1, python=baseline
        )
    envs = {COLD_MODELPORT: dict(os.environ), COLD_BASELINE: baseline_env(scratch)}
    for _ in range(config.cold_runs):  # alternately, so that drift hits both alike
        for label, make in makers.items():
            times = cold_starts(label, 1, make, envs[label], body, logs)
            report.cold.setdefault(label, []).extend(times)
    python = config.mlflow_python
    if python is not None and "quickstart" in mlflow_models:
        report.cold[COLD_MLFLOW] = cold_starts(
            COLD_MLFLOW,
            config.mlflow_cold_runs,
            lambda port: mlflow_command(python, mlflow_models["quickstart"], port, 1),
            mlflow_env(python),
            body,
            logs,
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.inprocess:
        return inprocess_main(Path(args.inprocess))
    if args.register_baseline:
        return register_baseline_main(Path(args.register_baseline))
    if args.deployments:
        from serve_deployments import main as deployments_main

        return deployments_main(args.duration, args.workers)
    if args.tls:
        from serve_tls import main as tls_main

        return tls_main(args.duration, args.workers)
    if args.auth:
        from serve_auth import main as auth_main

        return auth_main(args.duration, args.workers)
    if args.ray_serve:
        from serve_ray import main as ray_serve_main

        return ray_serve_main(args.duration, args.workers)
    check_tools()
    config, note = make_config(args)
    report = Report(notes=[note] if note else [])
    started = time.monotonic()
    report.loads.append(("start", os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="modelport-bench-serve-") as scratch:
        os.environ["MODELPORT_HOME"] = str(Path(scratch) / "home")  # a fresh registry
        run(config, Path(scratch), report)
    report.loads.append(("end", os.getloadavg()))
    report.elapsed = time.monotonic() - started
    print_report(report, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
