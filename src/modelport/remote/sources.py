"""A server following a control plane by its URL pins its sources through the HTTP
client: each registry reference resolved to the version it names now, its package
downloaded into the local cache with every digest checked, and its recomputed reference
statistics (when it has some) written beside it, so that the workers start from local
files as they do over the database. Where ``[signing] require_signed`` covers a source,
the workers verify the downloaded package against the signature they download beside it
(``RegistryClient.check_signature``), with this server's trusted keys."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

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
        version = client.resolve(ref)
        directory = client.package_dir(version)
        signature = None
        if signing is not None and signing.requires(source.alias):  # the workers verify it
            signature = client.download_signature(
                version, directory.with_name(directory.name + ".sig")
            )
        stats, origin = client.reference_stats(version)
        stats_path = None
        if stats is not None and origin == "recomputed":
            stats_file = directory.with_name(directory.name + ".stats.json")
            stats_file.write_text(json.dumps(stats), encoding="utf-8")
            stats_path = str(stats_file)
        pinned.append(
            source.pinned(
                version.version,
                str(directory),
                version.manifest_digest,
                stats_path,
                str(signature) if signature is not None else None,
            )
        )
    return pinned
