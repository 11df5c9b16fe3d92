"""The save options of a custom Python model (``code_paths``, ``artifacts``, ``config``,
``requirements``), checked before anything is copied: paths exist, artifact names are
plain, the config is JSON-ready and the requirements are pip requirements."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import InvalidArgumentError

_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SaveOptions:
    """The save options of a custom model, checked."""

    code_paths: list[Path]
    artifacts: dict[str, Path]
    config: dict[str, Any]
    requirements: tuple[str, ...]
    distributions: tuple[str, ...]


def parse_options(options: Mapping[str, Any]) -> SaveOptions:
    """The options given to ``save`` (``flavor_options``), checked and copied."""
    requirements = tuple(_as_list(options.get("requirements")))
    code_paths = [_existing(p, "code_paths") for p in _as_list(options.get("code_paths"))]
    if len({path.name for path in code_paths}) < len(code_paths):
        raise InvalidArgumentError(
            "code_paths are copied under code/ by their own name, so the names must differ",
            field="code_paths",
        )
    return SaveOptions(
        code_paths=code_paths,
        artifacts=_artifact_sources(options.get("artifacts") or {}),
        config=_json_config(options.get("config") or {}),
        requirements=requirements,
        distributions=_distributions(requirements),
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str | Path) else list(value)


def _existing(value: Any, option: str) -> Path:
    path = Path(value)
    if not path.exists():
        raise InvalidArgumentError(f"{option}: {str(path)!r} does not exist", field=option)
    return path


def _artifact_sources(artifacts: Any) -> dict[str, Path]:
    if not isinstance(artifacts, Mapping):
        raise InvalidArgumentError("artifacts must map names to files or directories")
    for name in artifacts:
        if not isinstance(name, str) or not _ARTIFACT_NAME.match(name) or name in {".", ".."}:
            raise InvalidArgumentError(
                f"artifact name {name!r} must be letters, digits, '_', '-' or '.'",
                field="artifacts",
            )
    return {name: _existing(path, f"artifacts[{name!r}]") for name, path in artifacts.items()}


def _json_config(config: Any) -> dict[str, Any]:
    """``config`` when it is JSON-ready (string keys; str, number, bool, None, list, dict)."""
    if not isinstance(config, Mapping):
        raise InvalidArgumentError("config must be a mapping of strings to JSON values")
    problem = _json_problem(config, "config")
    if problem is not None:
        raise InvalidArgumentError(
            f"config is stored as JSON, but {problem}; pass plain strings, numbers, "
            "booleans, None, lists and dicts (save anything else as an artifact)",
            field="config",
        )
    plain: dict[str, Any] = _plain(config)
    return plain


def _json_problem(value: Any, where: str) -> str | None:
    """Where ``value`` stops being JSON-ready, or None."""
    if isinstance(value, Mapping):
        key = next((k for k in value if not isinstance(k, str)), None)
        if key is not None:
            return f"{where} has the non-string key {key!r}"
        children = [(item, f"{where}[{k!r}]") for k, item in value.items()]
    elif isinstance(value, list | tuple):
        children = [(item, f"{where}[{i}]") for i, item in enumerate(value)]
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{where} is {value}"
    elif value is None or isinstance(value, str | int | float):
        return None
    else:
        return f"{where} is a {type(value).__name__}"
    return next((p for p in (_json_problem(v, w) for v, w in children) if p), None)


def _plain(value: Any) -> Any:
    """A copy of plain dicts, lists and builtin scalars (numpy's float64 is a float
    subclass that YAML cannot store), so the caller's later changes don't leak in."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    builtin = next(t for t in (str, int, float) if isinstance(value, t))
    return builtin(value)


def _distributions(requirements: tuple[Any, ...]) -> tuple[str, ...]:
    """The distribution names in pip requirement strings, in order, without repeats."""
    from packaging.requirements import InvalidRequirement, Requirement

    names = []
    for line in requirements:
        try:
            if not isinstance(line, str):
                raise InvalidRequirement(f"a {type(line).__name__}, not a string")
            names.append(Requirement(line).name)
        except InvalidRequirement as exc:
            raise InvalidArgumentError(
                f"requirements: {line!r} is not a valid pip requirement ({exc})",
                field="requirements",
            ) from None
    return tuple(dict.fromkeys(names))
