"""A server following a control plane by its URL pins its sources through the HTTP
client: each registry reference resolved to the version it names now, its package
downloaded into the local cache with every digest checked, and its recomputed reference
statistics (when it has some) written beside it, so that the workers start from local
files as they do over the database."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelport.errors import UnsupportedOperationError
from modelport.package.signing import SigningPolicy
from modelport.serving.sources import ModelSource

if TYPE_CHECKING:
    from modelport.client import RegistryClient  # the layer above: it calls this module


def pin_sources(
    client: RegistryClient, sources: Sequence[ModelSource], signing: SigningPolicy | None
) -> list[ModelSource]:
    """``sources`` with every registry reference pinned (a bare name that is also a
    deployment's serves the deployment, which the workers follow themselves)."""
    pinned = []
    for source in sources:
        if source.ref is None:
            pinned.append(source)
            continue
        ref = source.model_ref
        if ref.is_latest and client.find_deployment(ref.name) is not None:
            pinned.append(source.serving_deployment(ref.name))
            continue
        if signing is not None and signing.requires(source.alias):
            raise UnsupportedOperationError(
                f"[signing] requires a signature for {source.describe()}, and this server "
                "follows the registry by its URL, which does not carry signatures: serve it "
                "from the database, or drop the requirement for this alias"
            )
        version = client.resolve(ref)
        directory = client.package_dir(version)
        stats, origin = client.reference_stats(version)
        stats_path = None
        if stats is not None and origin == "recomputed":
            stats_file = directory.with_name(directory.name + ".stats.json")
            stats_file.write_text(json.dumps(stats), encoding="utf-8")
            stats_path = str(stats_file)
        pinned.append(
            source.pinned(version.version, str(directory), version.manifest_digest, stats_path)
        )
    return pinned
