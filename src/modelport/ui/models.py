"""What the Models pages show, read from the registry (called in a thread).

The list is every registered model, or with a filter (the registry's search syntax,
``docs/registry.md``) the versions it matches. A model's page has its versions, and
for one of them the metrics, params, tags, lineage, input signature, how it is served
(ONNX acceleration or why not, as ``modelport version show`` says), its package
signature and the last verification's outcome, and the stage and alias history from the
audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelport.domain.entities import AuditEntry, ModelVersion, RegisteredModel
from modelport.errors import PackageError, StoreError
from modelport.registry.service import RegistryService
from modelport.registry.signatures import SIGNATURE_TAG
from modelport.ui.tables import Column

SEARCH_LIMIT = 1000  # versions a search lists at most
HISTORY_ACTIONS = ("alias.", "stage.", "version.archive", "version.create", "version.sign")
MODEL_COLUMNS = (
    Column("name", "Model", lambda m: m.name),
    Column("latest", "Latest", lambda m: m.latest_version),
    Column("updated", "Updated", lambda m: m.updated_at),
)
VERSION_COLUMNS = (
    Column("name", "Model", lambda v: (v.name, v.version)),
    Column("version", "Version", lambda v: v.version),
    Column("status", "Status", lambda v: v.status.value),
    Column("flavor", "Flavor", lambda v: v.flavor),
    Column("created", "Created", lambda v: v.created_at),
)


def model_rows(registry: RegistryService, readable: Any) -> list[RegisteredModel]:
    """The models the viewer may read (``readable(name)``), by name."""
    return [m for m in registry.list_models() if readable(m.name)]


def search_rows(registry: RegistryService, text: str, readable: Any) -> list[ModelVersion]:
    """The versions ``text`` matches, of the models the viewer may read."""
    found = registry.search_versions(text, max_results=SEARCH_LIMIT)
    return [v for v in found if readable(v.name)]


@dataclass(frozen=True)
class SignatureState:
    """A version's package signature as a badge: ``verified`` (the last verification
    passed), ``failed``, ``signed`` (never verified) or ``unsigned``."""

    state: str
    detail: str


@dataclass(frozen=True)
class VersionDetail:
    """One version as its page shows it."""

    version: ModelVersion
    served_by: str
    accelerated: bool | None  # None: unknown (the manifest could not be read)
    lineage: Mapping[str, Any]
    signature: SignatureState
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ModelDetail:
    """A model's page: the model, its versions, the selected one, its history."""

    model: RegisteredModel
    versions: list[ModelVersion]
    selected: VersionDetail | None
    history: list[AuditEntry]


def model_detail(registry: RegistryService, name: str, number: int | None) -> ModelDetail:
    """The page of model ``name`` with version ``number`` (default: the newest) open."""
    model = registry.get_model(name)
    versions = registry.list_versions(name)
    audit = registry.get_audit_log(name, limit=500)
    chosen = next((v for v in versions if v.version == number), None) if number else None
    if chosen is None and number is not None:
        chosen = registry.get_version(name, number)  # VersionNotFoundError names it
    chosen = chosen or (versions[0] if versions else None)
    selected = _version_detail(registry, chosen, audit) if chosen is not None else None
    history = [e for e in audit if e.action.startswith(HISTORY_ACTIONS)]
    return ModelDetail(model, versions, selected, history)


def _version_detail(
    registry: RegistryService, version: ModelVersion, audit: list[AuditEntry]
) -> VersionDetail:
    lineage: dict[str, Any] = {}
    try:
        manifest = registry.get_manifest(version)
    except (PackageError, StoreError) as exc:  # the registry's own rows still show
        served_by, accelerated = f"unknown: cannot read its modelport.yaml ({exc.message})", None
    else:
        section = manifest.acceleration
        if section is None:
            served_by, accelerated = (
                "the native model; no ONNX conversion was tried (registered with "
                "--no-accelerate, or its flavor has none)",
                False,
            )
        else:
            served_by, accelerated = section.describe(), section.status == "verified"
        data = manifest.lineage.training_data
        if data is not None:
            lineage["training data"] = f"{data.rows:,} rows, {data.columns} columns"
            lineage["data fingerprint"] = f"sha256:{data.sha256[:16]}…"
        if manifest.lineage.git is not None:
            git = manifest.lineage.git
            lineage["git commit"] = git.commit[:12] + (" (dirty)" if git.dirty else "")
        lineage["python"] = manifest.environment.python
    lineage["manifest"] = f"sha256:{version.manifest_digest[:16]}…"
    lineage["created by"] = version.created_by
    signature = version.signature or {}
    return VersionDetail(
        version,
        served_by,
        accelerated,
        lineage,
        _signature_state(version, audit),
        _fields(signature.get("inputs")),
        _fields(signature.get("outputs")),
    )


def _fields(section: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not section:
        return []
    if section.get("kind") == "columns":
        return [
            {"name": c["name"], "type": c["dtype"], "shape": "", "nullable": c.get("nullable")}
            for c in section.get("columns", [])
        ]
    return [
        {"name": t["name"], "type": t["dtype"], "shape": str(t.get("shape")), "nullable": None}
        for t in section.get("tensors", [])
    ]


def _signature_state(version: ModelVersion, audit: list[AuditEntry]) -> SignatureState:
    if SIGNATURE_TAG not in version.tags:
        return SignatureState("unsigned", "no package signature")
    checks = [e for e in audit if e.action == "version.verify" and e.version == version.version]
    if not checks:
        return SignatureState("signed", "signed; not verified yet (modelport version verify)")
    last = checks[0].after or {}  # the audit trail is newest first
    if last.get("outcome") == "passed":
        when = checks[0].timestamp.strftime("%Y-%m-%d %H:%M")
        return SignatureState("verified", f"verified {when} UTC with key {last.get('key', '')}")
    return SignatureState("failed", f"verification failed: {last.get('reason', '')}")


def metric_series(versions: list[ModelVersion]) -> dict[str, list[tuple[int, float]]]:
    """Each metric's value per version, oldest first (at most six metrics, the ones the
    most versions have), for the chart of metrics over versions."""
    counts: dict[str, int] = {}
    for v in versions:
        for key in v.metrics:
            counts[key] = counts.get(key, 0) + 1
    keys = sorted(counts, key=lambda k: (-counts[k], k))[:6]
    ordered = sorted(versions, key=lambda v: v.version)
    return {
        key: [(v.version, float(v.metrics[key])) for v in ordered if key in v.metrics]
        for key in keys
    }
