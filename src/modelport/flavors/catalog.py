"""The set of known flavors, and how a model object or file finds its flavor."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelport.errors import UnknownFlavorError
from modelport.flavors.base import Flavor


class FlavorCatalog:
    """Flavors in detection order: the first that owns an object or reads a file wins."""

    def __init__(self, flavors: Iterable[Flavor]) -> None:
        self._flavors = tuple(flavors)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the known flavors, sorted."""
        return tuple(sorted(flavor.name for flavor in self._flavors))

    def get(self, name: str) -> Flavor:
        """The flavor called ``name``."""
        for flavor in self._flavors:
            if flavor.name == name:
                return flavor
        raise UnknownFlavorError(
            f"unknown flavor {name!r}; known flavors: {', '.join(self.names)}", known=self.names
        )

    def for_object(self, obj: Any) -> Flavor:
        """The flavor that owns the live model ``obj``."""
        for flavor in self._flavors:
            if flavor.owns(obj):
                return flavor
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        raise UnknownFlavorError(
            f"no flavor handles a {kind}; known flavors: {', '.join(self.names)} "
            "(wrap other models in a modelport.PythonModel subclass)",
            known=self.names,
        )

    def for_file(self, path: Path) -> Flavor:
        """The flavor that reads the model file at ``path``."""
        for flavor in self._flavors:
            if path.suffix.lower() in flavor.suffixes and flavor.reads(path):
                return flavor
        suffixes = sorted({s for flavor in self._flavors for s in flavor.suffixes})
        raise UnknownFlavorError(
            f"cannot tell which flavor reads {path.name!r}; model files end in "
            f"{', '.join(suffixes)}; or name the flavor (flavor= in Python, --flavor on the "
            f"command line): one of {', '.join(self.names)}",
            known=self.names,
        )


def default_catalog() -> FlavorCatalog:
    """Every built-in flavor, most specific first (XGBoost and LightGBM models are also
    scikit-learn estimators, so they must be asked before scikit-learn)."""
    from modelport.flavors.lightgbm import LightGBMFlavor
    from modelport.flavors.onnx import OnnxFlavor
    from modelport.flavors.pyfunc import PyFuncFlavor
    from modelport.flavors.sklearn import SklearnFlavor
    from modelport.flavors.torch import TorchFlavor
    from modelport.flavors.xgboost import XGBoostFlavor

    return FlavorCatalog(
        [
            PyFuncFlavor(),
            XGBoostFlavor(),
            LightGBMFlavor(),
            TorchFlavor(),
            OnnxFlavor(),
            SklearnFlavor(),
        ]
    )
