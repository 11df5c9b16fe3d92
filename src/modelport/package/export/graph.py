"""The graph to export, exactly as acceleration makes and verifies it.

* the package's own ``accelerated/model.onnx``, when registration verified one;
* else a graph converted now by the flavor's ``to_onnx`` hook and verified against the
  native model's predictions on the check rows (``acceleration.accelerator``: the same
  converters, the same tolerances);
* an ONNX-flavor model is already a graph: its file.

For quantization, a graph whose only candidate weights are float64 (which int8
quantization does not take) is converted again asking for float32 first, and that
graph replaces it only if it has weights to quantize.

A model that cannot be converted raises ``UnsupportedOperationError`` with the reason
acceleration gives (the one the manifest's acceleration section records)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from modelport.domain.predictor import ModelPredictor
from modelport.errors import UnsupportedOperationError
from modelport.flavors.base import LoadContext
from modelport.flavors.catalog import FlavorCatalog
from modelport.flavors.onnx_runtime import import_onnxruntime, new_session
from modelport.package.acceleration.accelerator import accelerate, native_model
from modelport.package.export.quantization import (
    float32_would_quantize,
    has_quantizable_weights,
)
from modelport.package.loaded import LoadedModel
from modelport.package.manifest import ACCELERATED_FILE, MODEL_DIR, AccelerationSection
from modelport.package.onnx_predictor import AcceleratedPredictor, column_names

Origin = Literal["package", "converted", "onnx-model"]
_ONNX_FLAVOR = "onnx"


@dataclass(frozen=True)
class ExportGraph:
    """A verified graph: its bytes, where it came from, the acceleration section that
    describes its inputs and outputs (None for an ONNX-flavor model), and ``open``,
    which runs these bytes, or a quantized rewrite of them, as a predictor."""

    data: bytes
    origin: Origin
    section: AccelerationSection | None
    open: Callable[[bytes], ModelPredictor]


@dataclass(frozen=True)
class NativeAnswers:
    """The check rows and the native model's predictions (and probabilities) on them."""

    batch: Any
    predictions: np.ndarray
    probabilities: np.ndarray | None


def export_graph(
    loaded: LoadedModel, catalog: FlavorCatalog, native: NativeAnswers, *, for_quantization: bool
) -> ExportGraph:
    """The graph of ``loaded``'s model (see the module's docstring for which)."""
    if loaded.flavor == _ONNX_FLAVOR:
        return _onnx_model(loaded, catalog)
    graph = _stored(loaded) or _converted(loaded, catalog, native, prefer_float32=False)
    if not (for_quantization and float32_would_quantize(graph.data)):
        return graph
    try:
        narrowed = _converted(loaded, catalog, native, prefer_float32=True)
    except UnsupportedOperationError:
        return graph  # no verified float32 graph: the float64 one exports, unquantized
    # A converter may pick other operators at float32 (skl2onnx: LinearClassifier for a
    # logistic regression, MatMul at float64); keep the float64 graph unless this helps.
    return narrowed if has_quantizable_weights(narrowed.data) else graph


def _stored(loaded: LoadedModel) -> ExportGraph | None:
    section = loaded.manifest.acceleration
    if section is None or section.status != "verified" or section.file != ACCELERATED_FILE:
        return None
    data = (loaded.directory / ACCELERATED_FILE).read_bytes()  # digest checked at load
    return ExportGraph(data, "package", section, _opener(section, loaded))


def _converted(
    loaded: LoadedModel, catalog: FlavorCatalog, native: NativeAnswers, *, prefer_float32: bool
) -> ExportGraph:
    flavor = catalog.get(loaded.flavor)
    with tempfile.TemporaryDirectory(prefix="modelport-export-") as scratch:
        section = accelerate(
            native_model(loaded.directory, loaded.predictor),
            flavor,
            Path(scratch),
            signature=loaded.signature,
            sample=native.batch,
            sample_predictions=native.predictions,
            sample_probabilities=native.probabilities,
            prefer_float32=prefer_float32,
        )
        if section.status != "verified":
            raise UnsupportedOperationError(_unconvertible(loaded, section), field="format")
        data = (Path(scratch) / ACCELERATED_FILE).read_bytes()
    return ExportGraph(data, "converted", section, _opener(section, loaded))


def _unconvertible(loaded: LoadedModel, section: AccelerationSection) -> str:
    text = f"{loaded.source} cannot be exported to ONNX: {section.reason}"
    recorded = loaded.manifest.acceleration
    if recorded is not None and recorded.reason and recorded.reason != section.reason:
        text += f" (when it was packaged: {recorded.reason})"
    return text


def _opener(section: AccelerationSection, loaded: LoadedModel) -> Callable[[bytes], ModelPredictor]:
    columns = column_names(loaded.signature)

    def open_graph(data: bytes) -> ModelPredictor:
        session = new_session(import_onnxruntime("accelerate"), data)
        return AcceleratedPredictor(session, section, columns)

    return open_graph


def _onnx_model(loaded: LoadedModel, catalog: FlavorCatalog) -> ExportGraph:
    spec = dict(loaded.manifest.flavor.spec)
    data = (loaded.directory / MODEL_DIR / str(spec.get("file", "model.onnx"))).read_bytes()
    flavor = catalog.get(_ONNX_FLAVOR)

    def open_graph(graph: bytes) -> ModelPredictor:
        # The flavor's own predictor, on a copy of the file: same outputs, same feeding.
        with tempfile.TemporaryDirectory(prefix="modelport-export-") as scratch:
            (Path(scratch) / "model.onnx").write_bytes(graph)
            return flavor.load(Path(scratch), {**spec, "file": "model.onnx"}, LoadContext())

    return ExportGraph(data, "onnx-model", None, open_graph)
