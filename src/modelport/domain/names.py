"""Naming rules for models and aliases, and the reserved stages."""

from __future__ import annotations

import re
from enum import StrEnum

from modelport.errors import InvalidNameError

MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ALIAS_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")

# Words that would make a reference ambiguous if used as an alias.
RESERVED_ALIASES = frozenset({"latest"})


class Stage(StrEnum):
    """The stages. ``staging`` and ``production`` are aliases with rules (one version
    each); ``archived`` is a status any number of versions may have (``VersionStatus``),
    not a pointer: "promoting" a version to it archives the version."""

    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


def is_stage(alias: str) -> bool:
    """Whether ``alias`` names one of the stages."""
    return alias in Stage._value2member_map_


def is_archived_stage(alias: object) -> bool:
    """Whether ``alias`` is ``archived``: a status, never an alias pointing at a version."""
    return alias == Stage.ARCHIVED.value


def validate_model_name(name: object) -> str:
    """Return ``name`` if it is a valid model name, else raise ``InvalidNameError``.

    Names are ``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``: no path separators, no ``..``,
    no whitespace or control characters, so a name is always safe as one path
    component and one URL segment.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"model name must be a string, got {type(name).__name__}")
    if not MODEL_NAME_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidNameError(
            f"invalid model name {name!r}: names are 1-128 characters of letters, digits, "
            "'.', '_' and '-', start with a letter or digit, and contain no '..'",
            field="name",
        )
    return name


def validate_alias(alias: object) -> str:
    """Return ``alias`` if it is a valid alias name, else raise ``InvalidNameError``."""
    if not isinstance(alias, str):
        raise InvalidNameError(f"alias must be a string, got {type(alias).__name__}")
    if not ALIAS_PATTERN.fullmatch(alias) or alias in RESERVED_ALIASES:
        raise InvalidNameError(
            f"invalid alias {alias!r}: aliases are 1-64 characters of letters, digits, '_' and "
            "'-', start with a letter, and are not 'latest'",
            field="alias",
        )
    return alias
