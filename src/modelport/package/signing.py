"""Signing a package directory, and verifying it, in the OpenSSF Model Signing format.

A signature is a Sigstore bundle made by the ``model-signing`` library
(``pip install 'modelport[signing]'``) with an elliptic-curve private key: a DSSE
envelope over an in-toto statement listing the sha256 of every file in the directory.
modelport signs exactly as the ``model_signing sign key`` command does (same hashing
settings; the signature file itself, git files and Python bytecode caches are left out),
so either tool verifies what the other signed.

A package directory carries its signature as ``model.sig`` at its root (not a package
file: ``package.digests`` leaves it out). A registered version's signature is stored
beside its package by the registry (``registry.signatures``), since the package of a
registered version never changes.

``SigningPolicy`` is what ``[signing]`` asks: the public keys trusted to sign, and the
stages or aliases that take signed versions only.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.config import SigningSettings
from modelport.errors import InvalidArgumentError, SignatureVerificationError
from modelport.flavors.dependencies import require

SIGNATURE_FILE = "model.sig"
"""The signature's file name, at the root of a package directory or beside a version."""

ANY_TARGET = "*"
"""In ``require_signed``: every version and package a server loads."""

# The curves model_signing signs and verifies with.
_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})
# Python writes these next to custom model code when it is imported.
_BYTECODE_DIR = "__pycache__"
# What model_signing's verifier says when the files differ from the signed ones.
_FILE_NAMED = re.compile(
    r"Hash mismatch for '([^']+)'|(?:Extra files found|Missing files) in model '[^']*': ([^,\]\"]+)"
)


@dataclass(frozen=True)
class Verified:
    """A signature that holds: which trusted key made it."""

    public_key: Path
    fingerprint: str  # sha256 of the key's PEM, as model_signing records it


@dataclass(frozen=True)
class SigningPolicy:
    """The trusted public keys and the stages or aliases that need signed versions."""

    trusted_keys: tuple[Path, ...]
    require_signed: frozenset[str]

    @classmethod
    def from_settings(cls, settings: SigningSettings) -> SigningPolicy | None:
        """The policy of ``[signing]``; None when nothing requires signed versions."""
        if not settings.require_signed:
            return None
        keys = tuple(Path(k).expanduser() for k in settings.trusted_keys)
        return cls(keys, frozenset(settings.require_signed))

    def requires(self, target: str | None) -> bool:
        """Whether versions going to (or loaded for) ``target`` must be signed; None is a
        version or package loaded without an alias (only ``*`` covers it)."""
        return ANY_TARGET in self.require_signed or (
            target is not None and target in self.require_signed
        )


def key_fingerprint(public_key: Path) -> str:
    """The hex sha256 of a PEM public key, normalised (model_signing's key hint)."""
    return _fingerprint(_read_public_key(public_key))


def private_key_fingerprint(private_key: Path, *, password: str | None = None) -> str:
    """The fingerprint of a PEM private key's public half (as its trusted key's)."""
    return _fingerprint(_read_private_key(private_key, password).public_key())


def public_key_pem(private_key: Path, *, password: str | None = None) -> bytes:
    """The PEM of a PEM private key's public half (what a registry checks a signature
    made on another machine with; the private key stays there)."""
    serialization = require("cryptography.hazmat.primitives.serialization", extra="signing")
    public: bytes = (
        _read_private_key(private_key, password)
        .public_key()
        .public_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    return public


def check_public_key_pem(pem: bytes) -> None:
    """Refuse ``pem`` (sent by a client) unless it is an EC P-256, P-384 or P-521 public
    key in PEM, what signatures verify with; the message names no file."""
    serialization = require("cryptography.hazmat.primitives.serialization", extra="signing")
    ec = require("cryptography.hazmat.primitives.asymmetric.ec", extra="signing")
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise InvalidArgumentError(
            "public_key is not a PEM public key", field="public_key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise InvalidArgumentError(
            "public_key is not an EC P-256, P-384 or P-521 public key", field="public_key"
        )


def _read_private_key(private_key: Path, password: str | None) -> Any:
    serialization = require("cryptography.hazmat.primitives.serialization", extra="signing")
    try:
        return serialization.load_pem_private_key(
            private_key.read_bytes(), password.encode() if password else None
        )
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidArgumentError(
            f"cannot read the private key {private_key}: {exc}", field="key"
        ) from None


def _fingerprint(public_key: Any) -> str:
    serialization = require("cryptography.hazmat.primitives.serialization", extra="signing")
    pem = public_key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return hashlib.sha256(pem).hexdigest()


def sign_directory(
    directory: Path, private_key: Path, signature: Path, *, password: str | None = None
) -> None:
    """Sign every file in ``directory`` with the EC private key (PEM) into ``signature``."""
    model_signing = require("model_signing", extra="signing", package="model-signing")
    if not private_key.is_file():
        raise InvalidArgumentError(f"no such private key file: {private_key}", field="key")
    try:
        config = model_signing.signing.Config().use_elliptic_key_signer(
            private_key=private_key, password=password
        )
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(
            f"cannot use {private_key} as a signing key (an EC P-256, P-384 or P-521 private "
            f"key in PEM, as modelport keys generate writes): {exc}",
            field="key",
        ) from None
    config.set_hashing_config(_hashing(directory, signature)).sign(directory, signature)


def verify_directory(
    directory: Path,
    signature: Path | None,
    public_keys: Sequence[Path],
    *,
    what: str,
    model: str | None = None,
    version: int | None = None,
) -> Verified:
    """Check that one of ``public_keys`` signed ``signature`` and that ``directory``
    holds exactly the signed files; ``SignatureVerificationError`` naming the file or
    signature that failed otherwise. ``what`` names the package in messages."""
    fields: dict[str, Any] = {"model": model, "version": version}
    if signature is None or not signature.is_file():
        raise SignatureVerificationError(
            f"{what} is not signed (no {SIGNATURE_FILE}); sign it with: modelport version sign "
            "... --key KEY.pem",
            reason="unsigned",
            field=SIGNATURE_FILE,
            **fields,
        )
    if not public_keys:
        raise InvalidArgumentError(
            "no public key to verify with: pass --public-key or list [signing] trusted_keys",
            field="public_key",
        )
    failures = []
    for key in public_keys:
        failure = _verify_with(directory, signature, key, what=what, fields=fields)
        if failure is None:
            return Verified(key, key_fingerprint(key))
        failures.append(f"{key.name}: {failure}")
    raise SignatureVerificationError(
        f"the signature {SIGNATURE_FILE} of {what} was not made by a trusted key "
        f"({'; '.join(failures)})",
        reason="untrusted",
        field=SIGNATURE_FILE,
        **fields,
    )


def _verify_with(
    directory: Path, signature: Path, key: Path, *, what: str, fields: dict[str, Any]
) -> str | None:
    """None when ``key`` verifies; why not when the signature is not ``key``'s. Raises
    when the signature is ``key``'s but the files differ, or cannot be read."""
    model_signing = require("model_signing", extra="signing", package="model-signing")
    _read_public_key(key)
    try:
        config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=key)
    except (ValueError, AttributeError):  # RSA, Ed25519 or an unsupported curve
        raise InvalidArgumentError(
            f"{key} is not an EC P-256, P-384 or P-521 public key", field="public_key"
        ) from None
    config.set_hashing_config(_hashing(directory, signature))
    try:
        config.verify(directory, signature)
    except ValueError as exc:
        text = str(exc)
        if text.startswith("Signature mismatch"):
            raise _tampered(text, what, fields) from None
        if "Key mismatch" in text:
            return "signed by another key"
        raise _unreadable(text, what, fields) from None
    except Exception as exc:  # InvalidSignature, a malformed bundle: not this key's
        if type(exc).__name__ == "InvalidSignature":
            return "the signature does not verify with this key"
        raise _unreadable(f"{type(exc).__name__}: {exc}", what, fields) from None
    return None


def _tampered(text: str, what: str, fields: dict[str, Any]) -> SignatureVerificationError:
    detail = text.removeprefix("Signature mismatch: ")
    differences = [detail]
    with contextlib.suppress(ValueError, SyntaxError):  # model_signing lists the differences
        differences = [str(d) for d in ast.literal_eval(detail)]
    named = (_FILE_NAMED.match(d) for d in differences)
    found = next((m for m in named if m is not None), None)
    name = next((g for g in found.groups() if g), None) if found else None
    return SignatureVerificationError(
        f"{what} does not match its signature: {'; '.join(map(_difference, differences))}",
        reason="tampered",
        field=name.strip() if name else None,
        **fields,
    )


def _difference(text: str) -> str:
    """One difference, without the digests' byte strings model_signing prints."""
    changed = re.match(r"Hash mismatch for '([^']+)'", text)
    return f"{changed[1]!r} differs from the signed file" if changed else text


def _unreadable(text: str, what: str, fields: dict[str, Any]) -> SignatureVerificationError:
    return SignatureVerificationError(
        f"the signature {SIGNATURE_FILE} of {what} cannot be read as an OpenSSF model "
        f"signature: {text}",
        reason="unreadable",
        field=SIGNATURE_FILE,
        **fields,
    )


def _hashing(directory: Path, signature: Path) -> Any:
    """model_signing's hashing settings for ``directory``: its defaults (sha256 per file,
    git files left out), leaving out the signature and Python bytecode caches too."""
    model_signing = require("model_signing", extra="signing", package="model-signing")
    root = directory.resolve()
    ignored = [p.relative_to(root) for p in root.rglob(_BYTECODE_DIR) if p.is_dir()]
    with contextlib.suppress(ValueError):  # unless the signature lives outside it
        ignored.append(signature.resolve().relative_to(root))
    return model_signing.hashing.Config().set_ignored_paths(paths=ignored, ignore_git_paths=True)


def _read_public_key(path: Path) -> Any:
    serialization = require("cryptography.hazmat.primitives.serialization", extra="signing")
    try:
        return serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise InvalidArgumentError(
            f"cannot read the public key {path}: {exc.strerror}", field="public_key"
        ) from None
    except ValueError:
        raise InvalidArgumentError(
            f"{path} is not a PEM public key (modelport keys generate writes NAME.pub)",
            field="public_key",
        ) from None
