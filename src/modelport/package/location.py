"""Where a model comes from: a package directory or a registry reference.

``locate_model`` is the one rule behind ``modelport.load``, ``modelport serve`` and every
command that takes a model, in this order:

1. text starting with ``models:/`` is a registry reference, whatever is on disk;
2. text naming an existing file or directory is a path: a directory containing
   ``modelport.yaml`` is a package, anything else is refused with
   ``InvalidArgumentError`` (a half-written package or a model file is never silently
   taken for a registered model of the same name);
3. other text that parses as a reference is one: ``churn/3``, ``churn@production``,
   ``churn/latest``, and a bare ``churn`` for its latest version;
4. anything else is refused with ``InvalidReferenceError``.

Every refusal names both accepted forms, with examples. A ``Path`` (any
``os.PathLike``) is always taken as a path: a package, or an error.

This module imports nothing heavy: ``modelport serve`` runs it before starting workers.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelport.domain.refs import REF_EXAMPLES, SCHEME, ModelRef, parse_ref_or_name
from modelport.errors import InvalidArgumentError, InvalidReferenceError

MANIFEST_FILE = "modelport.yaml"
"""The file that makes a directory a model package."""

EXPECTED = (
    f"expected a package directory (a folder containing {MANIFEST_FILE}, e.g. ./churn-package) "
    f"or a registry reference ({REF_EXAMPLES})"
)


def is_package_dir(path: Path) -> bool:
    """Whether ``path`` is a directory holding a package's manifest."""
    return (path / MANIFEST_FILE).is_file()


def locate_model(target: str | os.PathLike[str]) -> ModelRef | Path:
    """The package directory (a ``Path``) or the registry reference (a ``ModelRef``) that
    ``target`` names, by the rules in this module's docstring."""
    if isinstance(target, os.PathLike):
        return _package_path(Path(target), os.fspath(target))
    text = str(target)
    if text.startswith(SCHEME):
        return parse_ref_or_name(text)
    if text and Path(text).exists():
        return _package_path(Path(text), text)
    return parse_ref_or_name(text, expected=EXPECTED)


def _package_path(path: Path, text: str) -> Path:
    if is_package_dir(path):
        return path
    if not path.exists():
        raise InvalidArgumentError(
            f"no such package directory: {text}; {EXPECTED} (a Path always means a "
            "directory: pass a registry reference as a string)",
            field="model",
        )
    what = "a directory without" if path.is_dir() else "a file, not a directory with"
    hint = f" (for the registered model, write {SCHEME}{text})" if _parses(text) else ""
    raise InvalidArgumentError(
        f"{text!r} is {what} {MANIFEST_FILE}, so not a model package{hint}; {EXPECTED}",
        field="model",
    )


def _parses(text: str) -> bool:
    try:
        parse_ref_or_name(text)
    except InvalidReferenceError:
        return False
    return True
