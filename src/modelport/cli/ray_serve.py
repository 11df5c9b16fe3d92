"""``modelport ray serve MODEL...``: the inference server as a Ray Serve deployment.

Runs in the foreground until Ctrl+C or SIGTERM, then removes what it deployed (and
shuts down the Ray it started; a cluster joined with ``--address`` keeps running).
Settings come as for ``modelport serve``: options, ``MODELPORT_*`` variables, the
config file, defaults.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from modelport.cli.serve import (
    batching_options,
    build_settings,
    config_option,
    plain_http_warning,
)
from modelport.ray_serve import DEFAULT_MAX_ONGOING_REQUESTS, RayServeOptions

_WAIT_S = 0.5  # how often the main thread looks whether a signal asked it to stop


@click.group()
def ray() -> None:
    """Serve on a Ray cluster (Ray Serve)."""


@ray.command("serve")
@click.argument("models", nargs=-1, required=True, metavar="MODEL...")
@click.option("--replicas", type=int, default=1, show_default=True, help="Ray Serve replicas.")
@click.option("--host", help="Address Ray Serve's HTTP proxy binds.  [default: 127.0.0.1]")
@click.option("--port", type=int, help="Port Ray Serve's HTTP proxy binds.  [default: 8080]")
@click.option(
    "--address",
    help="Join this Ray cluster (ray://head:10001, auto) instead of starting a local Ray.",
)
@click.option("--num-cpus", type=int, help="CPUs of the local Ray it starts.  [default: all]")
@click.option(
    "--replica-cpus", type=float, default=1.0, show_default=True, help="CPUs each replica reserves."
)
@click.option(
    "--max-ongoing-requests",
    type=int,
    default=DEFAULT_MAX_ONGOING_REQUESTS,
    show_default=True,
    help="Requests one replica takes at once (its batcher fills batches from them).",
)
@click.option("--name", default="modelport", show_default=True, help="Ray Serve application.")
@batching_options
@click.option(
    "--drain-timeout",
    type=float,
    help="On stop, seconds in-flight requests may take to finish.  [default: 30]",
)
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="Log every request (modelport's JSON lines and Ray Serve's own).",
)
@config_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Once ready, print {"url": ..., "models": [...], "replicas": N}.',
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    default=None,
    help="Serve without API keys even on an address other machines can reach.",
)
def serve(
    *,
    models: tuple[str, ...],
    replicas: int,
    address: str | None,
    num_cpus: int | None,
    replica_cpus: float,
    max_ongoing_requests: int,
    name: str,
    config: Path | None,
    as_json: bool,
    **options: Any,
) -> int:
    """Serve MODEL... on Ray Serve (V2, MLflow and REST routes) until Ctrl+C.

    MODEL is as for `modelport serve` (churn@production, churn/3, a deployment's name, a
    package directory, NAME=...). Each replica runs modelport's server with its
    batching and follows the registry's aliases and deployments on its own; on a
    cluster of several machines the registry must be shared (PostgreSQL and an object
    store).
    """
    from modelport.ray_serve import start

    settings = build_settings(config, **options)
    hint = plain_http_warning(settings.serve)
    if hint is not None:
        click.echo(hint, err=True)
    run_options = RayServeOptions(
        replicas=replicas,
        max_ongoing_requests=max_ongoing_requests,
        replica_cpus=replica_cpus,
        name=name,
    )

    def warn(line: str) -> None:
        click.secho(f"WARNING: {line}", err=True, fg="red", bold=True)

    stop = _StopSignals()
    run = start(settings, models, run_options, address=address, num_cpus=num_cpus, warn=warn)
    try:
        stop.install()  # after ray.init, which installs handlers of its own
        if as_json:
            click.echo(json.dumps({"url": run.url, "models": run.models, "replicas": replicas}))
        else:
            click.echo(
                f"serving {', '.join(run.models)} on {run.url} "
                f"(Ray Serve, {replicas} replica{'s' if replicas != 1 else ''}; Ctrl+C to stop)"
            )
        stop.wait()
    finally:
        run.stop()
    return 0


class _StopSignals:
    """SIGINT and SIGTERM end the wait; the main thread then stops what it deployed."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> None:
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, self._handle)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self._event.set()

    def wait(self) -> None:
        # A timed wait: the handler runs between bytecodes of this (main) thread.
        while not self._event.wait(_WAIT_S):
            pass
