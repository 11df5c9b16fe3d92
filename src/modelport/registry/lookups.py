"""Finding models and versions in a metadata session, or raising the precise not-found error."""

from __future__ import annotations

from modelport.domain.entities import ModelVersion, RegisteredModel
from modelport.domain.names import is_archived_stage, validate_model_name
from modelport.domain.refs import ModelRef
from modelport.errors import (
    AliasNotFoundError,
    InvalidArgumentError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from modelport.metadata.store import MetadataSession


def require_model(tx: MetadataSession, name: str) -> RegisteredModel:
    """The model called ``name``; ``ModelNotFoundError`` when there is none."""
    validate_model_name(name)
    model = tx.get_model(name)
    if model is None:
        raise ModelNotFoundError(f"model {name!r} does not exist", model=name)
    return model


def require_version(tx: MetadataSession, name: str, version: int) -> ModelVersion:
    """Version ``version`` of ``name``; the not-found error for the model or the version."""
    require_model(tx, name)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidArgumentError(
            f"version must be a positive integer, got {version!r}", field="version"
        )
    found = tx.get_version(name, version)
    if found is None:
        raise VersionNotFoundError(
            f"model {name!r} has no version {version}", model=name, version=version
        )
    return found


def resolve_ref(tx: MetadataSession, ref: ModelRef) -> ModelVersion:
    """The version ``ref`` names: by number, by alias or stage, or the latest."""
    model = require_model(tx, ref.name)
    if ref.version is not None:
        return require_version(tx, ref.name, ref.version)
    if ref.alias is not None:
        number = model.aliases.get(ref.alias)
        if number is None:
            raise AliasNotFoundError(_no_alias(model, ref.alias), model=ref.name)
        return require_version(tx, ref.name, number)
    if model.latest_version is None:
        raise VersionNotFoundError(f"model {ref.name!r} has no versions", model=ref.name)
    return require_version(tx, ref.name, model.latest_version)


def _no_alias(model: RegisteredModel, alias: str) -> str:
    known = ", ".join(sorted(model.aliases)) or "none"
    message = f"model {model.name!r} has no alias {alias!r} (its aliases: {known})"
    if is_archived_stage(alias):
        message += (
            "; archived is a status that any number of versions may have, not one version: "
            f"list them with modelport version list {model.name} --filter 'status = archived'"
        )
    return message
