"""``modelport keys generate``: a key pair for signing models."""

from __future__ import annotations

from pathlib import Path

import click

from modelport.cli.output import print_fields, print_json
from modelport.cli.state import json_option


@click.group()
def keys() -> None:
    """Key pairs that sign models (modelport version sign) and verify them ([signing])."""


@keys.command("generate")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Path prefix: writes OUT.pem (private key, mode 0600) and OUT.pub (public key).",
)
@click.option("--overwrite", is_flag=True, help="Replace existing OUT.pem and OUT.pub.")
@json_option
def generate(out: Path, overwrite: bool, as_json: bool) -> None:
    """Write an EC P-256 key pair in PEM: OUT.pem signs models (keep it secret: it is
    written readable by you only), OUT.pub goes in [signing] trusted_keys wherever
    versions are verified."""
    from modelport.security.signing_keys import generate_key_pair

    pair = generate_key_pair(out, overwrite=overwrite)
    if as_json:
        print_json(pair.to_dict())
        return
    click.echo("Generated a signing key pair (EC P-256).")
    print_fields(
        [
            ("private key", f"{pair.private_key} (mode 0600: keep it secret)"),
            ("public key", pair.public_key),
            ("fingerprint", pair.fingerprint),
        ]
    )
