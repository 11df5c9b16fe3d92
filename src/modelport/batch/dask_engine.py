"""Running a batch job's units on Dask: a LocalCluster of its own, or an existing cluster.

Each unit becomes one Dask task that calls ``score_unit`` on a worker. What travels
through the scheduler is the plan (a ``PackageSource``, a few strings) and the unit; each
worker process loads the package from the artifact store once and keeps it for its later
tasks (``PackageSource.load``), so the model is never pickled and workers need no
database. The parts are written by the workers straight into the staging directory,
which must therefore be a path or URI every worker can reach.

The driver hears of each part as it is written: the worker logs a small event (the
part's name and counts) that the scheduler forwards to this client, so the progress bar
moves within a long unit (a whole CSV file) too. The unit's own result, when it comes
back, is the record: a part whose event was lost or late is reported from it, once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelport.batch.parts import PartResult
from modelport.batch.units import BatchPlan, OnPart, Unit, score_unit
from modelport.errors import InvalidArgumentError, MissingDependencyError

DEFAULT_WORKERS = 2
_TOPIC_PREFIX = "modelport-batch-parts-"


def run_on_dask(
    plan: BatchPlan,
    units: list[Unit],
    on_part: OnPart,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
) -> list[PartResult]:
    """Score ``units`` on Dask and return every part written, in order of completion.

    ``scheduler=None`` starts a LocalCluster of ``workers`` processes (default 2, one
    thread each: a model call already uses the cores it wants) and shuts it down before
    returning; ``scheduler="tcp://host:8786"`` uses that cluster (``workers`` is then
    ignored: the cluster has the workers it has). The first unit to fail raises its
    error unchanged (e.g. ``BatchRowError``) and the other units are cancelled.
    """
    if workers is not None and workers < 1:
        raise InvalidArgumentError(f"workers must be at least 1, not {workers}", field="workers")
    if not units:
        return []
    with _client(scheduler, workers) as client:
        return _run(client, plan, units, on_part)


def _run(client: Any, plan: BatchPlan, units: list[Unit], on_part: OnPart) -> list[PartResult]:
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    run = uuid.uuid4().hex
    topic = f"{_TOPIC_PREFIX}{run}"
    # Subscribed before any task is submitted: both go to the scheduler on the same
    # stream, so no task can log an event the scheduler does not yet forward.
    client.subscribe_topic(topic, lambda event: events.put(("part", event[1])))
    futures = [
        # keys name the file and row each task starts at (the dashboard shows them)
        client.submit(_score_unit_reporting, plan, unit, topic, key=_key(unit, run))
        for unit in units
    ]
    for future in futures:
        future.add_done_callback(lambda done: events.put(("unit", done)))
    reported: set[str] = set()
    written: list[PartResult] = []

    def report(part: PartResult) -> None:
        if part.name not in reported:
            reported.add(part.name)
            written.append(part)
            on_part(part)

    try:
        finished = 0
        while finished < len(futures):
            kind, payload = events.get()
            if kind == "part":
                report(_part_of(payload))
                continue
            finished += 1
            for part in payload.result():  # the worker's exception, re-raised here
                report(part)
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        with contextlib.suppress(Exception):  # a lost scheduler must not hide the error
            client.unsubscribe_topic(topic)
    return written


def _key(unit: Unit, run: str) -> str:
    return f"modelport-unit-{unit.file.index:05d}-{unit.first_row:012d}-{run}"


def _part_of(event: dict[str, Any]) -> PartResult:
    """The part an event names (the scheduler adds keys of its own, such as ``worker``)."""
    return PartResult(**{field.name: event[field.name] for field in dataclasses.fields(PartResult)})


def _score_unit_reporting(plan: BatchPlan, unit: Unit, topic: str) -> list[PartResult]:
    """``score_unit`` on a worker, logging each part written as an event for the driver."""
    from distributed import get_worker

    worker = get_worker()
    return score_unit(
        plan, unit, on_part=lambda part: worker.log_event(topic, dataclasses.asdict(part))
    )


@contextmanager
def _client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a LocalCluster started (and shut
    down on leaving) here."""
    distributed = _distributed()
    if scheduler is not None:
        with _connected(distributed, scheduler) as client:
            yield client
        return
    cluster = distributed.LocalCluster(
        n_workers=DEFAULT_WORKERS if workers is None else workers,
        threads_per_worker=1,
        processes=True,
        # None would still serve the scheduler's HTTP routes on port 8787 (and warn when
        # another cluster has it); a free port on the loopback interface instead.
        dashboard_address="127.0.0.1:0",
        # A unit's error comes back to the driver, which raises it; the workers' own log
        # of it ("Compute Failed" and a traceback) would only print it twice.
        silence_logs=logging.CRITICAL,
    )
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def _connected(distributed: Any, scheduler: str) -> Any:
    """A client of the scheduler at ``scheduler``; an address that cannot be reached (in
    ``distributed.comm.timeouts.connect``, 30 s by default) or parsed is the caller's."""
    try:
        return distributed.Client(scheduler)
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(
            f"cannot use the Dask scheduler at {scheduler!r}: {exc}; give the address of a "
            "running scheduler (tcp://host:8786), or none for a local cluster",
            field="scheduler",
        ) from None


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError(
            "the Dask engine needs dask.distributed; install it with: "
            "pip install 'modelport[dask]'",
            package="distributed",
            extra="dask",
        ) from None
    return distributed
