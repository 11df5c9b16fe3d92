"""Running a batch job's units as Ray tasks (``--engine ray``).

Each unit is one task that calls ``score_unit`` on a Ray worker: the worker process loads
the package from the artifact store once (``PackageSource.load`` keeps it for the later
tasks that process runs), reads its rows from the input, and writes its parts into the
staging directory itself, so no rows and no model travel through Ray's object store: only
the small plan and unit go out, only ``PartResult``s come back. The driver waits on the
tasks as they finish (``ray.wait``) to tell ``on_part`` of each part.

Without an address a local Ray is started for the job, with its own temporary directory
and no dashboard, and shut down by this process's own handle (``ray.shutdown``) before
returning; a Ray this process was already connected to is used and left as it was.
"""

from __future__ import annotations

import shutil
import tempfile
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


def _run_unit(plan: BatchPlan, unit: Unit) -> list[PartResult] | _Failed:
    """The task body: the unit's parts, or what went wrong."""
    try:
        return score_unit(plan, unit)
    except Exception as exc:
        return _Failed.of(exc)


def run_on_ray(
    plan: BatchPlan,
    units: list[Unit],
    on_part: OnPart,
    *,
    address: str | None = None,
    workers: int | None = None,
) -> list[PartResult]:
    """Score ``units`` as Ray tasks; tell ``on_part`` of each part as its unit finishes.

    ``address`` names a running Ray cluster (``ray://host:10001`` or ``host:6379``);
    without one, a local Ray with ``workers`` CPUs (default 2) runs the job and is shut
    down after it. The first unit that fails stops the job: its error is raised as the
    worker raised it (a ``BatchRowError`` naming the file, row and column).
    """
    ray = require("ray", extra="ray")
    with _connected(ray, address, workers):
        task = ray.remote(_run_unit)
        plan_ref = ray.put(plan)  # sent once, not once per task
        pending = {task.remote(plan_ref, unit): index for index, unit in enumerate(units)}
        finished: dict[int, list[PartResult]] = {}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(ready[0])
                outcome = _outcome(ray, ready[0])
                if isinstance(outcome, _Failed):
                    raise outcome.rebuilt()
                finished[index] = outcome
                for part in outcome:
                    on_part(part)
        finally:
            for ref in pending:  # a failed job leaves no task running on
                ray.cancel(ref, force=True)
    return [part for index in sorted(finished) for part in finished[index]]


def _outcome(ray: Any, ref: Any) -> list[PartResult] | _Failed:
    """The task's result; an error of Ray's own (a worker that died) is raised as the
    cause Ray gives, when it gives one."""
    try:
        outcome: list[PartResult] | _Failed = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise
    return outcome


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
