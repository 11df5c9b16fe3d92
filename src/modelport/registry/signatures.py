"""Model signatures of registered versions: signing, storing, verifying, and the policy.

A registered version's package never changes (its manifest digest is in the version's
row), so its OpenSSF model signature is stored *beside* the package, like recomputed
reference statistics: ``model.sig`` under its own artifact key
``<package key>.sig-<sha256 prefix>``, with the key and the signature's sha256 recorded
on the version as the tag ``modelport.model_signature = "<key> <sha256>"``. Signing
checks the package against the digests recorded at registration, uploads the signature,
then sets the tag in one transaction with the audit entry ``version.sign`` (the signing
key's fingerprint), and announces the tag (``model_version.tag_set``); a later signature
replaces the earlier one. ``modelport version verify`` records ``version.verify`` with its outcome.

The policy (``[signing] require_signed``): a move of a version to a stage or alias
listed there first verifies its signature against the trusted keys, outside the
transaction (hashing reads every file); an unsigned, tampered or untrusted version is
refused with ``SignatureVerificationError``, whatever ``force`` or skipped gates say,
and the move's audit entry records the key that signed it (``"signed_by"``).
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelport.artifacts.store import ArtifactStore
from modelport.domain.entities import ModelVersion
from modelport.errors import SignatureVerificationError
from modelport.package.reader import verify_package
from modelport.package.signing import (
    SIGNATURE_FILE,
    Verified,
    check_public_key_pem,
    private_key_fingerprint,
    sign_directory,
    verify_directory,
)
from modelport.registry import events
from modelport.registry.context import RegistryContext
from modelport.registry.lookups import require_version

SIGNATURE_TAG = "modelport.model_signature"


def signature_key(version: ModelVersion) -> str | None:
    """The artifact key of the version's signature (None: unsigned, or a bad tag)."""
    key = version.tags.get(SIGNATURE_TAG, "").partition(" ")[0]
    return key if key.startswith(version.artifact_key + ".sig-") else None


def signature_file(artifacts: ArtifactStore, version: ModelVersion) -> Path | None:
    """The local copy of the version's signature, checked against the sha256 its tag
    records; None when the version is unsigned."""
    value = version.tags.get(SIGNATURE_TAG)
    if not value:
        return None
    key, _, digest = value.partition(" ")
    if signature_key(version) != key or len(digest) != 64:
        raise _bad_signature(
            version, f"its tag {SIGNATURE_TAG} does not name a signature stored for it ({value!r})"
        )
    path = artifacts.local_path(key) / SIGNATURE_FILE
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        raise _bad_signature(version, "its stored signature does not match the recorded sha256")
    return path


def _bad_signature(version: ModelVersion, why: str) -> SignatureVerificationError:
    return SignatureVerificationError(
        f"the signature {SIGNATURE_FILE} of {version.name}/{version.version} cannot be used: "
        f"{why}; sign it again with: "
        f"modelport version sign {version.name}/{version.version} --key KEY.pem",
        reason="unreadable",
        model=version.name,
        version=version.version,
        field=SIGNATURE_FILE,
    )


def verify_version(
    artifacts: ArtifactStore, version: ModelVersion, public_keys: Sequence[Path]
) -> Verified:
    """Verify the version's package against its stored signature and ``public_keys``."""
    return verify_directory(
        artifacts.local_path(version.artifact_key),
        signature_file(artifacts, version),
        public_keys,
        what=f"{version.name}/{version.version}",
        model=version.name,
        version=version.version,
    )


class VersionSigning:
    """Signs and verifies registered versions, and checks the policy before moves."""

    def __init__(self, context: RegistryContext) -> None:
        self._context = context

    def sign(
        self, version: ModelVersion, private_key: Path, *, password: str | None = None
    ) -> ModelVersion:
        """Sign the version's package with ``private_key`` and store the signature; the
        package is checked against the digests recorded at registration first, so that
        only what was registered is ever signed."""
        directory = self._context.artifacts.local_path(version.artifact_key)
        verify_package(directory, version.manifest_digest)
        with tempfile.TemporaryDirectory(prefix="modelport-sign-") as scratch:
            signature = Path(scratch) / SIGNATURE_FILE
            sign_directory(directory, private_key, signature, password=password)
            fingerprint = private_key_fingerprint(private_key, password=password)
            return self._store(version, signature.read_bytes(), fingerprint)

    def attach(self, version: ModelVersion, signature: bytes, public_key: bytes) -> ModelVersion:
        """Store a signature made elsewhere (a client signing its downloaded copy, so that
        the private key never leaves it), once it holds for the package as stored: made
        by ``public_key`` (PEM) over exactly the stored files, checked against the
        digests recorded at registration first. ``SignatureVerificationError`` otherwise."""
        check_public_key_pem(public_key)  # before its scratch file could appear in a message
        directory = self._context.artifacts.local_path(version.artifact_key)
        verify_package(directory, version.manifest_digest)
        with tempfile.TemporaryDirectory(prefix="modelport-attach-") as scratch:
            received, key = Path(scratch) / SIGNATURE_FILE, Path(scratch) / "signer.pub"
            received.write_bytes(signature)
            key.write_bytes(public_key)
            verified = verify_directory(
                directory,
                received,
                [key],
                what=f"{version.name}/{version.version}",
                model=version.name,
                version=version.version,
            )
        return self._store(version, signature, verified.fingerprint)

    def _store(self, version: ModelVersion, body: bytes, fingerprint: str) -> ModelVersion:
        """Upload ``body`` beside the package, point the version's tag at it (audited)
        and announce the tag; the signature it replaces is deleted."""
        context = self._context
        digest = hashlib.sha256(body).hexdigest()
        key = f"{version.artifact_key}.sig-{digest[:16]}"
        if not context.artifacts.exists(key):
            with tempfile.TemporaryDirectory(prefix="modelport-sign-") as scratch:
                (Path(scratch) / SIGNATURE_FILE).write_bytes(body)
                context.artifacts.put_directory(Path(scratch), key, {SIGNATURE_FILE: digest})
        previous = signature_key(version)
        tag = f"{key} {digest}"
        updated = self._record(version, tag, fingerprint)
        if previous is not None and previous != key:
            _delete_quietly(context.artifacts, previous)
        changed = events.tags_set(
            version.name, version.version, {SIGNATURE_TAG: tag}, actor=context.actor
        )
        events.announce(context, changed)
        return updated

    def _record(self, version: ModelVersion, tag: str, fingerprint: str) -> ModelVersion:
        context = self._context
        name, number = version.name, version.version
        with context.metadata.transaction() as tx:
            current = require_version(tx, name, number)
            before = current.tags.get(SIGNATURE_TAG)
            tx.set_version_tag(name, number, SIGNATURE_TAG, tag)
            after = {"signature": tag.partition(" ")[0], "key": fingerprint}
            context.audit(
                tx,
                "version.sign",
                name,
                version=number,
                before={"signature": before.partition(" ")[0] if before else None},
                after=after,
            )
            return require_version(tx, name, number)

    def verify(self, version: ModelVersion, public_keys: Sequence[Path]) -> Verified:
        """Verify the version, recording the outcome in the audit trail either way."""
        try:
            verified = verify_version(self._context.artifacts, version, public_keys)
        except SignatureVerificationError as exc:
            self._audit_verify(version, {"outcome": "failed", "reason": exc.reason})
            raise
        self._audit_verify(version, {"outcome": "passed", "key": verified.fingerprint})
        return verified

    def _audit_verify(self, version: ModelVersion, after: dict[str, Any]) -> None:
        with self._context.metadata.transaction() as tx:
            self._context.audit(
                tx, "version.verify", version.name, version=version.version, after=after
            )


def check_policy(context: RegistryContext, version: ModelVersion, target: str) -> dict[str, Any]:
    """Refuse a version the policy requires to be signed for ``target`` unless its
    signature holds; what the move's audit entry records of it."""
    policy = context.signing
    if policy is None or not policy.requires(target):
        return {}
    verified = verify_version(context.artifacts, version, policy.trusted_keys)
    return {"signed_by": verified.fingerprint}


def _delete_quietly(artifacts: ArtifactStore, key: str) -> None:
    # The tag points at the new signature already: a failure leaves unreferenced files.
    with contextlib.suppress(OSError):
        artifacts.delete(key)
