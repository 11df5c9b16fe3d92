"""Key pairs for signing models: an EC P-256 private key (PEM, readable by its owner
only) and its public key, which servers and registries list as trusted."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from modelport.errors import InvalidArgumentError, PackageExistsError
from modelport.flavors.dependencies import require
from modelport.package.signing import key_fingerprint


@dataclass(frozen=True)
class KeyPair:
    """Where a generated key pair was written."""

    private_key: Path
    public_key: Path
    fingerprint: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {
            "private_key": str(self.private_key),
            "public_key": str(self.public_key),
            "fingerprint": self.fingerprint,
        }


def generate_key_pair(out: Path, *, overwrite: bool = False) -> KeyPair:
    """Write ``OUT.pem`` (private, mode 0600) and ``OUT.pub`` (public) for an EC P-256
    key; refuse to overwrite existing files unless ``overwrite``."""
    serialization = require("cryptography.hazmat.primitives.serialization", extra="signing")
    ec = require("cryptography.hazmat.primitives.asymmetric.ec", extra="signing")
    private_path, public_path = out.with_name(out.name + ".pem"), out.with_name(out.name + ".pub")
    existing = [p for p in (private_path, public_path) if p.exists()]
    if existing and not overwrite:
        raise PackageExistsError(
            f"{existing[0]} exists; choose another --out or pass --overwrite",
            field="out",
        )
    if not private_path.parent.is_dir():
        raise InvalidArgumentError(f"no such directory: {private_path.parent}", field="out")
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    _write_private(private_path, private_pem)
    public_path.write_bytes(public_pem)
    return KeyPair(private_path, public_path, key_fingerprint(public_path))


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: the key is never readable by others, even briefly.
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
