"""Lazy imports of optional frameworks, with the install line when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from modelport.errors import MissingDependencyError


def require(module: str, *, extra: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise ``MissingDependencyError`` naming the pip line.

    ``package`` is the distribution name when it differs from the module's.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and module.split(".", maxsplit=1)[0] != exc.name.split(".")[0]:
            raise  # the framework is installed but broken: keep the real cause visible
        dist = package or module.split(".", maxsplit=1)[0]
        raise MissingDependencyError(
            f"{dist} is not installed; install it with: pip install 'modelport[{extra}]'",
            package=dist,
            extra=extra,
        ) from None
