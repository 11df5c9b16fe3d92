"""Model references: ``models:/churn/3``, ``models:/churn@production`` and the short forms
``churn/3``, ``churn@production``, ``churn/latest``.

``parse_ref`` takes exactly those. ``parse_ref_or_name`` also takes a bare model name
(``churn``, or ``models:/churn``) for its latest version: the form people type where a
model is loaded or served (``modelport.package.location.locate_model`` decides between
such a reference and a package directory).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from modelport.domain.names import validate_alias, validate_model_name
from modelport.errors import InvalidNameError, InvalidReferenceError

SCHEME = "models:/"
_FORMS = "use models:/NAME/VERSION, models:/NAME@ALIAS, NAME/VERSION, NAME@ALIAS or NAME/latest"
REF_EXAMPLES = (
    "models:/churn/3, models:/churn@production, churn/3, churn@production, "
    "or a bare churn for its latest version"
)
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
    """Whether ``text`` has the shape of a ``parse_ref`` reference (not a check that it is
    valid). Loading and serving decide between references and paths with
    ``modelport.package.location.locate_model`` instead."""
    body = text.removeprefix(SCHEME)
    return text.startswith(SCHEME) or _REF.fullmatch(body) is not None


def parse_ref(text: str) -> ModelRef:
    """Parse a model reference, raising ``InvalidReferenceError`` with the accepted forms."""
    return _parse(text, bare_name=False, forms=_FORMS)


def parse_ref_or_name(text: str, *, expected: str | None = None) -> ModelRef:
    """``parse_ref``, also accepting a bare model name for its latest version: ``churn`` and
    ``models:/churn`` mean ``churn/latest``. ``expected`` replaces the accepted forms that
    error messages end with."""
    return _parse(text, bare_name=True, forms=expected or f"use {REF_EXAMPLES}")


def _parse(text: str, *, bare_name: bool, forms: str) -> ModelRef:
    body = text.removeprefix(SCHEME) if isinstance(text, str) else None
    if bare_name and body is not None and "/" not in body and "@" not in body:
        return ModelRef(_checked(validate_model_name, body, text, forms))
    match = _REF.fullmatch(body) if body is not None else None
    if match is None:
        raise InvalidReferenceError(f"invalid model reference {text!r}: {forms}")
    name = _checked(validate_model_name, match["name"], text, forms)
    if match["alias"] is not None:
        return ModelRef(name, alias=_checked(validate_alias, match["alias"], text, forms))
    return ModelRef(name, version=_parse_version(text, match["version"], forms))


def _checked(validate: Callable[[object], str], value: str, text: str, forms: str) -> str:
    try:
        return validate(value)
    except InvalidNameError as exc:
        raise InvalidReferenceError(
            f"invalid model reference {text!r}: {exc.message}; {forms}"
        ) from exc


def _parse_version(text: str, raw: str, forms: str) -> int | None:
    if raw == "latest":
        return None
    if not re.fullmatch(r"[0-9]{1,18}", raw) or int(raw) < 1:
        raise InvalidReferenceError(
            f"invalid model reference {text!r}: the version must be a positive integer or "
            f"'latest'; {forms}"
        )
    return int(raw)
