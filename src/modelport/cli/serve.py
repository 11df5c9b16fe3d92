"""``modelport serve MODEL...``: the inference server, in the foreground.

Settings come, highest first, from the options given here, ``MODELPORT_*`` variables
(``MODELPORT_SERVE__WORKERS=4``), the config file (``--config`` or
``MODELPORT_CONFIG``), then the defaults. Only the options actually given override
the others.

This module imports no serving framework: the supervisor it starts stays light, and
the workers import uvicorn, the ASGI app and the model frameworks themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from modelport.config import ServeSettings, Settings, is_loopback
from modelport.errors import InvalidArgumentError
from modelport.server.process.spec import DEFAULT_FACTORY
from modelport.server.process.supervisor import run_server
from modelport.serving.sources import ModelSource, check_unique, parse_source

_OPTION_NAMES = {
    ("serve", "host"): "--host",
    ("serve", "port"): "--port",
    ("serve", "workers"): "--workers",
    ("serve", "batching", "max_batch_size"): "--max-batch-size",
    ("serve", "batching", "max_wait_ms"): "--max-wait-ms",
    ("serve", "batching", "max_queue"): "--max-queue",
    ("serve", "request_timeout_s"): "--request-timeout",
    ("serve", "drain_timeout_s"): "--drain-timeout",
    ("serve", "drain_delay_s"): "--drain-delay",
    ("serve", "tls"): "--tls-cert",
    ("serve", "tls", "cert"): "--tls-cert",
    ("serve", "tls", "key"): "--tls-key",
    ("serve", "tls", "client_ca"): "--tls-client-ca",
    ("serve", "forwarded_allow_ips"): "--forwarded-allow-ips",
}


def build_settings(config: Path | None = None, **options: Any) -> Settings:
    """Settings with the given command-line options on top of env, file and defaults.

    ``options`` are the ``serve`` command's option values; ``None`` means not given.
    """
    serve: dict[str, Any] = {
        key: options.get(option)
        for key, option in (
            ("host", "host"),
            ("port", "port"),
            ("workers", "workers"),
            ("accelerate", "accelerate"),
            ("request_timeout_s", "request_timeout"),
            ("drain_timeout_s", "drain_timeout"),
            ("drain_delay_s", "drain_delay"),
            ("access_log", "access_log"),
            ("allow_signature_change", "allow_signature_change"),
            ("behind_proxy", "behind_proxy"),
            ("forwarded_allow_ips", "forwarded_allow_ips"),
        )
        if options.get(option) is not None
    }
    tls = {key: options[f"tls_{key}"] for key in _TLS_KEYS if options.get(f"tls_{key}") is not None}
    if tls:
        serve["tls"] = tls
    batching = {
        key: options[key]
        for key in ("max_batch_size", "max_wait_ms", "max_queue")
        if options.get(key) is not None
    }
    if batching:
        serve["batching"] = batching
    init: dict[str, Any] = {"serve": serve} if serve else {}
    if options.get("insecure_no_auth"):
        init["security"] = {"insecure_no_auth": True}
    if config is not None:
        init["config"] = config
    try:
        return Settings(**init)
    except ValidationError as exc:
        raise InvalidArgumentError(_describe(exc.errors()[0])) from None
    except ValueError as exc:  # the config file cannot be read or has unknown tables
        raise InvalidArgumentError(str(exc)) from None


_TLS_KEYS = ("cert", "key", "client_ca")


def plain_http_warning(serve: ServeSettings) -> str | None:
    """A warning for a server other machines reach over plain HTTP, naming the fixes."""
    if serve.tls.enabled or serve.behind_proxy or is_loopback(serve.host):
        return None
    return (
        f"warning: serving plain HTTP on {serve.host or 'every address'}, which other "
        "machines can reach: requests, predictions and API keys cross the network "
        "unencrypted. Serve HTTPS (--tls-cert FILE --tls-key FILE), or put a "
        "TLS-terminating proxy in front and pass --behind-proxy (see docs/security.md)"
    )


def proxy_hint(serve: ServeSettings) -> str | None:
    """A hint for ``--behind-proxy`` on a reachable address trusting only loopback: a
    proxy on another machine would have its X-Forwarded-* headers ignored."""
    loopback_only = all(is_loopback(ip.partition("/")[0]) for ip in serve.forwarded_allow_ips)
    if not serve.behind_proxy or is_loopback(serve.host) or not loopback_only:
        return None
    return (
        "hint: --behind-proxy believes X-Forwarded-* headers only from "
        f"{', '.join(serve.forwarded_allow_ips)}; if the proxy runs on another machine, "
        "name its addresses with --forwarded-allow-ips (see docs/security.md)"
    )


def drain_delay_hint(serve: ServeSettings) -> str | None:
    """A one-line hint for a server other machines reach, with no drain delay: behind
    a load balancer, requests still routed here after SIGTERM would be refused."""
    if serve.drain_delay_s > 0 or is_loopback(serve.host):
        return None
    return (
        "hint: --drain-delay is 0, so on SIGTERM this server stops accepting at once; "
        "behind a load balancer or in Kubernetes, set it to how long they take to stop "
        "routing here (e.g. --drain-delay 5, see docs/production.md)"
    )


def _describe(error: Mapping[str, Any]) -> str:
    location = tuple(str(part) for part in error.get("loc", ()))
    dotted = ".".join(location) or "settings"
    if location and location[-1].isdigit():  # an item of a list: name the list's option
        location = location[:-1]
    variable = "MODELPORT_" + "__".join(location).upper()
    option = _OPTION_NAMES.get(location)
    where = f"{option}, {variable}" if option else variable
    return f"invalid {dotted} ({where}): {error.get('msg', 'invalid value')}"


def serve_models(
    settings: Settings,
    models: Sequence[str],
    *,
    factory: str = DEFAULT_FACTORY,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Serve ``models`` (``REF``, ``NAME=REF``, ``PATH`` or ``NAME=PATH``) in the
    foreground until SIGTERM or Ctrl+C; the exit code (0 after a clean drain).

    For ``modelport quickstart`` and other commands that end by serving. Must run in
    the main thread; raises ``ModelportError`` when the server cannot start.
    ``announce`` receives the "serving ... on URL" line once every worker is ready
    (default: print it).
    """
    if not models:
        raise InvalidArgumentError("nothing to serve: name at least one model", field="model")
    sources = check_unique(parse_source(model) for model in models)
    check_auth(settings)
    resolver = _registry_resolver(settings) if factory == DEFAULT_FACTORY else None
    return run_server(settings, sources, factory=factory, resolver=resolver, announce=announce)


def check_auth(settings: Settings, *, control_plane: bool = False) -> None:
    """Refuse to start when keys are required and none is usable (before any worker
    starts, naming the fix); warn loudly when serving other machines without keys."""
    from modelport.bootstrap import build_server_auth

    auth = build_server_auth(settings, control_plane=control_plane)
    if auth.keys is not None:
        auth.keys.stop()  # the workers read the keys themselves
    if auth.warning is not None:
        click.secho(f"WARNING: {auth.warning}", err=True, fg="red", bold=True)


def _registry_resolver(settings: Settings) -> Callable[[Sequence[ModelSource]], list[ModelSource]]:
    def resolve(sources: Sequence[ModelSource]) -> list[ModelSource]:
        # Imported here, after the workers were started: the registry's libraries load
        # in this process while the workers load theirs.
        from modelport.bootstrap import resolve_sources

        return resolve_sources(settings, sources)

    return resolve


def batching_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The batching and timeout options ``serve`` and ``ray serve`` share."""
    for option in reversed(
        [
            click.option("--max-batch-size", type=int, help="Rows per model call.  [default: 256]"),
            click.option(
                "--max-wait-ms",
                type=float,
                help="Longest a request waits for a batch.  [default: 2]",
            ),
            click.option(
                "--request-timeout", type=float, help="Seconds per request.  [default: 60]"
            ),
        ]
    ):
        command = option(command)
    return command


def tls_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The TLS and proxy options ``serve`` and ``ui`` share."""
    for option in reversed(
        [
            click.option(
                "--tls-cert",
                type=click.Path(path_type=Path),
                help="Serve HTTPS with this PEM certificate (chain).",
            ),
            click.option(
                "--tls-key",
                type=click.Path(path_type=Path),
                help="The certificate's PEM private key.  [default: in the --tls-cert file]",
            ),
            click.option(
                "--tls-client-ca",
                type=click.Path(path_type=Path),
                help="Require client certificates signed by these PEM CA certificates "
                "(mutual TLS).",
            ),
            click.option(
                "--behind-proxy/--not-behind-proxy",
                default=None,
                help="A TLS-terminating proxy forwards requests: trust its X-Forwarded-For "
                "and X-Forwarded-Proto (from --forwarded-allow-ips only).  [default: not "
                "behind a proxy]",
            ),
            click.option(
                "--forwarded-allow-ips",
                help="With --behind-proxy, the proxies' addresses or networks, "
                "comma-separated ('*': any).  [default: 127.0.0.1,::1]",
            ),
        ]
    ):
        command = option(command)
    return command


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A TOML file with settings (also MODELPORT_CONFIG).",
)


@click.command()
@click.argument("models", nargs=-1, required=True, metavar="MODEL...")
@click.option("--host", help="Address to bind.  [default: 127.0.0.1]")
@click.option("--port", type=int, help="Port to bind; 0 picks a free one.  [default: 8080]")
@click.option("--workers", type=int, help="Worker processes sharing the port.  [default: 1]")
@batching_options
@click.option("--max-queue", type=int, help="Requests waiting per model.  [default: 1024]")
@click.option(
    "--accelerate/--no-accelerate",
    default=None,
    help="Serve a package's verified ONNX graph when it has one.  [default: accelerate]",
)
@click.option(
    "--drain-timeout",
    type=float,
    help="On SIGTERM, seconds in-flight requests may take to finish.  [default: 30]",
)
@click.option(
    "--drain-delay",
    type=float,
    help="On SIGTERM, seconds to keep accepting and serving after readiness turns 503, "
    "until load balancers stop routing here: 5 behind a Kubernetes Service.  [default: 0]",
)
@click.option(
    "--access-log/--no-access-log", default=None, help="Log every request as a JSON line."
)
@click.option(
    "--allow-signature-change/--refuse-signature-change",
    default=None,
    help="When a followed alias moves to a version whose inputs or outputs would break "
    "current clients, switch to it anyway.  [default: refuse, keep serving the old one]",
)
@tls_options
@config_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Once ready, print {"url": ..., "models": [...], "workers": N} instead of the '
    "serving line; errors as JSON.",
)
@click.option(
    "--monitor",
    is_flag=True,
    help="Also evaluate the [monitor.alerts] rules of the config in this process "
    "(one machine; with several replicas run `modelport monitor run` once instead). "
    "With MODELPORT_REGISTRY_URL, ask the control plane to evaluate its own rules "
    "every monitor.interval instead (a key with admin, or deploy on every model).",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    default=None,
    help="Serve without API keys even on an address other machines can reach "
    "(logged loudly; see docs/security.md).",
)
@click.option("--app-factory", default=DEFAULT_FACTORY, hidden=True)
def serve(
    *,
    models: tuple[str, ...],
    config: Path | None,
    app_factory: str,
    as_json: bool,
    monitor: bool,
    **options: Any,
) -> int:
    """Serve MODEL... over HTTP (Open Inference Protocol V2, MLflow, REST) until Ctrl+C.

    Each MODEL is a registry reference (churn@production follows the alias, churn/3
    pins a version, a bare churn serves the deployment churn when one exists, else
    follows the latest version of model churn), a package directory (a
    folder with modelport.yaml), or NAME=REF / NAME=PATH to choose the route name. Text
    naming an existing path is a path: write models:/churn for the registry's model.
    Settings also come from MODELPORT_SERVE__* variables and the [serve] table of the
    config file; options given here win.

    With MODELPORT_REGISTRY_URL set, the server follows that control plane instead of
    the database, and checks its callers' API keys through it (its own
    MODELPORT_API_KEY needs the read and verify scopes).
    """
    settings = build_settings(config, **options)
    for check in (plain_http_warning, proxy_hint, drain_delay_hint):
        hint = check(settings.serve)
        if hint is not None:
            click.echo(hint, err=True)
    announce = _JsonAnnouncement(models, settings.serve.workers) if as_json else None
    if not monitor:
        return serve_models(settings, models, factory=app_factory, announce=announce)
    if settings.registry_url is not None:
        # The alert states live in the control plane's database: it evaluates its own
        # rules on each round this server asks for.
        from modelport.cli.serve_monitor_remote import RemoteServeMonitor

        remote = RemoteServeMonitor(settings, announce)
        try:
            return serve_models(settings, models, factory=app_factory, announce=remote)
        finally:
            remote.close()
    from modelport.cli.serve_monitor import ServeMonitor, require_rules

    require_rules(settings)
    evaluator = ServeMonitor(settings, announce)
    try:
        return serve_models(settings, models, factory=app_factory, announce=evaluator)
    finally:
        evaluator.close()


class _JsonAnnouncement:
    """The serving line as one JSON object on stdout, for scripts that start a server."""

    def __init__(self, models: Sequence[str], workers: int) -> None:
        self._names = [parse_source(model).name for model in models]
        self._workers = workers

    def __call__(self, line: str) -> None:
        url = line.rsplit(" on ", 1)[1].split(" ", 1)[0]
        document = {"url": url, "models": self._names, "workers": self._workers}
        click.echo(json.dumps(document))
