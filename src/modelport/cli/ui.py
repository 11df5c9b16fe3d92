"""``modelport ui``: the control plane (registry server, REST API and dashboard).

Like ``mlflow server``: one command that serves the registry, deployments, monitoring
and keys over HTTP, with the dashboard at ``/ui/``, over the metadata database and
artifact store of the settings. Several instances can run behind a load balancer; each
is a supervisor with worker processes, exactly as ``modelport serve`` runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from modelport.cli.serve import (
    build_settings,
    check_auth,
    config_option,
    plain_http_warning,
    proxy_hint,
    tls_options,
)
from modelport.server.process.supervisor import run_server

CONTROL_FACTORY = "modelport.bootstrap:build_control_app"
DEFAULT_PORT = 5000  # mlflow server's: what people who run a registry server expect


@click.command()
@click.option("--host", help="Address to bind.  [default: 127.0.0.1]")
@click.option(
    "--port",
    type=int,
    default=DEFAULT_PORT,
    show_default=True,
    envvar="MODELPORT_UI_PORT",
    help="Port to bind; 0 picks a free one (also MODELPORT_UI_PORT).",
)
@click.option("--workers", type=int, help="Worker processes sharing the port.  [default: 1]")
@tls_options
@click.option(
    "--access-log/--no-access-log", default=None, help="Log every request as a JSON line."
)
@config_option
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    default=None,
    help="Serve without API keys even on an address other machines can reach.",
)
@click.option(
    "--monitor",
    is_flag=True,
    help="Also evaluate the [monitor.alerts] rules of the config every monitor.interval "
    "in this process (then no `modelport monitor run` is needed).",
)
@click.option(
    "--json", "as_json", is_flag=True, help='Once ready, print {"url": ..., "dashboard": ...}.'
)
def ui(*, config: Path | None, monitor: bool, as_json: bool, **options: Any) -> int:
    """Run the control plane until Ctrl+C: the registry's REST API (what
    MODELPORT_REGISTRY_URL points the SDK and CLI at), deployments, monitoring, keys,
    the OpenAPI document at /api/openapi.json and the dashboard at /ui/.

    The [monitor.alerts] rules of the config are the ones `modelport monitor run` and
    `serve --monitor` ask it to evaluate over MODELPORT_REGISTRY_URL; with --monitor it
    evaluates them itself every monitor.interval."""
    settings = build_settings(config, **options)
    for check in (plain_http_warning, proxy_hint):
        hint = check(settings.serve)
        if hint is not None:
            click.echo(hint, err=True)
    check_auth(settings, control_plane=True)
    workers = settings.serve.workers

    def announce(line: str) -> None:
        url = line.rsplit(" on ", 1)[1].split(" ", 1)[0]
        if as_json:
            click.echo(json.dumps({"url": url, "dashboard": f"{url}/ui/", "workers": workers}))
        else:
            click.echo(
                f"modelport control plane on {url} (dashboard: {url}/ui/) with {workers} worker(s)"
            )

    if not monitor:
        return run_server(settings, (), factory=CONTROL_FACTORY, announce=announce)
    from modelport.cli.serve_monitor import ServeMonitor, require_rules

    require_rules(settings)
    evaluator = ServeMonitor(settings, announce, own_metrics=False)
    try:
        return run_server(settings, (), factory=CONTROL_FACTORY, announce=evaluator)
    finally:
        evaluator.close()
