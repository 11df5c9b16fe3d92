"""The version checks of ``RegistryClient``: reference statistics, signing, verifying and
the promotion gates of a registered version, with ``RegistryService``'s signatures (what
``modelport version stats|sign|verify|validate`` do against a control plane).

* Statistics: the sample goes up (Parquet for a table, NumPy for an array); the server
  computes and stores them (``POST .../stats``).
* Signing: the package comes down (every sha256 checked), is signed *here*, and only
  the signature and the public key go up (``POST .../signature``): the private key never
  leaves this machine, and the server stores the signature only once it holds for the
  package it stores.
* Verifying: the package and its signature come down; the check runs here.
* Gates: they run on the control plane (``POST .../validate``), over its prediction log,
  with the holdout file uploaded when one is given.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from modelport.domain import wire
from modelport.domain.entities import ModelVersion
from modelport.domain.gates import GateOutcome, GateReport, GateResult
from modelport.domain.refs import ModelRef
from modelport.errors import (
    IntegrityError,
    InvalidArgumentError,
    ModelportError,
    SignatureVerificationError,
)
from modelport.package.signing import (
    SIGNATURE_FILE,
    Verified,
    public_key_pem,
    sign_directory,
    verify_directory,
)
from modelport.registry.signatures import SIGNATURE_TAG

_DATA = {"content-type": "application/octet-stream"}


class VersionCalls:
    """Version checks over HTTP; the client supplies ``_json``, ``_send`` (one request,
    its answer or the error it stands for), ``resolve`` and ``package_dir`` (a version's
    package downloaded into the cache, digests checked)."""

    _json: Callable[..., Any]
    _send: Callable[..., Any]
    resolve: Callable[..., ModelVersion]
    package_dir: Callable[[ModelVersion], Path]

    def recompute_reference_stats(self, ref: str | ModelRef, sample: Any) -> ModelVersion:
        """Compute the version's reference statistics on the server from ``sample`` (a
        DataFrame or an array) and its predictions there; stored beside its package."""
        version = self.resolve(ref)
        with tempfile.TemporaryFile() as spool:
            fmt = write_sample(sample, spool)
            found = self._json("POST", f"{_version_path(version)}/stats", content=spool,
                               params={"format": fmt}, headers=_DATA)  # fmt: skip
        return wire.version_from_wire(found)

    def sign_version(
        self, ref: str | ModelRef, private_key: Path, *, password: str | None = None
    ) -> ModelVersion:
        """Sign the version's package here with an EC private key (PEM) and store the
        signature on the server, which checks it against the package it holds."""
        version = self.resolve(ref)
        public = public_key_pem(private_key, password=password)  # the key is readable
        directory = self.package_dir(version)
        with tempfile.TemporaryDirectory(prefix="modelport-sign-") as scratch:
            signature = Path(scratch) / SIGNATURE_FILE
            sign_directory(directory, private_key, signature, password=password)
            body = {"signature": base64.b64encode(signature.read_bytes()).decode("ascii"),
                    "public_key": public.decode("ascii")}  # fmt: skip
        found = self._json("POST", f"{_version_path(version)}/signature", json=body)
        return wire.version_from_wire(found)

    def verify_version(
        self, ref: str | ModelRef, public_keys: Sequence[Path] | None = None
    ) -> Verified:
        """Verify the version's package, downloaded here, against its stored signature
        and ``public_keys``; ``SignatureVerificationError`` naming what failed. The
        control plane then verifies its stored copy with the same keys and records the
        outcome (``version.verify``), as a verification over the database does."""
        version = self.resolve(ref)
        keys = list(public_keys or ())
        try:
            verified = self.check_signature(version, keys)
        except SignatureVerificationError:
            with contextlib.suppress(ModelportError):  # it fails there too: recorded
                self._record_verification(version, keys)
            raise
        self._record_verification(version, keys)  # a server copy that differs: raised
        return verified

    def check_signature(self, version: ModelVersion, public_keys: Sequence[Path]) -> Verified:
        """The version's package, downloaded here (digests checked), verified against its
        stored signature and ``public_keys``; nothing recorded on the server."""
        directory = self.package_dir(version)
        with tempfile.TemporaryDirectory(prefix="modelport-verify-") as scratch:
            signature = self.download_signature(version, Path(scratch) / SIGNATURE_FILE)
            return verify_directory(directory, signature, list(public_keys),
                                    what=f"{version.name}/{version.version}",
                                    model=version.name, version=version.version)  # fmt: skip

    def _record_verification(self, version: ModelVersion, public_keys: Sequence[Path]) -> None:
        keys = [{"name": key.name, "pem": key.read_text(encoding="utf-8")} for key in public_keys]
        self._json("POST", f"{_version_path(version)}/verify", json={"public_keys": keys})

    def download_signature(self, version: ModelVersion, target: Path) -> Path | None:
        """The version's stored signature written to ``target``, checked against the
        sha256 its tag records; None when the version is unsigned."""
        tag = version.tags.get(SIGNATURE_TAG)
        if not tag:
            return None
        body = self._send("GET", f"{_version_path(version)}/signature").content
        if hashlib.sha256(body).hexdigest() != tag.partition(" ")[2]:
            raise IntegrityError(
                f"the signature of {version.name}/{version.version} the registry sent does "
                "not match the sha256 its tag records",
                model=version.name,
                version=version.version,
                field=SIGNATURE_FILE,
            )
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.write_bytes(body)
        partial.replace(target)  # whole, even with other processes sharing the cache
        return target

    def validate_version(
        self,
        ref: str | ModelRef,
        target: str = "production",
        *,
        holdout: Path | None = None,
        label: str | None = None,
    ) -> GateReport:
        """Run the control plane's promotion gates for the version going to ``target``
        without moving it (with ``holdout`` uploaded, else its ``[gates] holdout``)."""
        version = self.resolve(ref)
        path = f"{_version_path(version)}/validate"
        params = {"to": target, **({"label": label} if label is not None else {})}
        if holdout is None:
            return report_from_wire(self._json("POST", path, params=params))
        params.update(format=_holdout_format(holdout), holdout=str(holdout))
        with holdout.open("rb") as body:
            found = self._json("POST", path, content=body, headers=_DATA, params=params)
        return report_from_wire(found)


def report_from_wire(data: dict[str, Any]) -> GateReport:
    """A ``GateReport`` from its ``to_dict()``."""
    results = tuple(
        GateResult(r["gate"], GateOutcome(r["outcome"]), r["message"], dict(r["details"]))
        for r in data["results"]
    )
    return GateReport(data["model"], int(data["version"]), data["target"], results,
                      baseline=data.get("baseline"))  # fmt: skip


def write_sample(sample: Any, spool: IO[bytes]) -> str:
    """Write ``sample`` to ``spool`` as the server reads it back unchanged; its format."""
    import numpy as np
    import pandas as pd

    if isinstance(sample, np.ndarray):
        np.save(spool, sample, allow_pickle=False)
        fmt = "npy"
    else:
        frame = sample if isinstance(sample, pd.DataFrame) else pd.DataFrame(sample)
        frame.to_parquet(spool)
        fmt = "parquet"
    spool.seek(0)
    return fmt


def _holdout_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if not path.is_file():
        raise InvalidArgumentError(f"no such holdout file: {path}", field="holdout")
    if suffix not in ("csv", "parquet"):
        raise InvalidArgumentError(
            f"cannot read a holdout from {path.name}: use .csv or .parquet", field="holdout"
        )
    return suffix


def _version_path(version: ModelVersion) -> str:
    name = quote(version.name, safe="")
    return f"/api/registry/models/{name}/versions/{int(version.version)}"
