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
from modelport.serving.sources import ModelSource, pin_all

if TYPE_CHECKING:
    from modelport.client import RegistryClient  # the layer above: it calls this module


def pin_sources(
    client: RegistryClient, sources: Sequence[ModelSource], signing: SigningPolicy | None
) -> list[ModelSource]:
    """``sources`` with every registry reference pinned (a bare name that is also a
    deployment's serves the deployment, which the workers follow themselves)."""
    return pin_all(
        sources,
        lambda name: client.find_deployment(name) is not None,
        lambda source: _pin(client, source, signing),
    )


def _pin(client: RegistryClient, source: ModelSource, signing: SigningPolicy | None) -> ModelSource:
    """``source`` pinned to the version it names now: its package downloaded (digests
    checked), with its signature and recomputed statistics beside it when there are."""
    version = client.resolve(source.model_ref)
    directory = client.package_dir(version)
    signature = None
    if signing is not None and signing.requires(source.alias):  # the workers verify it
        signature = client.download_signature(version, directory.with_name(directory.name + ".sig"))
    stats, origin = client.reference_stats(version)
    stats_path = None
    if stats is not None and origin == "recomputed":
        stats_file = directory.with_name(directory.name + ".stats.json")
        stats_file.write_text(json.dumps(stats), encoding="utf-8")
        stats_path = str(stats_file)
    return source.pinned(
        version.version,
        str(directory),
        version.manifest_digest,
        stats_path,
        str(signature) if signature is not None else None,
    )
