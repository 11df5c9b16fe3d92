"""``modelport monitor run|rules|alerts``: evaluate the alert rules, write them as
Prometheus rules, list their states and history.

The commands are registered on the ``monitor`` group by ``register`` (the group
lives in ``cli.monitor``).
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from modelport.cli.output import print_json, print_table, short_time
from modelport.cli.state import json_option, state
from modelport.config import Settings, parse_duration
from modelport.errors import InvalidArgumentError

if TYPE_CHECKING:
    from modelport.cli.monitor_rounds import RemoteRounds

config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The TOML file with [monitor.alerts.NAME] rules (also MODELPORT_CONFIG).",
)


def register(group: click.Group) -> None:
    """Add ``run``, ``rules`` and ``alerts`` to the ``monitor`` group."""
    for command in (run, rules, alerts):
        group.add_command(command)


def _settings(config: Path | None) -> Settings:
    if config is None:
        return state().settings
    try:
        return Settings(config=config)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        raise InvalidArgumentError(f"invalid {where} in {config}: {error['msg']}") from None
    except ValueError as exc:  # unreadable file, bad TOML, unknown tables
        raise InvalidArgumentError(str(exc)) from None


def _require_rules(settings: Settings) -> None:
    if not settings.monitor.alerts:
        raise InvalidArgumentError(
            "no alert rules: add [monitor.alerts.NAME] tables to the config file "
            "(--config or MODELPORT_CONFIG); see docs/monitoring.md",
            field="monitor.alerts",
        )


@click.command("run")
@click.option("--once", is_flag=True, help="Evaluate every rule once and exit.")
@click.option("--interval", help="Time between evaluations (30s, 1m).  [default: monitor.interval]")
@config_option
@json_option
def run(*, once: bool, interval: str | None, config: Path | None, as_json: bool) -> None:
    """Evaluate the alert rules every interval until Ctrl+C or SIGTERM.

    One evaluator is enough for any number of serving replicas sharing the prediction
    log and the database; rule states survive restarts. Prints each change of state
    (a JSON line each under --json). When MODELPORT_REGISTRY_URL is set, the control
    plane evaluates its own rules (the [monitor.alerts] of `modelport ui`'s config) on
    each round this command asks for (a key with admin, or deploy on every model), and
    runs their webhooks and retrain actions.
    """
    settings = _settings(config)
    try:
        every = parse_duration(interval) if interval is not None else settings.monitor.interval
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--interval") from None
    if settings.registry_url is not None:
        rounds = remote_rounds(settings, every)
        if once:
            _print_outcomes(rounds.evaluate(), as_json=as_json, all_rules=True)
            return
        _loop(rounds.run_once, rounds.stopping, every, "the control plane's alert rules", as_json)
        return
    from modelport.bootstrap import build_alert_engine
    from modelport.monitoring.alerts.loop import MonitorLoop

    _require_rules(settings)
    engine = build_alert_engine(settings, state().local_registry("modelport monitor run"))
    loop = MonitorLoop(engine, every)
    if once:
        outcomes = [o.to_dict() for o in loop.engine.evaluate()]
        _print_outcomes(outcomes, as_json=as_json, all_rules=True)
        return
    _loop(
        lambda: [o.to_dict() for o in loop.run_once()],
        loop.stopping,
        every,
        f"{len(engine.rules)} alert rules",
        as_json,
    )


def remote_rounds(settings: Settings, every: timedelta) -> RemoteRounds:
    """Rounds of the control plane at ``MODELPORT_REGISTRY_URL``, noting on stderr that
    rules of this machine's config are not the ones evaluated."""
    from modelport.cli.monitor_rounds import RemoteRounds

    if settings.monitor.alerts:
        click.echo(
            f"note: the control plane at {settings.registry_url} evaluates the rules of its "
            f"own config; the {len(settings.monitor.alerts)} [monitor.alerts] rules of this "
            "machine's config are not used",
            err=True,
        )
    from modelport.remote.monitoring import MonitoringCalls

    client = state().registry()
    assert isinstance(client, MonitoringCalls)  # the URL is set: the HTTP client
    return RemoteRounds(client.evaluate_alerts, every, lambda text: click.echo(text, err=True))


def _loop(
    round_: Callable[[], list[dict[str, Any]]],
    stopping: threading.Event,
    every: timedelta,
    what: str,
    as_json: bool,
) -> None:
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    if not as_json:
        click.echo(f"evaluating {what} every {every}; Ctrl+C stops")
    try:
        while not stopping.is_set():
            _print_outcomes(round_(), as_json=as_json, all_rules=False)
            stopping.wait(every.total_seconds())
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_outcomes(outcomes: list[dict[str, Any]], *, as_json: bool, all_rules: bool) -> None:
    shown = [o for o in outcomes if all_rules or o["changed"] or o["error"] or o["lost_race"]]
    if as_json:
        if all_rules:
            print_json({"outcomes": shown})
        for outcome in [] if all_rules else shown:
            click.echo(json.dumps(outcome, default=str))
        return
    if all_rules:
        rows = [_outcome_row(o) for o in shown]
        print_table(None, ["rule", "status", "value", "samples", "changed", "notified", "error"],
                    rows)  # fmt: skip
        return
    for outcome in shown:
        status = outcome["state"]["status"] if outcome["state"] is not None else "-"
        detail = outcome["error"] or ("notified" if outcome["notified"] else "")
        click.echo(f"{outcome['rule']}: {status} {detail}".rstrip())


def _outcome_row(outcome: dict[str, Any]) -> list[Any]:
    current = outcome["state"]
    lost = "another evaluator saved first" if outcome["lost_race"] else ""
    return [
        outcome["rule"],
        current["status"] if current is not None else "-",
        _number(current["value"]) if current is not None else "",
        current["samples"] if current is not None else "",
        "yes" if outcome["changed"] else "",
        "yes" if outcome["notified"] else "",
        outcome["error"] or lost,
    ]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


@click.command("rules")
@click.option(
    "--prometheus", is_flag=True, required=True, help="Write Prometheus alerting rules (YAML)."
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout."
)
@config_option
@json_option
def rules(*, prometheus: bool, out: Path | None, config: Path | None, as_json: bool) -> None:
    """Write the alert rules as Prometheus alerting rules, for Alertmanager.

    Rules whose signal has no Prometheus metric are left out and named on stderr;
    each written rule says in annotations.differences where it differs from the
    built-in evaluator.
    """
    import yaml

    from modelport.monitoring.alerts.prometheus import prometheus_rules

    settings = _settings(config)
    _require_rules(settings)
    document, skipped = prometheus_rules(settings.monitor.alerts)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000)
    written = len(document["groups"][0]["rules"])
    left_out = [{"rule": s.rule, "reason": s.reason} for s in skipped]
    if out is not None:
        out.write_text(text, encoding="utf-8")
    if as_json:
        result: dict[str, Any] = {"rules": written, "skipped": left_out}
        result.update({"path": str(out)} if out is not None else {"document": document})
        print_json(result)
        return
    if out is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {written} Prometheus alerting rules to {out}", err=True)
    for item in left_out:
        click.echo(f"skipped {item['rule']}: {item['reason']}", err=True)


@click.command("alerts")
@click.argument("model", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Most events and deliveries shown.")  # fmt: skip
@config_option
@json_option
def alerts(*, model: str | None, limit: int, config: Path | None, as_json: bool) -> None:
    """The alert rules (of MODEL when given) with their states, the latest transitions
    and the delivery log. When MODELPORT_REGISTRY_URL is set, the control plane's
    (its rules, of the models the key may read)."""
    from modelport.monitoring.alerts.history import alert_history

    settings = _settings(config)
    if settings.registry_url is not None:
        from modelport.remote.monitoring import MonitoringCalls

        client = state().registry()
        assert isinstance(client, MonitoringCalls)  # the URL is set: the HTTP client
        history = client.alert_history(model, limit=limit)
    else:
        history = alert_history(
            state().local_registry("modelport monitor alerts").metadata,
            settings.monitor.alerts,
            model=model,
            limit=limit,
        )
    if as_json:
        print_json(history)
        return
    _print_history(history)


def _print_history(history: dict[str, Any]) -> None:
    rows = []
    for rule in history["rules"]:
        current = rule["state"] or {}
        condition = (
            f"{rule.get('signal', '?')} {rule.get('comparison', '')} {rule.get('threshold', '')}"
            if rule["configured"]
            else "(no longer configured)"
        )
        rows.append([rule["name"], rule["model"], condition, current.get("status", "inactive"),
                     current.get("since", ""), _number(current.get("value"))])  # fmt: skip
    print_table("rules", ["rule", "model", "condition", "status", "since", "value"], rows)
    events = [
        [e["id"], short_time_text(e["time"]), e["rule"], f"{e['from']} -> {e['to']}", e["message"]]
        for e in history["events"]
    ]
    if events:
        print_table("events", ["id", "time", "rule", "change", "message"], events)
    deliveries = [
        [d["event_id"], short_time_text(d["time"]), d["rule"], d["action"], d["target"],
         d["attempt"], "ok" if d["ok"] else (d["error"] or "failed")]
        for d in history["deliveries"]
    ]  # fmt: skip
    if deliveries:
        print_table(
            "deliveries", ["event", "time", "rule", "action", "target", "attempt", "result"],
            deliveries,
        )  # fmt: skip


def short_time_text(value: str) -> str:
    """An ISO timestamp from JSON data, cut to the second."""
    from datetime import datetime

    return short_time(datetime.fromisoformat(value))
