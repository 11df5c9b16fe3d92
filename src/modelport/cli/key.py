"""``modelport key create|list|revoke``: the API keys servers check requests against."""

from __future__ import annotations

import click

from modelport.cli.output import print_fields, print_json, print_table, short_time
from modelport.cli.state import json_option, state
from modelport.client import RegistryClient
from modelport.domain.keys import ACCEPTED_SCOPES, ApiKey
from modelport.security.key_admin import KeyAdmin, parse_expiry


def _admin() -> KeyAdmin | RegistryClient:
    """The keys of the database, or of the control plane at MODELPORT_REGISTRY_URL (an
    admin key's routes: ``/api/keys``)."""
    registry = state().registry()
    if isinstance(registry, RegistryClient):
        return registry
    return KeyAdmin(registry.metadata)


@click.group()
def key() -> None:
    """API keys: requests carry one as `Authorization: Bearer <key>`; its scopes say
    which routes and models it may call (see docs/security.md)."""


@key.command("create")
@click.option("--name", required=True, help="The key's name: the audit trail's actor key:NAME.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help=f"What the key may do, repeatable: {ACCEPTED_SCOPES}.",
)
@click.option(
    "--expires", metavar="DURATION", help="Lifetime, e.g. 90d, 12h or 30m.  [default: never]"
)
@click.option("--rate-limit", metavar="RATE", help="This key's rate limit, e.g. 50/s or 6000/m.")
@click.option(
    "--daily-quota", type=int, metavar="N", help="Requests this key may make per UTC day."
)
@json_option
def create_key(
    *,
    name: str,
    scopes: tuple[str, ...],
    expires: str | None,
    rate_limit: str | None,
    daily_quota: int | None,
    as_json: bool,
) -> None:
    """Create an API key and print it: it is shown this once (only a hash is stored)."""
    admin = _admin()
    if isinstance(admin, RegistryClient):  # the server parses and records the same
        created, token = admin.create_key(
            name, scopes, expires=expires, rate_limit=rate_limit, daily_quota=daily_quota
        )
    else:
        created, token = admin.create(
            name,
            scopes,
            actor=state().settings.actor,
            expires_in=parse_expiry(expires) if expires is not None else None,
            rate_limit=rate_limit,
            daily_quota=daily_quota,
        )
    if as_json:
        print_json({**created.to_dict(), "key": token})
        return
    click.echo(token)
    click.echo(
        f"created key {created.name!r} (id {created.key_id}) with scopes "
        f"{', '.join(created.scopes)}; this is the only time the key is shown: store it now",
        err=True,
    )


@key.command("list")
@json_option
def list_keys(as_json: bool) -> None:
    """List every key (never a secret): scopes, expiry, revocation."""
    admin = _admin()
    keys = admin.list_keys() if isinstance(admin, RegistryClient) else admin.list()
    if as_json:
        print_json([k.to_dict() for k in keys])
        return
    rows = [
        (
            k.key_id,
            k.name,
            " ".join(k.scopes),
            _state(k),
            short_time(k.expires_at) if k.expires_at else "never",
            k.created_by,
        )
        for k in keys
    ]
    print_table(None, ["id", "name", "scopes", "state", "expires", "created by"], rows)


def _state(key: ApiKey) -> str:
    if key.revoked_at is not None:
        return f"revoked {short_time(key.revoked_at)}"
    from modelport.registry.context import utc_now

    return "active" if key.usable_at(utc_now()) else "expired"


@key.command("revoke")
@click.argument("name_or_id", metavar="NAME_OR_ID")
@json_option
def revoke_key(name_or_id: str, as_json: bool) -> None:
    """Revoke a key by its id, or by its name when one unrevoked key has it. Servers
    refuse it within [security] keys_refresh_s (default 5 s)."""
    admin = _admin()
    if isinstance(admin, RegistryClient):
        revoked = admin.revoke_key(name_or_id)
    else:
        revoked = admin.revoke(name_or_id, actor=state().settings.actor)
    if as_json:
        print_json(revoked.to_dict())
        return
    print_fields([("revoked", f"{revoked.name} ({revoked.key_id})"), ("by", revoked.revoked_by)])
