"""Making a package's accelerated graph: convert (the flavor's hook) -> verify against the
native predictions -> record (``accelerated/model.onnx`` and the manifest's section).

A model that cannot be accelerated never fails the package: the section is then
``unavailable``, with the reason, and no file is left behind.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelport.domain.signature import Signature
from modelport.flavors.base import Flavor, OnnxConvertible, Sample
from modelport.flavors.onnx_conversion import GraphUnavailableError, OnnxRequest
from modelport.package.acceleration.conversion import (
    convert,
    converter_of,
    graph_inputs,
    graph_outputs,
    head,
    server_batch,
)
from modelport.package.acceleration.verification import compare, predicts_values
from modelport.package.manifest import ACCELERATED_FILE, AccelerationSection
from modelport.package.onnx_predictor import AcceleratedPredictor, column_names

logger = logging.getLogger(__name__)

_MAX_ROWS = 10_000


def converts_to_onnx(flavor: Flavor) -> bool:
    """Whether ``flavor`` converts its models to ONNX (it has a ``to_onnx`` hook)."""
    return isinstance(flavor, OnnxConvertible)


def native_model(source: Any, predictor: Any) -> Any:
    """The model object to convert: the live model, or the one the flavor loaded from a
    file (the scikit-learn predictor's ``model``; the booster predictors keep theirs in
    ``_booster``, read here so the file is not loaded twice)."""
    if not isinstance(source, str | Path):
        return source
    model = getattr(predictor, "model", None)
    return model if model is not None else getattr(predictor, "_booster", None)


def accelerate(
    model: Any,
    flavor: Flavor,
    destination: Path,
    *,
    signature: Signature | None,
    sample: Sample | None,
    sample_predictions: Any,
    sample_probabilities: Any,
    prefer_float32: bool = False,
) -> AccelerationSection:
    """Convert ``model`` with ``flavor``'s hook, check the graph against the native
    model's predictions (and probabilities) on ``sample`` and write it to
    ``destination / accelerated/model.onnx``.

    Never raises for a model that cannot be accelerated: the section is then
    ``unavailable``, with the reason, and no file is left behind. ``prefer_float32``
    asks the converter for float32 numbers first (``OnnxRequest``), for an export to be
    quantized.
    """
    target = destination / ACCELERATED_FILE
    try:
        converter = converter_of(flavor)
        if sample is None or sample_predictions is None:
            raise GraphUnavailableError("no sample input to verify against")
        if signature is None:
            raise GraphUnavailableError(
                "the package has no signature to lay out the graph's inputs"
            )
        native = np.asarray(sample_predictions)
        rows = min(len(native), _MAX_ROWS)
        reference = _Reference(
            signature,
            head(sample, rows),
            native[:rows],
            None if sample_probabilities is None else np.asarray(sample_probabilities)[:rows],
        )
        return _verified(model, converter, reference, target, prefer_float32=prefer_float32)
    except GraphUnavailableError as exc:
        shutil.rmtree(target.parent, ignore_errors=True)
        logger.info("no accelerated graph: %s", exc)
        return AccelerationSection(status="unavailable", reason=str(exc))


@dataclass(frozen=True)
class _Reference:
    """The sample rows and what the native model answered on them."""

    signature: Signature
    sample: Sample
    predictions: np.ndarray
    probabilities: np.ndarray | None


def _verified(
    model: Any,
    flavor: OnnxConvertible,
    reference: _Reference,
    target: Path,
    *,
    prefer_float32: bool = False,
) -> AccelerationSection:
    if model is None:
        raise GraphUnavailableError("the native model object is not available to convert")
    native, probabilities = reference.predictions, reference.probabilities
    inputs = graph_inputs(flavor, model, reference.signature)
    batch = server_batch(inputs, reference.signature, reference.sample)
    request = OnnxRequest(model, inputs, predicts_values(native, probabilities), prefer_float32)
    graph = convert(flavor, request)
    label, probability = graph_outputs(graph, probabilities)
    section = AccelerationSection(
        status="verified",
        file=ACCELERATED_FILE,
        input_layout=inputs.layout,
        input_names=[spec.name for spec in inputs.inputs],
        output_label=label,
        output_probabilities=probability,
        prediction_dtype="object" if native.dtype.kind in "OUS" else native.dtype.name,
        rows_checked=len(native),
    )
    predictor = AcceleratedPredictor(graph.session, section, column_names(reference.signature))
    difference, tolerance = compare(predictor, batch, native, probabilities)
    try:
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(graph.data)
    except OSError as exc:
        raise GraphUnavailableError(f"cannot write {ACCELERATED_FILE}: {exc}") from None
    return section.model_copy(update={"max_abs_diff": difference, "tolerance": tolerance})
