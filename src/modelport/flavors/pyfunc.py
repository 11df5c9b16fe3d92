"""Custom Python models: a ``PythonModel`` subclass, saved as source code, never pickled.

Saving records the class's import path (``package.module:Class``) and copies its code
under ``code/``, its artifacts under ``artifacts/<name>``, and its JSON config and pip
requirements into the spec. Loading imports the class from that copy, builds it with
no arguments and calls ``load(context)``: a model's state comes from its artifacts and
config, never from the live object that was saved. Saving proves the copy is
self-contained by importing the class from it while modules that sit next to the
original code are hidden, so a sibling missing from ``code_paths`` fails at save time.

The copy is imported inside an *import window* (``modelport.flavors.code_import``),
so versions whose modules share names load side by side; that module explains how,
and the limits that follow (import the model's own modules at module level or in
``load()``; no standard-library or ``modelport`` names; no ``__main__`` classes unless
``code_paths`` lists the script).
"""

from __future__ import annotations

import inspect
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from modelport.domain.predictor import Batch, ModelPredictor
from modelport.errors import (
    CorruptPackageError,
    InvalidArgumentError,
    UnsafeModelError,
    UnsupportedOperationError,
)
from modelport.flavors.base import LoadContext, SaveContext, SavedFlavor
from modelport.flavors.code_import import (
    import_window,
    refuse_reserved_names,
    resolve_entry_point,
    self_contained_window,
)
from modelport.flavors.pyfunc_options import parse_options

_CODE_DIR = "code"
_ARTIFACTS_DIR = "artifacts"
_ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class PythonModelContext:
    """What ``PythonModel.load`` receives: the package directory, the saved artifacts
    (name -> path of the copy) and the config given at save time."""

    model_dir: Path
    artifacts: Mapping[str, Path]
    config: Mapping[str, Any]


class PythonModel:
    """Base class for custom models: subclass it, implement ``predict``, and read any
    state in ``load`` from ``context.artifacts`` and ``context.config``.

    A subclass is saved as code, not pickled: it must be importable from a module
    (not ``__main__``) and constructible with no arguments. It may also define
    ``predict_proba(self, batch)`` (then the model supports probabilities) and
    ``close(self)`` (called when the predictor is closed).

    A model whose signature declares inference parameters receives them when its
    ``predict`` (and ``predict_proba``) takes a ``params`` argument, as MLflow's
    ``predict(self, context, model_input, params=None)`` does:
    ``def predict(self, batch, params=None)``. ``params`` is then a mapping holding every
    declared parameter (the request's value, else the default).
    """

    def load(self, context: PythonModelContext) -> None:
        """Read artifacts and config; called once after the model is built. Default: nothing."""

    def predict(self, batch: Batch) -> Batch:
        """Predict for every row of ``batch``; subclasses must implement it."""
        raise NotImplementedError(
            f"{type(self).__qualname__} must implement predict(self, batch) to be served"
        )


class PyFuncFlavor:
    """Subclasses of ``PythonModel``, saved as their source code plus artifacts."""

    @property
    def name(self) -> str:
        return "python"

    @property
    def framework(self) -> None:
        return None

    @property
    def extra(self) -> str:
        return "all"

    @property
    def suffixes(self) -> tuple[str, ...]:
        return ()

    def owns(self, obj: Any) -> bool:
        """Whether ``obj`` is a ``PythonModel`` instance."""
        return isinstance(obj, PythonModel)

    def reads(self, path: Path) -> bool:
        """Never: custom models have no file format, they are saved from live objects."""
        return False

    def save(self, obj: Any, directory: Path, context: SaveContext) -> SavedFlavor:
        """Copy the model's code and artifacts; check the copy imports and builds alone."""
        options = parse_options(context.options)
        cls = type(obj)
        if getattr(cls, "predict", None) is PythonModel.predict:
            raise InvalidArgumentError(f"{cls.__qualname__} must implement predict(self, batch)")
        code_paths = options.code_paths or _default_code_paths(cls)
        entry = _entry_point(cls, code_paths)
        _copy_code(code_paths, directory / _CODE_DIR)
        refuse_reserved_names(directory / _CODE_DIR, InvalidArgumentError)
        artifacts = _copy_artifacts(options.artifacts, directory)
        _check_buildable(directory / _CODE_DIR, entry, code_paths)
        spec = {
            "entry_point": entry,
            "code": _CODE_DIR,
            "artifacts": artifacts,
            "config": options.config,
            "requirements": list(options.requirements),
        }
        return SavedFlavor(spec=spec, libraries=options.distributions)

    def import_file(self, source: Path, directory: Path, context: SaveContext) -> SavedFlavor:
        """Unsupported: a custom model is saved from a live ``PythonModel`` instance."""
        raise UnsupportedOperationError(
            "custom Python models have no file format to import: save a PythonModel instance"
        )

    def load(
        self, directory: Path, spec: Mapping[str, Any], context: LoadContext
    ) -> ModelPredictor:
        """Import the model from ``code/`` in an import window, build it and call ``load``."""
        entry = str(spec.get("entry_point", ""))
        if not _ENTRY_POINT.match(entry):
            raise CorruptPackageError(f"invalid Python model entry point {entry!r}")
        code_dir = _inside(directory, str(spec.get("code", _CODE_DIR)))
        if not code_dir.is_dir():
            raise CorruptPackageError(
                f"the Python model's code directory {code_dir.name} is missing"
            )
        refuse_reserved_names(code_dir, _unsafe_names_error)
        model_context = PythonModelContext(
            model_dir=directory,
            artifacts=MappingProxyType(
                {
                    str(k): _inside(directory, str(v))
                    for k, v in (spec.get("artifacts") or {}).items()
                }
            ),
            config=MappingProxyType(dict(spec.get("config") or {})),
        )
        with import_window(code_dir) as modules:
            model = _build(
                resolve_entry_point(entry, CorruptPackageError), entry, CorruptPackageError
            )
            model.load(model_context)
        return PythonModelPredictor(model, modules)


class PythonModelPredictor:
    """Serves a loaded ``PythonModel``; holds the model's private modules alive."""

    def __init__(self, model: PythonModel, modules: dict[str, ModuleType]) -> None:
        self._model = model
        self._modules = modules
        self._proba = getattr(model, "predict_proba", None)
        self._predict_params = _takes_params(model.predict)
        self._proba_params = callable(self._proba) and _takes_params(self._proba)

    @property
    def supports_proba(self) -> bool:
        return callable(self._proba)

    @property
    def accepts_params(self) -> bool:
        """Whether the model's ``predict`` takes inference parameters (a ``params`` argument)."""
        return self._predict_params

    def predict(self, batch: Batch, params: Mapping[str, Any] | None = None) -> Batch:
        """The model's ``predict(batch)``, or ``predict(batch, params=params)`` when it
        takes parameters and some are given."""
        if params is not None and self._predict_params:
            # A dict of its own, as MLflow passes: the model may change it.
            return self._model.predict(batch, params=dict(params))  # type: ignore[call-arg]
        return self._model.predict(batch)

    def predict_proba(self, batch: Batch, params: Mapping[str, Any] | None = None) -> Batch:
        """The model's ``predict_proba(batch)``, when it defines one (with ``params`` as
        for ``predict``)."""
        method = self._proba
        if not callable(method):
            raise UnsupportedOperationError(
                f"{type(self._model).__qualname__} does not define predict_proba"
            )
        if params is not None and self._proba_params:
            return method(batch, params=dict(params))
        return method(batch)

    def close(self) -> None:
        """Call the model's ``close()`` when it defines one."""
        method = getattr(self._model, "close", None)
        if callable(method):
            method()


def _takes_params(method: Any) -> bool:
    try:
        return "params" in inspect.signature(method).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False


# ----------------------------------------------------------------------------- saving


def _entry_point(cls: type, code_paths: list[Path]) -> str:
    """``module:QualName`` for ``cls``, importable from the copied ``code_paths``."""
    if "<locals>" in cls.__qualname__:
        raise InvalidArgumentError(
            f"{cls.__qualname__} is defined inside a function; define it at module level"
        )
    module = cls.__module__
    if module == "__main__":
        module = _script_module(cls, code_paths)
    return f"{module}:{cls.__qualname__}"


def _script_module(cls: type, code_paths: list[Path]) -> str:
    """The module name of the script a ``__main__`` class comes from, if it is copied."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    copied = {path.name for path in code_paths}
    if script is None or Path(script).name not in copied:
        raise InvalidArgumentError(
            f"{cls.__qualname__} is defined in __main__ (a script or notebook), so it cannot "
            "be imported later: move it into a module (a .py file) and import it from there, "
            "or pass code_paths listing the script and the modules it needs"
        )
    return Path(script).stem


def _default_code_paths(cls: type) -> list[Path]:
    """The file of ``cls``'s module if it is top-level, else its top-level package's directory."""
    top = cls.__module__.split(".")[0]
    if top == "__main__":
        return []  # _entry_point explains what to do
    module = sys.modules.get(top)
    paths = list(getattr(module, "__path__", None) or [])
    if len(paths) > 1:
        raise InvalidArgumentError(
            f"the namespace package {top!r} spans several directories: pass code_paths"
        )
    location = paths[0] if paths else getattr(module, "__file__", None)
    if location is None:
        raise InvalidArgumentError(f"cannot find the source of module {top!r}: pass code_paths")
    return [Path(location)]


def _copy_code(paths: list[Path], target: Path) -> None:
    target.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for path in paths:
        if path.is_dir():
            shutil.copytree(path, target / path.name, ignore=ignore)
        else:
            shutil.copyfile(path, target / path.name)


def _copy_artifacts(artifacts: Mapping[str, Path], directory: Path) -> dict[str, str]:
    """Copy each artifact under ``artifacts/<name>``; return name -> relative path."""
    copied = {}
    for name, source in artifacts.items():
        target = directory / _ARTIFACTS_DIR / name
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            # A file keeps its own name, as some loaders go by the suffix.
            target.mkdir(parents=True)
            target = target / source.name
            shutil.copyfile(source, target)
        copied[name] = target.relative_to(directory).as_posix()
    return copied


def _check_buildable(code_dir: Path, entry: str, code_paths: list[Path]) -> None:
    """Import the class from the copy and build it. Modules that sit next to the original
    code but were not copied are refused, which proves the copy is self-contained."""
    with self_contained_window(code_dir, code_paths):
        _build(resolve_entry_point(entry, InvalidArgumentError), entry, InvalidArgumentError)


# ---------------------------------------------------------------------------- loading


def _unsafe_names_error(message: str) -> UnsafeModelError:
    return UnsafeModelError(message, offending=("code shadows the standard library",))


def _inside(directory: Path, relative: str) -> Path:
    """``directory / relative``, refusing paths that leave the package."""
    path = (directory / relative).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise CorruptPackageError(f"the spec path {relative!r} points outside the package")
    return path


def _build(cls: Any, entry: str, error: type[Exception]) -> PythonModel:
    if not (isinstance(cls, type) and issubclass(cls, PythonModel)):
        raise error(f"{entry} is not a modelport.PythonModel subclass")
    try:
        return cls()
    except TypeError as exc:
        raise error(
            f"{entry} must be constructible with no arguments ({exc}): a saved model's state "
            "comes from its artifacts and config, read in load(context)"
        ) from exc
