"""``modelport webhooks list|test``: the receivers of registry events in ``[webhooks.NAME]``."""

from __future__ import annotations

from typing import Any

import click

from modelport.cli.output import print_json, print_table, short_time
from modelport.cli.state import json_option, state
from modelport.config import REGISTRY_EVENTS, WebhookSettings
from modelport.errors import InvalidArgumentError


@click.group()
def webhooks() -> None:
    """Receivers of registry events (``[webhooks.NAME]`` in the config file): each gets the
    events it subscribes to as signed JSON, posted in the background after the change."""


@webhooks.command("list")
@json_option
def list_webhooks(as_json: bool) -> None:
    """List the configured receivers, their events and whether they are signed."""
    hooks = state().settings.webhooks
    rows = [_row(name, hook) for name, hook in sorted(hooks.items())]
    if as_json:
        print_json(rows)
        return
    table = [
        (row["name"], row["url"], _events_text(row["events"]), _signed_text(row)) for row in rows
    ]
    print_table(None, ["name", "url", "events", "signed"], table)


@webhooks.command("test")
@click.argument("name")
@json_option
def test(name: str, as_json: bool) -> None:
    """Send a test event (``webhook.test``) to receiver NAME now, with its retries; exit 1
    when it is not accepted."""
    from modelport.webhooks.dispatcher import deliver
    from modelport.webhooks.envelope import TEST_EVENT, Envelope

    settings = state().settings
    hook = _hook(settings.webhooks, name)
    payload = {"webhook": name, "message": "a test event from modelport", "actor": settings.actor}
    envelope = Envelope(TEST_EVENT, payload)
    attempts = deliver(name, hook, envelope, policy=settings.outgoing.policy())
    ok = bool(attempts) and attempts[-1].ok
    if as_json:
        print_json(
            {
                "webhook": name,
                "event": TEST_EVENT,
                "id": envelope.id,
                "delivered": ok,
                "attempts": [
                    {
                        "attempt": a.attempt,
                        "ok": a.ok,
                        "time": a.time.isoformat(),
                        "code": a.code,
                        "error": a.error,
                        "duration_s": a.duration_s,
                    }
                    for a in attempts
                ],
            }
        )
    else:
        for a in attempts:
            outcome = "accepted" if a.ok else f"failed: {a.error}"
            click.echo(f"attempt {a.attempt} at {short_time(a.time)}: {outcome}")
        click.echo(f"{name}: {'delivered' if ok else 'not delivered'} ({envelope.id})")
    if not ok:
        click.get_current_context().exit(1)


def _hook(hooks: dict[str, WebhookSettings], name: str) -> WebhookSettings:
    hook = hooks.get(name)
    if hook is None:
        known = ", ".join(sorted(hooks)) or "none (add a [webhooks.NAME] section to the config)"
        raise InvalidArgumentError(f"no webhook {name!r}; configured: {known}", field="name")
    return hook


def _row(name: str, hook: WebhookSettings) -> dict[str, Any]:
    from modelport.webhooks.sending import redacted

    return {
        "name": name,
        "url": redacted(hook.url),
        "events": list(hook.events),
        "secret_env": hook.secret_env,
        "signed": hook.secret_value() is not None,
        "timeout_s": hook.timeout.total_seconds(),
        "retries": hook.retries,
        "backoff_s": hook.backoff.total_seconds(),
    }


def _events_text(events: list[str]) -> str:
    return "all" if set(events) == set(REGISTRY_EVENTS) else ", ".join(events)


def _signed_text(row: dict[str, Any]) -> str:
    if row["signed"]:
        return f"yes ({row['secret_env']})"
    if row["secret_env"]:
        return f"no: {row['secret_env']} is unset"
    return "no"
