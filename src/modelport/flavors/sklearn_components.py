"""The distributions a scikit-learn model is made of, recorded as the package's
requirements: a pipeline ending in an ``XGBClassifier`` needs ``xgboost`` too."""

from __future__ import annotations

import importlib.metadata
import os
import sys
import types
from collections.abc import Mapping
from typing import Any

# packages_distributions() reads every installed distribution's metadata (half a second
# with a hundred installed): kept while the import path holds the same distributions, so
# a registration pays for it once per process and still finds one installed since.
_DistributionsKey = tuple[tuple[str, frozenset[str]], ...]
_cache: dict[_DistributionsKey, Mapping[str, list[str]]] = {}


def component_distributions(model: Any) -> list[str]:
    """Sorted distributions (other than the standard library) that provide the classes
    and functions ``model`` is made of, e.g. ``xgboost`` for a pipeline ending in an
    ``XGBClassifier``."""
    by_module = _distributions_by_module()
    found: set[str] = set()
    for module in _component_modules(model):
        if module not in sys.stdlib_module_names and module != "__main__":
            found.update(by_module.get(module, ()))
    return sorted(found)


def _distributions_by_module() -> Mapping[str, list[str]]:
    """``importlib.metadata.packages_distributions()``, computed again only when the
    distributions on ``sys.path`` changed (one was installed, upgraded or removed)."""
    key = tuple((entry, _installed(entry)) for entry in sys.path)
    if key not in _cache:
        _cache.clear()  # only the current state is worth keeping
        _cache[key] = importlib.metadata.packages_distributions()
    return _cache[key]


def _installed(entry: str) -> frozenset[str]:
    """The metadata directories of the distributions installed in ``entry``."""
    try:
        with os.scandir(entry or ".") as found:
            return frozenset(
                item.name for item in found if item.name.endswith((".dist-info", ".egg-info"))
            )
    except OSError:  # a zip file or a missing directory on the path
        return frozenset()


def _component_modules(model: Any) -> set[str]:
    """Top-level modules of ``model``, its parameters and nested estimators."""
    modules: set[str] = set()
    pending, seen = [model], {}  # seen keeps values alive so that ids stay unique
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen[id(value)] = value
        if isinstance(value, (list, tuple, set, frozenset)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif value is not None:
            modules.add(_defining_module(value).split(".")[0])
            pending.extend(_params(value))
    return modules


def _defining_module(value: Any) -> str:
    # A function or class parameter (FunctionTransformer(func=...)) comes from its own
    # module; any other value from the module of its type.
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return str(getattr(value, "__module__", None) or "builtins")
    return type(value).__module__


def _params(value: Any) -> list[Any]:
    get_params = getattr(value, "get_params", None)
    if isinstance(value, type) or not callable(get_params):
        return []
    try:
        params = get_params(deep=True)
    except Exception:  # third-party estimators may break this; the list is best effort
        return []
    return list(params.values()) if isinstance(params, dict) else []
