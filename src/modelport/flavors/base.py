"""The Flavor contract: how one framework's models are saved, detected and loaded, and
the optional hook through which a flavor's models convert to ONNX."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

import numpy as np

from modelport.domain.predictor import ModelPredictor
from modelport.domain.signature import Signature
from modelport.flavors.onnx_conversion import OnnxGraph, OnnxRequest

if TYPE_CHECKING:  # pandas loads only where a table is handled (not on the serving path)
    import pandas as pd

Sample: TypeAlias = "pd.DataFrame | np.ndarray | dict[str, np.ndarray]"


@dataclass(frozen=True)
class SaveContext:
    """What a flavor may use while saving.

    ``sample`` is the normalized sample input (or None); ``trust`` lists globals or
    module prefixes (``"mypkg.*"``) the user explicitly trusts; ``options`` holds
    flavor-specific settings such as ``code_paths`` for custom Python models.
    """

    sample: Sample | None = None
    trust: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SavedFlavor:
    """What a flavor wrote: its spec (JSON-ready, stored in the manifest), the
    distributions the model needs (the framework first), the trusted names the files
    actually use, and a signature the format itself declares (ONNX, torch export)."""

    spec: dict[str, Any]
    libraries: tuple[str, ...]
    trusted: tuple[str, ...] = ()
    signature: Signature | None = None


@dataclass(frozen=True)
class LoadContext:
    """What a flavor may use while loading: the trusted names recorded at save time plus
    any the caller adds."""

    trust: tuple[str, ...] = ()


class Flavor(Protocol):
    """One framework's save/load logic. Implementations import the framework lazily."""

    @property
    def name(self) -> str:
        """Short name stored in manifests, e.g. ``sklearn``."""
        ...

    @property
    def framework(self) -> str | None:
        """Distribution whose major.minor version must match at load, e.g. ``scikit-learn``;
        None when there is no single framework (custom Python models)."""
        ...

    @property
    def extra(self) -> str:
        """The modelport extra that installs the framework."""
        ...

    @property
    def suffixes(self) -> tuple[str, ...]:
        """File suffixes this flavor can register, e.g. ``(".joblib", ".pkl", ".skops")``."""
        ...

    def owns(self, obj: Any) -> bool:
        """Whether ``obj`` is a live model of this framework (without importing it)."""
        ...

    def reads(self, path: Path) -> bool:
        """Whether the file at ``path`` is a model file of this framework."""
        ...

    def save(self, obj: Any, directory: Path, context: SaveContext) -> SavedFlavor:
        """Write a live model into the empty ``directory`` in a safe, native format."""
        ...

    def import_file(self, source: Path, directory: Path, context: SaveContext) -> SavedFlavor:
        """Check a model file (safety, format) and copy it into the empty ``directory``."""
        ...

    def load(
        self, directory: Path, spec: Mapping[str, Any], context: LoadContext
    ) -> ModelPredictor:
        """Load the model saved in ``directory`` and return a predictor for it."""
        ...


@runtime_checkable
class OnnxConvertible(Flavor, Protocol):
    """A flavor whose models convert to ONNX, so that a package can store a graph that
    serves in place of the native model (``package.acceleration``). Optional: flavors
    without ``to_onnx`` are served by their own runtime.

    Such a flavor may also define ``onnx_inputs(model, signature) -> GraphInputs`` when
    its graphs take more than ``onnx_conversion.default_inputs`` (one numeric matrix or
    one 2-D tensor).
    """

    def to_onnx(self, request: OnnxRequest) -> OnnxGraph:
        """Convert ``request.model`` to a graph taking ``request.inputs``; raise
        ``GraphUnavailableError`` with the reason when it cannot be converted."""
        ...


def mro_modules(obj: Any) -> list[str]:
    """Top-level module names of every class in ``type(obj)``'s MRO."""
    return [cls.__module__.split(".")[0] for cls in type(obj).__mro__]
