"""Importing a custom model's copied code: the import window and the self-containment check.

How the copied code is imported
-------------------------------
Python caches modules by name in the process-wide ``sys.modules``, and user code
imports its siblings by absolute name (``import helpers``). So that two versions of a
model whose modules share names can be loaded side by side, each model is imported
inside an *import window*: under a process-wide lock, cached modules with the same
top-level names as the model's are set aside, ``code/`` goes first on ``sys.path``,
the class is imported, built, and its ``load()`` runs (so pickles of the model's own
classes resolve there too); then the model's modules leave ``sys.modules`` and what
was set aside is put back. The model keeps its own module objects, so each version
predicts with its own code.

Saving proves the copy is self-contained by importing the class from it inside a
window that also hides the modules sitting next to the original code (cached ones are
set aside, uncached ones are refused by a finder), so a sibling missing from
``code_paths`` fails at save time.

Limits that follow:

* an import of the model's own modules that first runs after ``load()`` (inside
  ``predict``, say) is resolved against the process's ``sys.path`` and may fail or find
  another version: import them at module level or in ``load()``;
* while a window is open, another thread importing one of the model's top-level
  names gets the model's module;
* top-level names of the standard library or ``modelport`` are refused, and compiled
  extension modules cannot be imported twice in one process;
* a class defined in a script (``__main__``) can be saved only when ``code_paths``
  lists the script: it is then imported as a module, so its top-level code runs (keep
  training code under ``if __name__ == "__main__":``);
* no bytecode is written while a window is open (the package's files are digested).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import sysconfig
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

RESERVED_NAMES = frozenset({*sys.stdlib_module_names, "modelport"})

# sys.modules, sys.path and sys.dont_write_bytecode are process-wide, so import
# windows must not overlap: this lock is the one piece of module state.
_IMPORT_LOCK = threading.RLock()


def top_level_names(code_dir: Path) -> set[str]:
    """Names ``import`` finds in ``code_dir``: modules, packages and extension modules."""
    suffixes = tuple(importlib.machinery.all_suffixes())
    names = set()
    for entry in code_dir.iterdir():
        if entry.is_dir() and entry.name.isidentifier():
            names.add(entry.name)
        elif entry.is_file() and entry.name.endswith(suffixes):
            names.add(entry.name.split(".")[0])
    return names


def refuse_reserved_names(code_dir: Path, error: Any) -> None:
    """Raise ``error(message)`` when ``code_dir`` defines a top-level module named like
    a standard-library or modelport module, which a window would shadow."""
    reserved = sorted(top_level_names(code_dir) & RESERVED_NAMES)
    if reserved:
        raise error(
            f"the model's code defines top-level modules named like standard-library or "
            f"modelport modules ({', '.join(reserved)}); rename them",
        )


@contextmanager
def import_window(
    code_dir: Path, hidden: set[str] | frozenset[str] = frozenset()
) -> Iterator[dict[str, ModuleType]]:
    """Import from ``code_dir`` with its module names (and ``hidden`` ones) free; yields,
    and fills on exit, the dict of the modules imported from it, which leave ``sys.modules``."""
    names = top_level_names(code_dir) | hidden
    own: dict[str, ModuleType] = {}
    with _IMPORT_LOCK:
        set_aside = _take_modules(names)
        write_bytecode = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        sys.path.insert(0, str(code_dir))
        importlib.invalidate_caches()
        try:
            yield own
        finally:
            if str(code_dir) in sys.path:
                sys.path.remove(str(code_dir))
            sys.path_importer_cache.pop(str(code_dir), None)
            sys.dont_write_bytecode = write_bytecode
            own.update(_take_modules(names))
            sys.modules.update(set_aside)


def _take_modules(names: set[str]) -> dict[str, ModuleType]:
    """Remove and return the cached modules whose top-level name is in ``names``."""
    taken = [name for name in list(sys.modules) if name.split(".")[0] in names]
    return {name: sys.modules.pop(name) for name in taken}


def resolve_entry_point(entry: str, error: type[Exception]) -> Any:
    """The object ``module:QualName`` names, imported (call it inside a window);
    raises ``error`` when it cannot be imported."""
    module_name, _, qualname = entry.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise error(
            f"cannot import {entry} from the model's code ({exc}); code_paths are copied "
            "under code/ by their own name: list the module file or package directory "
            "itself, and every local module it imports"
        ) from exc
    return target


@contextmanager
def self_contained_window(code_dir: Path, code_paths: list[Path]) -> Iterator[None]:
    """An import window on ``code_dir`` in which modules that sit next to the original
    ``code_paths`` but were not copied are refused: importing the model's class in it
    proves the copy is self-contained."""
    # Installed code (site-packages, the standard library) is not the user's to copy.
    roots = {path.resolve().parent for path in code_paths} - _install_dirs()
    guard = _UncopiedModuleGuard(roots, top_level_names(code_dir))
    # Cached modules from those directories are hidden too, or the import would find them.
    with import_window(code_dir, hidden=_cached_modules_in(roots)):
        sys.meta_path.insert(0, guard)
        try:
            yield
        finally:
            sys.meta_path.remove(guard)


def _install_dirs() -> set[Path]:
    paths = sysconfig.get_paths()
    return {Path(paths[key]).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")}


def _cached_modules_in(roots: set[Path]) -> set[str]:
    """Top-level names of imported modules whose file or package sits in one of ``roots``
    (never ``__main__``, the standard library or modelport)."""
    names = set()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if "." in name or file is None or name == "__main__" or name in RESERVED_NAMES:
            continue
        path = Path(file)
        location = path.parent.parent if path.name.startswith("__init__.") else path.parent
        if location.resolve() in roots:
            names.add(name)
    return names


class _UncopiedModuleGuard(importlib.abc.MetaPathFinder):
    """Fails the import of a top-level module found in one of ``roots`` (the directories
    the code was copied from) but not among the copied ``names``."""

    def __init__(self, roots: set[Path], names: set[str]) -> None:
        self._roots = roots
        self._names = names

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is not None or fullname in self._names:
            return None  # submodules and copied modules import normally
        spec = importlib.machinery.PathFinder.find_spec(fullname)
        locations = list(spec.submodule_search_locations or []) if spec else []
        if spec is not None and spec.origin and not locations:
            locations = [str(Path(spec.origin).parent)]  # a module file: its directory
        else:
            locations = [str(Path(p).parent) for p in locations]  # a package: its parent
        if any(Path(location).resolve() in self._roots for location in locations):
            raise ModuleNotFoundError(
                f"module {fullname!r} sits next to the model's code but was not copied: "
                "add it to code_paths",
                name=fullname,
            )
        return None
