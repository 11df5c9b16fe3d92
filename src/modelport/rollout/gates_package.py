"""The gates on the package itself: its files (``artifacts``) and its interface
(``signature``, compared with the version in the target now)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelport.domain.entities import ModelVersion
from modelport.domain.gates import GateOutcome, GateResult
from modelport.errors import (
    CorruptModelFileError,
    CorruptPackageError,
    IntegrityError,
    SignatureVerificationError,
    UnsafeModelError,
)
from modelport.package.loaded import LoadedModel
from modelport.registry.signatures import verify_version
from modelport.rollout.gates import GateContext
from modelport.serving.compatibility import InterfaceChange, compare_interfaces
from modelport.serving.interface import ModelIO


class ArtifactGate:
    """The candidate's files match the digests recorded at registration (the manifest
    too), and its model loads from safe formats only (pickles restricted to the
    allow-list and to what was trusted at registration, which the details list)."""

    name = "artifacts"

    def evaluate(
        self, candidate: ModelVersion, baseline: ModelVersion | None, context: GateContext
    ) -> GateResult:
        """PASSED when the package verifies and loads; FAILED naming the file otherwise."""
        try:
            loaded = context.load(candidate)
        except IntegrityError as exc:
            return self._failed("integrity", exc.message, exc.field)
        except UnsafeModelError as exc:
            return self._failed("safe format", exc.message, exc.field)
        except (CorruptPackageError, CorruptModelFileError) as exc:
            return self._failed("readable", exc.message, exc.field)
        try:
            signing = _signing(candidate, context)
        except SignatureVerificationError as exc:
            return self._failed("model signature", exc.message, exc.field)
        manifest = loaded.manifest
        details = {
            "files_verified": len(manifest.files),
            "manifest_sha256": candidate.manifest_digest,
            "flavor": manifest.flavor.name,
            "trusted": list(manifest.trust.used),
            "signing": signing,
        }
        trusted = f"; trusted at registration: {', '.join(manifest.trust.used)}"
        message = (
            f"{len(manifest.files)} files match their sha256, the model loads from safe "
            f"formats{trusted if manifest.trust.used else ''}"
        )
        return GateResult(self.name, GateOutcome.PASSED, message, details)

    def _failed(self, check: str, message: str, where: str | None) -> GateResult:
        return GateResult(
            self.name, GateOutcome.FAILED, f"{check}: {message}", {"check": check, "file": where}
        )


def _signing(candidate: ModelVersion, context: GateContext) -> str:
    """What the candidate's model signature says (``registry.signatures``): a signed
    version must verify against the trusted keys; an unsigned one passes this gate (the
    ``[signing] require_signed`` policy is what refuses it)."""
    signature = context.registry.signature_file(candidate)
    if signature is None:
        return "unsigned"
    keys = [Path(key).expanduser() for key in context.settings.signing.trusted_keys]
    if not keys:
        return "signed, not verified: [signing] trusted_keys lists no public key"
    verified = verify_version(context.registry.artifacts, candidate, keys)
    return f"signed by {verified.public_key.name} (sha256 {verified.fingerprint[:16]})"


class SignatureGate:
    """Every request the baseline accepts today works the same on the candidate
    (``serving.compatibility``, the rule hot swaps follow)."""

    name = "signature"

    def evaluate(
        self, candidate: ModelVersion, baseline: ModelVersion | None, context: GateContext
    ) -> GateResult:
        """SKIPPED without a baseline; FAILED listing each breaking change."""
        if baseline is None:
            return GateResult(
                self.name, GateOutcome.SKIPPED, "no other version holds the target yet"
            )
        change = interface_change(context.load(baseline), context.load(candidate))
        details = {
            "baseline": baseline.version,
            "breaking": list(change.breaking),
            "compatible": list(change.compatible),
        }
        if change.breaking:
            message = f"breaks clients of version {baseline.version}: {change.describe()}"
            return GateResult(self.name, GateOutcome.FAILED, message, details)
        message = f"compatible with version {baseline.version}"
        if change.compatible:
            message += f" ({'; '.join(change.compatible)})"
        return GateResult(self.name, GateOutcome.PASSED, message, details)


def interface_change(old: LoadedModel, new: LoadedModel) -> InterfaceChange:
    """How ``new``'s interface differs from ``old``'s for ``old``'s clients."""
    before, after = old.signature, new.signature
    return compare_interfaces(
        _io(old),
        _io(new),
        old_signed=before is not None,
        new_signed=after is not None,
        old_params=before.params if before is not None else None,
        new_params=after.params if after is not None else None,
    )


def _io(loaded: LoadedModel) -> ModelIO:
    return ModelIO.from_signature(
        loaded.signature, supports_proba=loaded.supports_proba, n_classes=_classes(loaded)
    )


def _classes(loaded: LoadedModel) -> int | None:
    """How many class probabilities the model gives (from its input example), so that
    a classifier that gained or lost a class shows as a changed output; None when
    unknown."""
    if not loaded.supports_proba:
        return None
    example = loaded.input_example()
    if example is None:
        return None
    shape = np.shape(np.asarray(loaded.predict_proba(example)))
    return int(shape[-1]) if len(shape) == 2 else None
