"""Running a batch job's units as Ray tasks (``--engine ray``).

Each unit is one task that runs ``score_unit`` on a Ray worker: the worker process loads
the package from the artifact store once (``PackageSource.load`` keeps it for the later
tasks that process runs), reads its rows from the input, and writes its parts into the
staging directory itself, so no rows and no model travel through Ray's object store: only
the small plan and unit go out, only ``PartResult``s come back, one by one as the parts
are written (each task is a streaming generator), and the driver tells ``on_part`` of
each as it arrives (``ray.wait`` over all the tasks).

Without an address a local Ray is started for the job, with its own temporary directory
and no dashboard, and shut down by this process's own handle (``ray.shutdown``) before
returning; a Ray this process was already connected to is used and left as it was.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from modelport.batch.parts import PartResult
from modelport.batch.units import BatchPlan, OnPart, Unit, score_unit
from modelport.flavors.dependencies import require

DEFAULT_WORKERS = 2
# A local Ray for one job moves only plans and part summaries through its object store;
# Ray's default (30% of the machine's memory, reserved in /dev/shm) is far more than that.
_LOCAL_OBJECT_STORE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class _Failed:
    """A unit's error, sent back as a value (Ray would hand back a ``RayTaskError`` in its
    place). An error ``pickle`` cannot rebuild (modelport's take keyword-only fields,
    which ``__init__`` would need) travels as its class and state instead."""

    error: BaseException | None
    kind: type[BaseException]
    args: tuple[Any, ...]
    state: dict[str, Any]
    trace: str

    @classmethod
    def of(cls, error: Exception) -> _Failed:
        import pickle
        import traceback

        trace = "".join(traceback.format_exception(error))
        try:
            pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, just made
        except Exception:
            return cls(None, type(error), error.args, dict(error.__dict__), trace)
        return cls(error.with_traceback(None), type(error), (), {}, trace)

    def rebuilt(self) -> BaseException:
        error = self.error
        if error is None:
            error = self.kind.__new__(self.kind)
            error.args = self.args
            error.__dict__.update(self.state)
        error.add_note(f"raised on a Ray worker:\n{self.trace}")
        return error


def _unit_parts(plan: BatchPlan, unit: Unit) -> Iterator[PartResult | _Failed]:
    """The task body, a Ray streaming generator: each part as ``score_unit`` writes it
    (so the driver's progress moves part by part, even through a long CSV file), then
    nothing more, or what went wrong."""
    results: queue.SimpleQueue[PartResult | _Failed | None] = queue.SimpleQueue()

    def score() -> None:
        try:
            score_unit(plan, unit, results.put)
            results.put(None)
        except Exception as exc:
            results.put(_Failed.of(exc))

    threading.Thread(target=score, name="modelport-unit", daemon=True).start()
    while (item := results.get()) is not None:
        yield item
        if isinstance(item, _Failed):
            return


def run_on_ray(
    plan: BatchPlan,
    units: list[Unit],
    on_part: OnPart,
    *,
    address: str | None = None,
    workers: int | None = None,
) -> list[PartResult]:
    """Score ``units`` as Ray tasks; tell ``on_part`` of each part as it is written.

    ``address`` names a running Ray cluster (``ray://host:10001`` or ``host:6379``);
    without one, a local Ray with ``workers`` CPUs (default 2) runs the job and is shut
    down after it. The first unit that fails stops the job: its error is raised as the
    worker raised it (a ``BatchRowError`` naming the file, row and column). A process
    already connected to Ray runs the job there (``address`` is then not used).
    """
    ray = require("ray", extra="ray")
    if not units:
        return []  # nothing to score: no Ray to start
    with _connected(ray, address, workers):
        task = ray.remote(_unit_parts).options(num_returns="streaming")
        plan_ref = ray.put(plan)  # sent once, not once per task
        running = {task.remote(plan_ref, unit): index for index, unit in enumerate(units)}
        written: dict[int, list[PartResult]] = {index: [] for index in range(len(units))}
        try:
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                part = _next_part(ray, ready[0])
                if part is None:
                    del running[ready[0]]
                    continue
                written[running[ready[0]]].append(part)
                on_part(part)
        finally:
            for generator in running:  # a failed job leaves no task running on
                ray.cancel(generator, force=True)
    return [part for index in sorted(written) for part in written[index]]


def _next_part(ray: Any, generator: Any) -> PartResult | None:
    """The unit's next part, None when it has no more; its error, raised as the worker
    raised it (an error of Ray's own, such as a worker that died, as the cause Ray
    gives when it gives one)."""
    try:
        item: PartResult | _Failed = ray.get(next(generator))
    except StopIteration:
        return None
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise
    if isinstance(item, _Failed):
        raise item.rebuilt()
    return item


@contextmanager
def _connected(ray: Any, address: str | None, workers: int | None) -> Iterator[None]:
    """Ray for the job: the connection this process has, the cluster at ``address``, or a
    local Ray of its own; whatever this opened, it closes."""
    if ray.is_initialized():
        yield
        return
    if address is not None:
        ray.init(address=address, configure_logging=False, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()  # a driver's shutdown disconnects; the cluster runs on
        return
    # A short path: Ray's socket names under it must fit in 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="mp-ray-")
    try:
        ray.init(
            num_cpus=workers or DEFAULT_WORKERS,
            include_dashboard=False,
            object_store_memory=_LOCAL_OBJECT_STORE_BYTES,
            configure_logging=False,
            log_to_driver=False,
            _temp_dir=temp_dir,
        )
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
