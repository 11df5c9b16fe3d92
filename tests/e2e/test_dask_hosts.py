"""Batch scoring on a Dask cluster spread over hosts: a scheduler and two workers, each
worker in a network namespace of its own (a host of its own as far as the network goes),
the package read by every worker from one shared artifact store (a directory: the
namespaces share this machine's filesystem, as hosts share a network file system or an
object store). The parts the cluster writes equal a single-process run's, row by row.

The network: a bridge on the host holds the scheduler's address, 10.213.0.1/25; each
namespace is joined to it by a veth pair, with 10.213.0.11 and 10.213.0.12. Before any
of it is made, a blackhole route for all of 10.213.0.0/24 goes into the host's table, so
no packet for the test subnet can leave the machine whatever goes wrong; the bridge's
connected route (a /25) is more specific, so the host still reaches the namespaces. All
of it, and every process the test starts, is removed at the end, the route last.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("sklearn")
distributed = pytest.importorskip("distributed")

import modelport  # noqa: E402
from modelport.batch.dask_engine import run_on_dask  # noqa: E402
from modelport.batch.files import find_inputs  # noqa: E402
from modelport.batch.parts import PartResult  # noqa: E402
from modelport.batch.scoring import ScoringOptions  # noqa: E402
from modelport.batch.units import BatchPlan, plan_units, score_unit  # noqa: E402
from modelport.bootstrap import package_source  # noqa: E402
from modelport.config import Settings  # noqa: E402
from testing_dask import customers, read_parts, register_churn, write_parquet  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.netns, pytest.mark.timeout(300)]

SUBNET = "10.213.0.0/24"
SCHEDULER_IP = "10.213.0.1"
WORKER_IPS = ("10.213.0.11", "10.213.0.12")
HALF = "25"  # the bridge's prefix: more specific than the blackhole's /24
TAG = f"{os.getpid() % 100_000}"  # interface and namespace names of this run (<= 15 chars)


def ip(*args: str) -> None:
    """Run ``ip args``; a failure says which command and why."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def ip_output(*args: str) -> list[str]:
    """The lines ``ip args`` prints."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    return done.stdout.splitlines()


def require_namespaces() -> None:
    """Skip unless this machine lets the test make namespaces and own the subnet."""
    if os.geteuid() != 0:
        pytest.skip("making network namespaces needs root")
    if shutil.which("ip") is None:
        pytest.skip("the ip command (iproute2) is not installed")
    probe = f"mpprobe{TAG}"
    made = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, text=True, check=False
    )
    if made.returncode:
        pytest.skip(f"this machine does not allow ip netns add: {made.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    taken = [line for line in ip_output("route", "show", "match", SUBNET) if "10.213." in line]
    if taken:
        pytest.skip(f"the test subnet {SUBNET} is in use on this machine: {taken[0]}")


@contextmanager
def two_hosts() -> Iterator[list[str]]:
    """Two namespaces bridged to the host (see the module's docstring); yields their names.
    Everything made is undone on leaving, in reverse order."""
    undo: list[tuple[str, ...]] = []
    try:
        ip("route", "add", "blackhole", SUBNET)  # first: nothing for the subnet leaves
        undo.append(("route", "del", "blackhole", SUBNET))
        bridge = f"mpbr{TAG}"
        ip("link", "add", bridge, "type", "bridge")
        undo.append(("link", "del", bridge))
        ip("addr", "add", f"{SCHEDULER_IP}/{HALF}", "dev", bridge)
        ip("link", "set", bridge, "up")
        namespaces = []
        for number, address in enumerate(WORKER_IPS):
            namespace, outside = f"mpns{TAG}{number}", f"mpv{TAG}{number}"
            ip("netns", "add", namespace)
            undo.append(("netns", "del", namespace))
            ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            undo.append(("link", "del", outside))  # gone already if its namespace went first
            ip("link", "set", outside, "master", bridge, "up")
            ip("-n", namespace, "addr", "add", f"{address}/{HALF}", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")
            ip("-n", namespace, "link", "set", "lo", "up")
            namespaces.append(namespace)
        yield namespaces
    finally:
        for command in reversed(undo):
            subprocess.run(["ip", *command], capture_output=True, check=False)


@contextmanager
def started(commands: list[list[str]], logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The commands as processes (output to ``logs``), stopped by their own PIDs after."""
    source_dir = Path(modelport.__file__).resolve().parents[1]
    path = os.pathsep.join(filter(None, [str(source_dir), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for number, command in enumerate(commands):
            with (logs / f"process-{number}.log").open("wb") as log:  # the child keeps its copy
                processes.append(subprocess.Popen(command, stdout=log, stderr=log, env=env))
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


def scheduler_address(scheduler_file: Path, processes: list[subprocess.Popen[bytes]]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if scheduler_file.exists() and scheduler_file.stat().st_size:
            address: str = json.loads(scheduler_file.read_text())["address"]
            return address
        assert processes[0].poll() is None, "the scheduler exited"
        time.sleep(0.2)
    raise AssertionError("the scheduler wrote no address in 60 s")


def test_two_workers_in_their_own_namespaces_score_as_one_process(tmp_path: Path) -> None:
    require_namespaces()
    started_at = time.monotonic()
    settings = Settings(home=tmp_path / "home")  # its artifact store is the shared one
    ref = register_churn(settings)
    (tmp_path / "in").mkdir()
    write_parquet(customers(6_000), tmp_path / "in" / "a.parquet", row_group_rows=500)
    customers(1_500, seed=5, start=9_000).to_csv(tmp_path / "in" / "b.csv", index=False)
    units = plan_units(find_inputs(str(tmp_path / "in")), 1_000)
    source = package_source(ref, settings, accelerate=False)
    options = ScoringOptions(outputs=("prediction", "probabilities"))

    def plan(staging: str) -> BatchPlan:
        return BatchPlan(source, options, str(tmp_path / staging), "parquet", 1_000)

    scheduler_file = tmp_path / "scheduler.json"
    python = [sys.executable, "-m", "dask"]
    told: list[PartResult] = []
    with two_hosts() as namespaces:
        # the rest of the subnet is a blackhole; the namespaces are reached through the bridge
        assert not ip_output("route", "get", "10.213.0.200")  # "Invalid argument"
        assert f"dev mpbr{TAG}" in ip_output("route", "get", WORKER_IPS[0])[0]
        # Every process listens on its test address only (HTTP routes too: without an
        # address they take all interfaces, and the scheduler's port 8787).
        scheduler = [*python, "scheduler", "--host", SCHEDULER_IP, "--port", "0"]
        scheduler += ["--no-dashboard", "--dashboard-address", f"{SCHEDULER_IP}:0"]
        commands = [[*scheduler, "--scheduler-file", str(scheduler_file)]]
        for number, (namespace, address) in enumerate(zip(namespaces, WORKER_IPS, strict=True)):
            worker = [*python, "worker", "--scheduler-file", str(scheduler_file)]
            worker += ["--host", address, "--dashboard-address", f"{address}:0", "--no-dashboard"]
            worker += ["--nthreads", "1", "--no-nanny", "--name", f"w{number}"]
            commands.append(["ip", "netns", "exec", namespace, *worker])
        with started(commands, tmp_path) as processes:
            address = scheduler_address(scheduler_file, processes)
            with distributed.Client(address, timeout=60) as client:
                client.wait_for_workers(2, timeout=90)
                workers = sorted(client.scheduler_info()["workers"])
                assert [w.rsplit(":", 1)[0] for w in workers] == [f"tcp://{a}" for a in WORKER_IPS]

                written = run_on_dask(plan("cluster"), units, told.append, scheduler=address)

                def loads() -> int:  # on each worker
                    from modelport.batch import source as loaded

                    return len(loaded._LOADED)

                loads_by_worker: dict[str, Any] = client.run(loads)
    elapsed = time.monotonic() - started_at

    expected = [part for unit in units for part in score_unit(plan("one"), unit)]
    assert sorted(written, key=lambda p: p.name) == sorted(expected, key=lambda p: p.name)
    assert sorted(told, key=lambda p: p.name) == sorted(expected, key=lambda p: p.name)
    cluster, alone = read_parts(tmp_path / "cluster"), read_parts(tmp_path / "one")
    assert len(cluster) == 7_500
    for (_, row), (_, same) in zip(cluster.iterrows(), alone.iterrows(), strict=True):
        pd.testing.assert_series_equal(row, same)
    pd.testing.assert_frame_equal(cluster, alone)
    # both workers took units, and each loaded the package once, from the shared store
    assert loads_by_worker == {worker: 1 for worker in workers}
    # nothing of the test's network is left
    assert not [line for line in ip_output("netns", "list") if line.startswith(f"mpns{TAG}")]
    assert not [line for line in ip_output("link") if f"mpbr{TAG}" in line or f"mpv{TAG}" in line]
    assert not [line for line in ip_output("route") if "10.213." in line]
    print(f"multi-host Dask run, set-up to tear-down: {elapsed:.1f} s")
