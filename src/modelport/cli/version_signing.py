"""``modelport version sign|verify``: OpenSSF model signatures of versions and packages.

Both take a registry reference (``churn/3``, ``churn@production``) or a package
directory, by the rule every command follows (``package.location``): a version's
signature is stored beside its package by the registry; a directory's is
``DIR/model.sig`` unless ``--signature`` says otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from modelport.cli.output import print_fields, print_json
from modelport.cli.state import json_option, state
from modelport.package.location import locate_model
from modelport.package.signing import SIGNATURE_FILE

_signature_option = click.option(
    "--signature",
    type=click.Path(path_type=Path),
    help=f"For a package directory: the signature file (default DIR/{SIGNATURE_FILE}).",
)


@click.command("sign")
@click.argument("target")
@click.option(
    "--key",
    "private_key",
    required=True,
    type=click.Path(path_type=Path),
    help="The EC private key in PEM (modelport keys generate writes NAME.pem).",
)
@_signature_option
@json_option
def sign(target: str, private_key: Path, signature: Path | None, as_json: bool) -> None:
    """Sign TARGET: a registered version (NAME/VERSION, NAME@ALIAS) or a package
    directory, in the OpenSSF Model Signing format (a Sigstore bundle over the sha256 of
    every file). The model_signing command verifies it too.

    With MODELPORT_REGISTRY_URL set, the version's package is downloaded (every sha256
    checked) and signed here: only the signature and the public key go to the control
    plane, which stores it once it holds for the package it keeps (a deploy key on the
    model). The private key never leaves this machine."""
    from modelport.package.signing import private_key_fingerprint, sign_directory

    found = locate_model(target)
    if isinstance(found, Path):
        written = signature or found / SIGNATURE_FILE
        sign_directory(found, private_key, written)
        result: dict[str, Any] = {"package": str(found), "signature": str(written)}
    else:
        from modelport.registry.signatures import SIGNATURE_TAG

        updated = state().registry().sign_version(found, private_key)
        key = updated.tags[SIGNATURE_TAG].partition(" ")[0]
        result = {"model": updated.name, "version": updated.version, "signature": key}
    result["key"] = private_key_fingerprint(private_key)
    if as_json:
        print_json(result)
        return
    what = result.get("package") or f"{result['model']}/{result['version']}"
    click.echo(f"Signed {what}.")
    print_fields([("signature", result["signature"]), ("fingerprint", result["key"])])


@click.command("verify")
@click.argument("target")
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A trusted public key in PEM (repeatable); default [signing] trusted_keys.",
)
@_signature_option
@json_option
def verify(
    target: str, public_keys: tuple[Path, ...], signature: Path | None, as_json: bool
) -> None:
    """Verify TARGET (a registered version or a package directory) against its
    signature: made by a trusted key, and every file exactly as signed. Exit code 1
    names the file or signature that failed.

    With MODELPORT_REGISTRY_URL set, a version's package and signature are downloaded
    (every sha256 checked) and verified here, with these public keys."""
    keys = list(public_keys) or [
        Path(k).expanduser() for k in state().settings.signing.trusted_keys
    ]
    found = locate_model(target)
    if isinstance(found, Path):
        from modelport.package.signing import verify_directory

        used = signature or found / SIGNATURE_FILE
        verified = verify_directory(found, used, keys, what=str(found))
        result: dict[str, Any] = {"package": str(found), "signature": str(used)}
    else:
        registry = state().registry()
        version = registry.resolve(found)
        verified = registry.verify_version(found, keys)
        result = {"model": version.name, "version": version.version}
    result.update(verified=True, key=verified.fingerprint, public_key=str(verified.public_key))
    if as_json:
        print_json(result)
        return
    what = result.get("package") or f"{result['model']}/{result['version']}"
    click.echo(f"Verified {what}: signed by {verified.public_key} ({verified.fingerprint[:16]}).")
