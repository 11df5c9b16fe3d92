"""The scikit-learn flavor: estimators and pipelines, stored with skops when possible.

A live model is written with skops, which stores objects as data rather than as a
pickle program, and whose type references are checked against the same allow-list
as pickles (:mod:`modelport.flavors.safe_pickle`). Only a model skops cannot store or
reload falls back to joblib, and that file is verified by loading it through the
restricted unpickler. Files users bring (``.skops``, ``.joblib``, ``.pkl``) pass the same
checks before they are copied into a package.
"""

from __future__ import annotations

import contextlib
import pickle
import shutil
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modelport.domain.predictor import Batch, ModelPredictor
from modelport.domain.signature import Signature
from modelport.errors import (
    CorruptModelFileError,
    InvalidArgumentError,
    UnsafeModelError,
    UnsupportedOperationError,
)
from modelport.flavors import sklearn_onnx
from modelport.flavors.base import LoadContext, SaveContext, SavedFlavor, mro_modules
from modelport.flavors.dependencies import require
from modelport.flavors.feature_names import check_sample_columns
from modelport.flavors.onnx_conversion import GraphInputs, OnnxGraph, OnnxRequest
from modelport.flavors.safe_pickle import GlobalPolicy, load_joblib, load_pickle, unsafe_error
from modelport.flavors.sklearn_components import component_distributions

_FILES = {"skops": "model.skops", "joblib": "model.joblib", "pickle": "model.pkl"}
_SUFFIX_FORMATS = {".skops": "skops", ".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle"}
_FORMAT_LIBRARIES = {"skops": ("skops",), "joblib": ("joblib",), "pickle": ()}
_BASE_LIBRARIES = ("scikit-learn", "numpy", "scipy")
# What skops raises for a file that is not a valid skops archive (truncated zip,
# missing or malformed schema, references to attributes that do not exist).
_SKOPS_FILE_ERRORS = (
    zipfile.BadZipFile, zlib.error, KeyError, ValueError, TypeError, AttributeError, EOFError,
)  # fmt: skip

Loader = Callable[[Path, Iterable[str]], Any]
Trusted = tuple[str, ...]


class SklearnPredictor:
    """Predicts with a scikit-learn compatible estimator (also used for XGBoost's wrappers).

    A 2-D array whose width matches the columns the model was fitted on is given those
    column names, so a model fitted on a DataFrame also accepts plain arrays (what V2
    clients send) without scikit-learn's feature-name warning. A model fitted on
    ``pd.DataFrame(X)`` (integer labels, so scikit-learn recorded no names) gets its
    integer labels back on a frame labelled ``"0", "1", ...``, the names a signature
    gives those columns.
    """

    def __init__(self, model: Any) -> None:
        self._model = model
        names = getattr(model, "feature_names_in_", None)
        self._columns = None if names is None else [str(name) for name in names]

    @property
    def model(self) -> Any:
        """The underlying estimator."""
        return self._model

    @property
    def supports_proba(self) -> bool:
        """Whether the estimator has ``predict_proba`` (``available_if`` makes this exact)."""
        return hasattr(self._model, "predict_proba")

    @property
    def classes(self) -> list[Any] | None:
        """The class labels of a classifier, as Python values; None for other models."""
        labels = getattr(self._model, "classes_", None)
        return None if labels is None else np.asarray(labels).tolist()

    def predict(self, batch: Batch) -> Batch:
        """The estimator's ``predict`` for every row of ``batch``."""
        return self._model.predict(self._frame(batch))

    def predict_proba(self, batch: Batch) -> Batch:
        """Class probabilities, one row per input row."""
        if not self.supports_proba:
            kind = type(self._model).__qualname__
            raise UnsupportedOperationError(f"a {kind} model does not give class probabilities")
        return self._model.predict_proba(self._frame(batch))

    def close(self) -> None:
        """Nothing to release: the estimator is plain Python data."""

    def _frame(self, batch: Batch) -> Batch:
        # Estimators fitted on DataFrames want one back (with names, and without a
        # feature-name warning); pandas is loaded with scikit-learn anyway.
        import pandas as pd

        if isinstance(batch, dict):
            return pd.DataFrame(batch)
        columns = self._columns
        if columns is None and isinstance(batch, pd.DataFrame):
            return _integer_labels(batch)
        if (
            isinstance(batch, np.ndarray)
            and columns is not None
            and batch.ndim == 2
            and batch.shape[1] == len(columns)
        ):
            return pd.DataFrame(batch, columns=columns)
        return batch


def _integer_labels(frame: Any) -> Any:
    """``frame`` with the labels 0, 1, ... when its labels are "0", "1", ...: the frame a
    model fitted without feature names on ``pd.DataFrame(X)`` saw (text labels would make
    scikit-learn warn that the model was fitted without feature names)."""
    labels = frame.columns.tolist()
    if labels != [str(i) for i in range(len(labels))]:
        return frame
    positional = frame.copy(deep=False)
    positional.columns = range(len(labels))
    return positional


class SklearnFlavor:
    """scikit-learn estimators and pipelines, saved with skops (joblib as a fallback)."""

    @property
    def name(self) -> str:
        """``sklearn``."""
        return "sklearn"

    @property
    def framework(self) -> str:
        """``scikit-learn``."""
        return "scikit-learn"

    @property
    def extra(self) -> str:
        """``sklearn``."""
        return "sklearn"

    @property
    def suffixes(self) -> tuple[str, ...]:
        """skops archives first, then the pickle-based formats."""
        return tuple(_SUFFIX_FORMATS)

    def owns(self, obj: Any) -> bool:
        """A scikit-learn (or compatible, via its base classes) model with ``predict``."""
        return "sklearn" in mro_modules(obj) and callable(getattr(obj, "predict", None))

    def reads(self, path: Path) -> bool:
        """A ``.skops`` zip archive, or a non-empty pickle/joblib file (content is
        checked on import)."""
        fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
        if fmt == "skops":
            return zipfile.is_zipfile(path)
        return fmt is not None and path.is_file() and path.stat().st_size > 0

    def save(self, obj: Any, directory: Path, context: SaveContext) -> SavedFlavor:
        """Store ``obj`` as ``model.skops``, or as ``model.joblib`` when skops cannot."""
        _require_sklearn()
        check_sample_columns(obj, context.sample)
        skops_path = directory / _FILES["skops"]
        skops_failure = _try_skops(obj, skops_path)
        if skops_failure is None:
            with _removed_on_error(skops_path):
                names, trusted = _vet_skops(skops_path, context.trust)
            return _saved_flavor(obj, "skops", trusted, skops_types=names)
        joblib_path = directory / _FILES["joblib"]
        _dump_joblib(obj, joblib_path, skops_failure)
        with _removed_on_error(joblib_path):
            _, trusted = _load_with_trust(load_joblib, joblib_path, context.trust)
        return _saved_flavor(obj, "joblib", trusted, skops_types=[])

    def import_file(self, source: Path, directory: Path, context: SaveContext) -> SavedFlavor:
        """Check ``source`` against the allow-list, load it, and copy it into ``directory``."""
        fmt = _SUFFIX_FORMATS.get(source.suffix.lower())
        if fmt is None:
            raise InvalidArgumentError(
                f"{source.name}: scikit-learn models are files ending in "
                f"{', '.join(_SUFFIX_FORMATS)}",
                field="source",
            )
        if not source.is_file():
            raise InvalidArgumentError(f"no such file: {source}", field="source")
        _require_sklearn()
        names: list[str] = []
        if fmt == "skops":
            names, trusted = _vet_skops(source, context.trust)
            model = _load_skops(source, names)
        else:
            model, trusted = _load_with_trust(_loader(fmt), source, context.trust)
        if not callable(getattr(model, "predict", None)):
            raise InvalidArgumentError(
                f"{source.name} holds a {_qualified_class(model)}, not a model with a "
                "predict method",
                field="source",
            )
        check_sample_columns(model, context.sample)
        shutil.copyfile(source, directory / _FILES[fmt])
        return _saved_flavor(model, fmt, trusted, skops_types=names)

    def load(
        self, directory: Path, spec: Mapping[str, Any], context: LoadContext
    ) -> ModelPredictor:
        """Load the model after checking every type it references against the allow-list."""
        fmt = spec.get("format")
        if fmt not in _FILES:
            raise CorruptModelFileError(
                f"unknown scikit-learn model format {fmt!r}; expected one of {', '.join(_FILES)}",
                field="format",
            )
        path = directory / _spec_file(spec)
        _require_sklearn()
        if fmt == "skops":
            # The types are read from the file itself, never from the spec.
            names, _ = _vet_skops(path, context.trust)
            return SklearnPredictor(_load_skops(path, names))
        return SklearnPredictor(_loader(fmt)(path, context.trust))

    def onnx_inputs(self, model: Any, signature: Signature) -> GraphInputs:
        """The inputs of ``model``'s ONNX graph (see ``flavors.sklearn_onnx``)."""
        return sklearn_onnx.onnx_inputs(model, signature)

    def to_onnx(self, request: OnnxRequest) -> OnnxGraph:
        """The model as an ONNX graph, converted by skl2onnx (``flavors.sklearn_onnx``)."""
        return sklearn_onnx.to_onnx(request)


# ------------------------------------------------------------------------------ skops


# Importing skops.io lists every scikit-learn estimator, which imports every subpackage
# of scikit-learn: with PyTorch installed, that includes scikit-learn's bundled
# array-API adapter for torch, which imports torch itself (about 190 MB and seconds, in
# every process that loads a model). No estimator lives there, so the adapters are kept
# out of that walk; they import normally afterwards.
_ADAPTERS_NOT_WALKED = tuple(
    f"sklearn.externals.array_api_compat.{backend}" for backend in ("torch", "cupy", "dask")
)


def _skops() -> Any:
    if sys.modules.get("skops.io") is not None:
        return sys.modules["skops.io"]
    blocked = [name for name in _ADAPTERS_NOT_WALKED if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # None: "cannot import"
    try:
        return require("skops.io", extra="sklearn", package="skops")
    finally:
        for name in blocked:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def _try_skops(obj: Any, path: Path) -> str | None:
    """Write ``obj`` with skops and check it reloads; return why not if it fails."""
    sio = _skops()
    try:
        sio.dump(obj, path)
        # The object is live in this process, so importing the types it references
        # adds no risk; the allow-list is applied right after.
        sio.load(path, trusted=sio.get_untrusted_types(file=path))
    except Exception as exc:  # skops signals "cannot store this" with many error types
        path.unlink(missing_ok=True)
        return f"{type(exc).__name__}: {exc}"
    return None


def _untrusted_types(path: Path) -> list[str]:
    try:
        names: list[str] = _skops().get_untrusted_types(file=path)
    except _SKOPS_FILE_ERRORS as exc:
        raise _corrupt_skops(path, exc) from None
    return names


def _vet_skops(path: Path, trust: Iterable[str]) -> tuple[list[str], Trusted]:
    """The types in the file that skops does not trust by itself, after refusing the file
    if any is outside the allow-list; and those that only pass because of ``trust``."""
    names = _untrusted_types(path)
    refused = GlobalPolicy(trust).refused_qualnames(names, source=path.name)
    if refused:
        raise unsafe_error(path.name, refused)
    return names, tuple(GlobalPolicy().refused_qualnames(names, source=path.name))


def _load_skops(path: Path, vetted_types: list[str]) -> Any:
    """Load a skops file whose types ``_vet_skops`` has just allowed."""
    try:
        return _skops().load(path, trusted=vetted_types)
    except _SKOPS_FILE_ERRORS as exc:
        raise _corrupt_skops(path, exc) from None


def _corrupt_skops(path: Path, exc: BaseException) -> CorruptModelFileError:
    return CorruptModelFileError(
        f"{path.name} is not a valid skops file ({type(exc).__name__}: {exc})", field=path.name
    )


# ---------------------------------------------------------------------- joblib, pickle


def _dump_joblib(obj: Any, path: Path, skops_failure: str) -> None:
    joblib = require("joblib", extra="sklearn")
    try:
        joblib.dump(obj, path)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        path.unlink(missing_ok=True)
        raise InvalidArgumentError(
            f"cannot save this {_qualified_class(obj)}: skops cannot store it "
            f"({skops_failure}) and neither can pickle ({exc}). Lambdas and functions "
            "defined inside other functions cannot be saved: define them at module level, "
            "or wrap the model in a modelport.PythonModel",
            field="model",
        ) from None


def _loader(fmt: str) -> Loader:
    if fmt == "joblib":
        require("joblib", extra="sklearn")
        return load_joblib
    return load_pickle


def _load_with_trust(loader: Loader, path: Path, trust: Iterable[str]) -> tuple[Any, Trusted]:
    """Load with the user's ``trust`` and find the globals that only pass because of it.

    The restricted loaders stop at the first refused global, so the names are found by
    reloading with exactly the names refused so far; this costs one extra load per such
    name, and none when the user trusts nothing.
    """
    trust = tuple(trust)
    model = loader(path, trust)
    needed: list[str] = []
    while trust:
        try:
            loader(path, needed)
        except UnsafeModelError as exc:
            new = [name for name in exc.offending if name not in needed]
            if not new:
                raise
            needed.extend(new)
        else:
            break
    return model, tuple(needed)


# ------------------------------------------------------------------------------ spec


def _saved_flavor(model: Any, fmt: str, trusted: Trusted, *, skops_types: list[str]) -> SavedFlavor:
    spec: dict[str, Any] = {
        "format": fmt,
        "file": _FILES[fmt],
        "model_class": _qualified_class(model),
        "supports_proba": hasattr(model, "predict_proba"),
    }
    if fmt == "skops":  # allowed types skops.io.load must be told to trust
        spec["trusted_types"] = list(skops_types)
    libraries = (*_BASE_LIBRARIES, *_FORMAT_LIBRARIES[fmt], *component_distributions(model))
    return SavedFlavor(spec=spec, libraries=tuple(dict.fromkeys(libraries)), trusted=trusted)


def _spec_file(spec: Mapping[str, Any]) -> str:
    file = spec.get("file")
    if not isinstance(file, str) or not file or Path(file).name != file:
        raise CorruptModelFileError(f"invalid model file name {file!r} in the spec", field="file")
    return file


@contextlib.contextmanager
def _removed_on_error(path: Path) -> Iterator[None]:
    """Leave the package directory as it was when a written file fails its checks."""
    try:
        yield
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _qualified_class(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _require_sklearn() -> None:
    require("sklearn", extra="sklearn", package="scikit-learn")
