"""What a server is asked to serve: registry references and package directories.

On the command line each model is ``REF``, ``NAME=REF``, ``PATH`` or ``NAME=PATH``:
``churn@production`` serves model ``churn`` and follows its ``production`` alias,
``churn/3`` pins version 3, a bare ``churn`` follows its latest version, and a package
directory is served under its directory name (or the given ``NAME``). Whether the text
is a reference or a path is decided by ``modelport.package.location.locate_model``, the
rule ``modelport.load`` follows too (text naming an existing path is a path; write
``models:/churn`` to mean the registry's model whatever is on disk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelport.domain.names import validate_model_name
from modelport.domain.refs import ModelRef, parse_ref
from modelport.errors import InvalidArgumentError, InvalidNameError
from modelport.package.location import locate_model


@dataclass(frozen=True)
class ModelSource:
    """One model to serve: its route name and where it comes from.

    A registry source may carry a *pin*: the version its reference named when the
    server started, the local directory of that version's package and the manifest
    digest the registry recorded. Workers load a pinned version straight from the
    directory, without a database round trip on their start-up path.
    """

    name: str
    ref: str | None = None
    path: str | None = None
    version: int | None = None
    directory: str | None = None
    manifest_digest: str | None = None
    stats_path: str | None = None  # recomputed reference statistics of the pinned version
    signature_path: str | None = None  # the pinned version's model signature, if signed
    # The registry deployment this name serves (its arms, reconciled live), when one
    # of that name existed as the server started: then ``ref`` is not followed.
    deployment: str | None = None

    @property
    def follows_registry(self) -> bool:
        """True when the served version can change (an alias, a stage or ``latest``)."""
        if self.ref is None or self.deployment is not None:
            return False
        return parse_ref(self.ref).version is None

    @property
    def alias(self) -> str | None:
        """The alias or stage a registry source follows (None: a version, ``latest``, a
        deployment or a package directory)."""
        if self.ref is None or self.deployment is not None:
            return None
        return parse_ref(self.ref).alias

    @property
    def model_ref(self) -> ModelRef:
        """The parsed registry reference (only for registry sources)."""
        assert self.ref is not None
        return parse_ref(self.ref)

    def pinned(
        self,
        version: int,
        directory: str,
        manifest_digest: str,
        stats_path: str | None = None,
        signature_path: str | None = None,
    ) -> ModelSource:
        """This source with its start-up version resolved."""
        return replace(
            self,
            version=version,
            directory=directory,
            manifest_digest=manifest_digest,
            stats_path=stats_path,
            signature_path=signature_path,
        )

    def serving_deployment(self, name: str) -> ModelSource:
        """This source serving the registry deployment ``name``."""
        return replace(
            self,
            deployment=name,
            version=None,
            directory=None,
            manifest_digest=None,
            signature_path=None,
        )

    def describe(self) -> str:
        """What the source is, for logs and messages."""
        if self.deployment is not None:
            return f"deployment {self.deployment}"
        return self.ref if self.ref is not None else f"package {self.path}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for handing sources to worker processes."""
        return {
            "name": self.name,
            "ref": self.ref,
            "path": self.path,
            "version": self.version,
            "directory": self.directory,
            "manifest_digest": self.manifest_digest,
            "stats_path": self.stats_path,
            "signature_path": self.signature_path,
            "deployment": self.deployment,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSource:
        """Inverse of ``to_dict``."""
        return cls(
            name=str(data["name"]),
            ref=data.get("ref"),
            path=data.get("path"),
            version=data.get("version"),
            directory=data.get("directory"),
            manifest_digest=data.get("manifest_digest"),
            stats_path=data.get("stats_path"),
            signature_path=data.get("signature_path"),
            deployment=data.get("deployment"),
        )


def parse_source(text: str) -> ModelSource:
    """Parse one command-line model argument."""
    name, sep, target = text.partition("=")
    explicit = name if sep else None
    target = target if sep else text
    if not target:
        raise InvalidArgumentError(f"nothing to serve in {text!r}: use NAME=REF or NAME=PATH")
    found = locate_model(target)
    if isinstance(found, Path):
        path = found.resolve()
        return ModelSource(name=_served_name(explicit or path.name, text), path=str(path))
    return ModelSource(name=_served_name(explicit or found.name, text), ref=str(found))


def _served_name(name: str, text: str) -> str:
    try:
        return validate_model_name(name)
    except InvalidNameError as exc:
        raise InvalidArgumentError(
            f"cannot serve {text!r} under the name {name!r}: {exc.message}; "
            "give a valid one with NAME=..."
        ) from None


def check_unique(sources: Iterable[ModelSource]) -> list[ModelSource]:
    """The sources, refusing two that would be served under the same name."""
    seen: dict[str, ModelSource] = {}
    for source in sources:
        if source.name in seen:
            raise InvalidArgumentError(
                f"two models would be served as {source.name!r} ({seen[source.name].describe()} "
                f"and {source.describe()}); name one with NAME=REF"
            )
        seen[source.name] = source
    return list(seen.values())


def pin_all(
    sources: Iterable[ModelSource],
    is_deployment: Callable[[str], bool],
    pin: Callable[[ModelSource], ModelSource],
) -> list[ModelSource]:
    """``sources`` with every registry reference pinned by ``pin`` (to the version it
    names now, with the files workers read). A bare name that ``is_deployment`` serves
    the deployment instead: its workers read (and follow) it themselves."""
    pinned = []
    for source in sources:
        if source.ref is None:
            pinned.append(source)
            continue
        ref = source.model_ref
        if ref.is_latest and is_deployment(ref.name):
            pinned.append(source.serving_deployment(ref.name))
        else:
            pinned.append(pin(source))
    return pinned
