"""The worker's side of the shadow process, against real child processes: every copy
arrives whole and in order, a process that stops reading makes the worker drop (and
count) copies beyond its bound instead of growing, and copies survive the round trip."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from modelport.server.process import shadow_link
from modelport.server.process.shadow_link import ShadowLink, start_message
from modelport.serving.binding import ArrayInputs, NamedInputs, TableInputs, Tensor
from modelport.serving.routing.shadow import ShadowArm
from modelport.serving.routing.shadow_wire import HEADER, decode_copy, encode_copy
from modelport.serving.target import InferenceRequest

pytestmark = pytest.mark.timeout(60)

# A shadow process stand-in that reads every frame and writes what it got at the end.
READER = """
import json, signal, socket, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as the shadow process: reads to the end
from modelport.serving.routing.shadow_wire import HEADER, decode_copy
sock = socket.socket(fileno=int(sys.argv[1]))
def exactly(n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data
got = []
first = True
while (header := exactly(HEADER.size)) is not None:
    body = exactly(HEADER.unpack(header)[0])
    if first:
        first = False
        continue
    deployment, arm, request = decode_copy(body)
    got.append([deployment, arm, request.request_id, request.inputs.values.tolist()])
with open(sys.argv[2], "w") as out:
    json.dump(got, out)
"""


def request(request_id: str, row: list[float]) -> InferenceRequest:
    now = time.monotonic()
    return InferenceRequest(
        TableInputs(("a", "b"), np.array([row])), None, now + 5, request_id, "mlflow", now
    )


def spawner(script: str, *args: str) -> shadow_link.Spawn:
    def spawn(copies: socket.socket, stop: socket.socket) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-c", script, str(copies.fileno()), *args]
        return subprocess.Popen(command, pass_fds=(copies.fileno(),))

    return spawn


ARM = ShadowArm("shadow", target=None, version=None)  # type: ignore[arg-type]


def test_every_copy_reaches_the_process_whole_and_in_order(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    drops: Counter[tuple[str, str]] = Counter()

    async def run() -> None:
        link = ShadowLink(
            start_message({}, [], 0, 1),
            metrics_dir=None,
            stop_timeout_s=20,
            spawn=spawner(READER, str(out)),
        )
        sink = link.sink("churn", lambda d, a: drops.update([(d, a)]))
        for i in range(3000):  # more than a socket buffer holds: partial writes happen
            assert sink.offer(ARM, request(f"r{i}", [float(i), 1.0]))
            if i % 100 == 0:
                await asyncio.sleep(0)
        await sink.close()

    asyncio.run(run())
    got = json.loads(out.read_text())
    assert not drops
    assert [g[2] for g in got] == [f"r{i}" for i in range(3000)]
    assert got[1234] == ["churn", "shadow", "r1234", [[1234.0, 1.0]]]


def test_a_process_that_stops_reading_makes_the_worker_drop_and_count() -> None:
    drops: Counter[tuple[str, str]] = Counter()
    # holds its end, never reads, and outlives SIGTERM: killed after stop_timeout_s
    stuck = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"

    async def run() -> tuple[int, int]:
        link = ShadowLink(
            start_message({}, [], 0, 1), metrics_dir=None, stop_timeout_s=1, spawn=spawner(stuck)
        )
        sink = link.sink("churn", lambda d, a: drops.update([(d, a)]))
        big = [float(x) for x in range(2000)]  # ~16 kB a copy
        sent = 0
        for i in range(400):
            sent += sink.offer(ARM, request(f"r{i}", big))
            await asyncio.sleep(0.003)  # flushes happen
        pid = link.pid
        assert pid is not None
        await sink.close()  # the process does not finish: killed after stop_timeout_s
        return sent, pid

    sent, pid = asyncio.run(run())
    assert drops[("churn", "shadow")] >= 400 - sent > 0
    # never more buffered than the bound (plus what the socket holds)
    assert sent * 16_000 < shadow_link.MAX_BUFFERED_BYTES + 8 * 1024 * 1024
    assert not Path(f"/proc/{pid}").exists() or " Z " in Path(f"/proc/{pid}/stat").read_text()


@pytest.mark.parametrize(
    "inputs",
    [
        TableInputs(None, np.arange(6.0).reshape(2, 3)),
        ArrayInputs(np.array([[1, 2], [3, 4]], dtype=np.int32)),
        NamedInputs(
            {
                "x": Tensor(np.array([1.5, 2.5], dtype=np.float32), "FP32"),
                "name": Tensor(np.array(["a", "b"], dtype=object), "BYTES"),
            }
        ),
    ],
)
def test_a_copy_survives_the_wire(inputs: object) -> None:
    now = time.monotonic()
    original = InferenceRequest(
        inputs,  # type: ignore[arg-type]
        ("predictions",),
        now + 2.0,
        "req-1",
        "v2",
        now,
        {"threshold": 0.5},
        ((b"x-user-id", b"u1"),),
    )
    frame = encode_copy("churn", "shadow", original)
    (size,) = HEADER.unpack(frame[: HEADER.size])
    assert size == len(frame) - HEADER.size
    deployment, arm, copy = decode_copy(frame[HEADER.size :])
    assert (deployment, arm) == ("churn", "shadow")
    assert (copy.request_id, copy.protocol, copy.outputs) == ("req-1", "v2", ("predictions",))
    assert copy.params == {"threshold": 0.5}
    assert copy.deadline - copy.received == pytest.approx(2.0)
    assert copy.headers == ()  # a shadow has no use for the caller's headers
    assert type(copy.inputs) is type(original.inputs)
    if isinstance(inputs, NamedInputs):
        assert isinstance(copy.inputs, NamedInputs)
        for name, tensor in inputs.tensors.items():
            np.testing.assert_array_equal(copy.inputs.tensors[name].array, tensor.array)
            assert copy.inputs.tensors[name].datatype == tensor.datatype
    elif isinstance(inputs, TableInputs):
        assert isinstance(copy.inputs, TableInputs)
        assert copy.inputs.columns == inputs.columns
        np.testing.assert_array_equal(copy.inputs.values, inputs.values)
    else:
        assert isinstance(copy.inputs, ArrayInputs) and isinstance(inputs, ArrayInputs)
        np.testing.assert_array_equal(copy.inputs.array, inputs.array)
        assert copy.inputs.array.dtype == np.int32


def test_the_cpu_gate_closes_while_the_cores_are_busy() -> None:
    from modelport.priority import INTERVAL_S, CpuGate

    gate, never_closed = CpuGate(0.4), CpuGate(1.0)
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        deadline = time.monotonic() + 20
        while gate.open():  # every core spinning: closes at the next reading
            assert time.monotonic() < deadline, "the gate stayed open with every core busy"
            time.sleep(INTERVAL_S)
        assert never_closed.open()  # a limit of 1 never pauses the shadow
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
