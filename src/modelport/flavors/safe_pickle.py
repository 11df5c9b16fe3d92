"""Loading pickle and joblib files without running code they smuggle in.

A pickle is a small program: its GLOBAL opcodes name any importable callable and
REDUCE calls it, so ``pickle.load`` on a crafted file runs ``os.system``. Here every
global a file names is checked against an allow-list *before* it is resolved, so a
refused callable is never imported, let alone called:

* plain pickles are first scanned statically (every GLOBAL / STACK_GLOBAL opcode,
  without executing anything) and refused with every offending name listed;
* then, and for joblib files (whose array data is interleaved with the opcodes),
  the unpickler's ``find_class`` enforces the same policy as it meets each global.

The policy allows the standard containers, numpy/pandas/scipy-sparse data types,
numpy ufuncs, scikit-learn classes, XGBoost / LightGBM model classes and a few
scikit-learn function modules (score functions). It refuses everything else, including
functions from numpy (``np.save`` writes files), ``numpy.memmap`` (opens files),
dotted names (``Class.__init__.__globals__``) and whole sub-packages that touch
the file system or network (``sklearn.datasets``).

``trust`` entries extend the policy for a user's own code: ``"pkg.mod.Class"``
trusts one global, ``"pkg.*"`` a package and its sub-modules.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import io
import lzma
import pickle
import pickletools
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from modelport.errors import CorruptModelFileError, UnsafeModelError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_BUILTIN_TYPES = (
    "dict", "list", "set", "frozenset", "tuple", "slice", "complex", "bytearray", "bytes",
    "range", "object", "int", "float", "str", "bool",
)  # fmt: skip

SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [("builtins", name) for name in _BUILTIN_TYPES]
    + [("collections", n) for n in ("OrderedDict", "defaultdict", "deque", "Counter")]
    + [("copyreg", n) for n in ("_reconstructor", "__newobj__", "__newobj_ex__")]
    + [("datetime", n) for n in ("datetime", "date", "time", "timedelta", "timezone")]
    + [
        ("_codecs", "encode"),  # protocol-2 pickles encode bytes with it
        ("functools", "partial"),  # only ever wraps callables that passed this policy
        ("decimal", "Decimal"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
        ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
        ("pyarrow.lib", "_restore_array"),
        ("pyarrow.lib", "py_buffer"),
        ("pyarrow.lib", "type_for_alias"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
    ]
    + [
        (f"numpy.{core}.{module}", name)
        for core in ("core", "_core")
        for module, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),
        )
    ]
)

# Sub-packages whose code reads or writes files, fetches data or runs tests.
_DENIED_MODULES = (
    "sklearn.datasets",
    "sklearn.utils._testing",
    "sklearn.externals",
    "sklearn.utils._show_versions",
)
# scikit-learn modules whose *functions* appear as hyper-parameters (score functions).
_SKLEARN_FUNCTION_MODULES = (
    "sklearn.metrics", "sklearn.feature_selection", "sklearn.preprocessing",
    "sklearn.utils.extmath", "sklearn.kernel_approximation",
)  # fmt: skip


def _under(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _sklearn_rule(module: str, name: str, obj: Any) -> bool:
    if _under(module, _DENIED_MODULES):
        return False
    if isinstance(obj, type) or name.startswith("__pyx_unpickle_"):
        return True
    return callable(obj) and _under(module, _SKLEARN_FUNCTION_MODULES)


def _numpy_rule(module: str, name: str, obj: Any) -> bool:
    import numpy as np

    if isinstance(obj, np.ufunc):
        return True
    if module.startswith("numpy.random") and name.startswith("__pyx_unpickle_"):
        return True
    if not isinstance(obj, type) or issubclass(obj, np.memmap):
        return False
    random_types = (np.random.BitGenerator, np.random.Generator, np.random.RandomState)
    seed_types = (np.random.SeedSequence,)
    return issubclass(obj, (np.generic, np.dtype, np.ndarray, *random_types, *seed_types))


def _pandas_rule(module: str, name: str, obj: Any) -> bool:
    import pandas as pd
    from pandas.api.extensions import ExtensionArray, ExtensionDtype

    if not isinstance(obj, type):
        return False
    data_types = (pd.DataFrame, pd.Series, pd.Index, ExtensionArray, ExtensionDtype)
    scalar_types = (pd.Timestamp, pd.Timedelta, pd.Period, pd.Interval)
    return issubclass(obj, data_types + scalar_types) or module.startswith("pandas.core.internals")


def _scipy_rule(module: str, name: str, obj: Any) -> bool:
    import numpy as np

    if module.startswith("scipy.special"):
        return isinstance(obj, np.ufunc)
    return isinstance(obj, type)


def _xgboost_rule(module: str, name: str, obj: Any) -> bool:
    # Model classes only: other xgboost classes do more than hold state (the tracker
    # binds a socket, for one).
    from xgboost import Booster
    from xgboost.sklearn import XGBModel

    return isinstance(obj, type) and (issubclass(obj, XGBModel) or obj is Booster)


def _lightgbm_rule(module: str, name: str, obj: Any) -> bool:
    from lightgbm import Booster, LGBMModel

    return isinstance(obj, type) and (issubclass(obj, LGBMModel) or obj is Booster)


_RULES: tuple[tuple[str, Callable[[str, str, Any], bool]], ...] = (
    ("sklearn", _sklearn_rule),
    ("numpy", _numpy_rule),
    ("pandas", _pandas_rule),
    ("scipy.sparse", _scipy_rule),
    ("scipy.special", _scipy_rule),
    ("xgboost", _xgboost_rule),
    ("lightgbm", _lightgbm_rule),
)


class GlobalPolicy:
    """Decides which globals a pickle may name; ``trust`` extends the built-in allow-list."""

    def __init__(self, trust: Iterable[str] = ()) -> None:
        self._trust = tuple(trust)

    def is_trusted(self, module: str, name: str) -> bool:
        """Whether the user explicitly trusts ``module.name``."""
        qualified = f"{module}.{name}"
        for entry in self._trust:
            if entry.endswith(".*") and _under(module, [entry[:-2]]):
                return True
            if entry == qualified:
                return True
        return False

    def resolve(self, module: str, name: str, *, source: str) -> Any:
        """Import and return ``module.name`` if the policy allows it, else raise
        ``UnsafeModelError``. Nothing is imported for a global the policy refuses by name."""
        module, name = _python3_name(module, name)
        if self.is_trusted(module, name) or (module, name) in SAFE_GLOBALS:
            return _import_attribute(module, name, source)
        rule = next((r for prefix, r in _RULES if _under(module, [prefix])), None)
        if rule is None or not _IDENTIFIER.fullmatch(name):
            raise unsafe_error(source, [f"{module}.{name}"])
        obj = _import_attribute(module, name, source)
        if not rule(module, name, obj):
            raise unsafe_error(source, [f"{module}.{name}"])
        return obj

    def refused_qualnames(self, qualnames: Iterable[str], *, source: str) -> list[str]:
        """The subset of dotted names (``"sklearn.tree._tree.Tree"``, as skops lists
        untrusted types) the policy refuses."""
        return self.refused([split_qualname(q) for q in qualnames], source=source)

    def refused(self, names: Iterable[tuple[str, str]], *, source: str) -> list[str]:
        """The subset of ``names`` the policy refuses (imports only allowed modules)."""
        offending: list[str] = []
        for module, name in names:
            try:
                self.resolve(module, name, source=source)
            except UnsafeModelError as exc:
                offending.extend(exc.offending)  # the Python 3 name, as resolve reports it
        return offending


def split_qualname(qualname: str) -> tuple[str, str]:
    """``"pkg.mod.Name"`` -> ``("pkg.mod", "Name")``."""
    module, _, name = qualname.rpartition(".")
    return module, name


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """Protocol 0-2 pickles name Python 2 modules (``copy_reg``); map them as pickle does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        mapped: tuple[str, str] = _compat_pickle.NAME_MAPPING[(module, name)]
        return mapped
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def unsafe_error(
    source: str, offending: Sequence[str], *, how_to_trust: str | None = None
) -> UnsafeModelError:
    """The error for a file naming globals outside the allow-list; ``how_to_trust`` says
    how to vouch for them where the caller is (default: Python's ``trust=[...]``; the
    CLI says ``--trust '...'``)."""
    names = ", ".join(offending)
    if how_to_trust is None:
        how_to_trust = "pass trust=[" + ", ".join(f"'{n}'" for n in offending) + "]"
    return UnsafeModelError(
        f"refusing to load {source}: it references {names}, which "
        f"{'is' if len(offending) == 1 else 'are'} not on modelport's allow-list of safe "
        f"globals, so loading it could run arbitrary code. If this is your own code and you "
        f"trust the file, {how_to_trust}",
        offending=tuple(offending),
        field=source,
        trustable=True,
    )


def _import_attribute(module: str, name: str, source: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise CorruptModelFileError(
            f"{source} references {module}.{name}, which cannot be imported here; "
            "is the library that defines it installed?",
            field=source,
        ) from None


# ------------------------------------------------------------------------ static scan


_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
     "SHORT_BINSTRING"}
)  # fmt: skip
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def scan_globals(data: bytes, source: str) -> list[tuple[str, str]]:
    """Every global a plain pickle names, found without executing it.

    A STACK_GLOBAL whose module and name are not plain strings pushed just before it
    (how every real pickler writes them) is reported as ``?.?`` so that it is refused.
    """
    found: list[tuple[str, str]] = []
    recent: list[Any] = []
    memo: dict[int, Any] = {}
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
            name = opcode.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                found.append((module, attr))
                recent.append(None)
            elif name == "STACK_GLOBAL":
                args = recent[-2:] if len(recent) >= 2 else [None, None]
                ok = all(isinstance(a, str) for a in args)
                found.append((str(args[0]), str(args[1])) if ok else ("?", "?"))
                recent = [*recent[:-2], None]
            elif name in _STRING_OPS:
                recent.append(arg)
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name in _PUT_OPS:
                memo[int(str(arg))] = recent[-1] if recent else None
            elif name in _GET_OPS:
                recent.append(memo.get(int(str(arg))))
            elif name not in ("FRAME", "PROTO", "STOP", "MARK"):
                recent.append(None)
    except (ValueError, EOFError) as exc:
        raise CorruptModelFileError(
            f"{source} is not a valid pickle: {exc}", field=source
        ) from None
    return found


# ------------------------------------------------------------------------- unpickling

# What a truncated or garbled stream raises from inside the unpickler or a decompressor;
# policy refusals (UnsafeModelError) are deliberately not among them.
_PARSE_ERRORS = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
    KeyError, OverflowError, struct.error, zlib.error, lzma.LZMAError, OSError,
)  # fmt: skip


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, policy: GlobalPolicy, source: str) -> None:
        super().__init__(file)
        self._policy = policy
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        return self._policy.resolve(module, name, source=self._source)


def load_pickle(path: Path, trust: Iterable[str] = ()) -> Any:
    """Load a plain pickle file after checking every global it names."""
    source = path.name
    data = path.read_bytes()
    if not data:
        raise CorruptModelFileError(f"{source} is empty", field=source)
    policy = GlobalPolicy(trust)
    offending = policy.refused(scan_globals(data, source), source=source)
    if offending:
        raise unsafe_error(source, sorted(set(offending)))
    try:
        return _RestrictedUnpickler(io.BytesIO(data), policy, source).load()
    except _PARSE_ERRORS as exc:
        raise CorruptModelFileError(
            f"{source} is not a valid pickle: {exc}", field=source
        ) from None


def load_joblib(path: Path, trust: Iterable[str] = ()) -> Any:
    """Load a joblib file, checking every global as the unpickler meets it.

    joblib interleaves raw array bytes with the pickle opcodes, so the file cannot be
    scanned statically; its unpickler routes nested object arrays through the same
    ``find_class`` (joblib >= 1.6), which is where the policy is enforced.
    """
    from joblib import numpy_pickle, numpy_pickle_utils

    source = path.name
    policy = GlobalPolicy(trust)

    class RestrictedNumpyUnpickler(numpy_pickle.NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            return policy.resolve(module, name, source=source)

    if path.stat().st_size == 0:
        raise CorruptModelFileError(f"{source} is empty", field=source)
    with path.open("rb") as handle:
        if numpy_pickle_utils._detect_compressor(handle) == "compat":
            raise CorruptModelFileError(
                f"{source} uses joblib's pre-0.10 format, which is not supported; "
                "re-save it with a current joblib",
                field=source,
            )
        try:
            with numpy_pickle_utils._validate_fileobject_and_memmap(handle, str(path)) as (
                fobj,
                _,
            ):
                return RestrictedNumpyUnpickler(str(path), fobj, True).load()
        except _PARSE_ERRORS as exc:
            raise CorruptModelFileError(
                f"{source} is not a valid joblib file: {exc}", field=source
            ) from None
