"""Model references: ``models:/churn/3``, ``models:/churn@production`` and the short forms
``churn/3``, ``churn@production``, ``churn/latest``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelport.domain.names import validate_alias, validate_model_name
from modelport.errors import InvalidNameError, InvalidReferenceError

SCHEME = "models:/"
_FORMS = "use models:/NAME/VERSION, models:/NAME@ALIAS, NAME/VERSION, NAME@ALIAS or NAME/latest"
_REF = re.compile(r"(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))")


@dataclass(frozen=True)
class ModelRef:
    """A reference to one version: by number, by alias or stage, or the latest."""

    name: str
    version: int | None = None
    alias: str | None = None

    @property
    def is_latest(self) -> bool:
        """True when the reference means the newest version (``churn/latest``)."""
        return self.version is None and self.alias is None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{SCHEME}{self.name}@{self.alias}"
        if self.version is not None:
            return f"{SCHEME}{self.name}/{self.version}"
        return f"{SCHEME}{self.name}/latest"


def looks_like_ref(text: str) -> bool:
    """Whether ``text`` has the shape of a model reference (not a check that it is valid)."""
    body = text.removeprefix(SCHEME)
    return text.startswith(SCHEME) or _REF.fullmatch(body) is not None


def parse_ref(text: str) -> ModelRef:
    """Parse a model reference, raising ``InvalidReferenceError`` with the accepted forms."""
    body = text.removeprefix(SCHEME) if isinstance(text, str) else None
    match = _REF.fullmatch(body) if body is not None else None
    if match is None:
        raise InvalidReferenceError(f"invalid model reference {text!r}: {_FORMS}")
    try:
        name = validate_model_name(match["name"])
        if match["alias"] is not None:
            return ModelRef(name, alias=validate_alias(match["alias"]))
    except InvalidNameError as exc:
        raise InvalidReferenceError(
            f"invalid model reference {text!r}: {exc.message}; {_FORMS}"
        ) from exc
    return ModelRef(name, version=_parse_version(text, match["version"]))


def _parse_version(text: str, raw: str) -> int | None:
    if raw == "latest":
        return None
    if not re.fullmatch(r"[0-9]{1,18}", raw) or int(raw) < 1:
        raise InvalidReferenceError(
            f"invalid model reference {text!r}: the version must be a positive integer or "
            f"'latest'; {_FORMS}"
        )
    return int(raw)
