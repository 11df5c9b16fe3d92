"""``export_model``: a package's model as one ONNX file, checked and self-describing.

Steps: the check rows (input example + rows drawn from the reference statistics) ->
the native model's answers on them -> the verified graph (``graph``) -> int8
quantization when asked (``quantization``) -> the graph against the native answers
(``accuracy``: refused beyond the limits unless ``allow_accuracy_loss``) -> the
signature into the metadata (``metadata``) -> the file, written whole or not at all.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from modelport.errors import (
    AccuracyLossError,
    AccuracyLossWarning,
    InvalidArgumentError,
    PackageError,
    QuantizationSkippedWarning,
    UnsupportedOperationError,
)
from modelport.flavors.catalog import FlavorCatalog
from modelport.package.export.accuracy import Accuracy, Limits, measure
from modelport.package.export.graph import ExportGraph, NativeAnswers, export_graph
from modelport.package.export.metadata import as_json, graph_ports, with_metadata
from modelport.package.export.quantization import Quantization, quantize_int8
from modelport.package.export.rows import REFERENCE_ROWS, CheckRows, check_rows
from modelport.package.loaded import LoadedModel
from modelport.package.manifest import AccelerationSection

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)


@dataclass(frozen=True)
class ExportOptions:
    """How to export: ``format`` (``onnx``), ``quantize`` (None or ``int8``), the
    accuracy ``limits``, whether to write a graph beyond them anyway, whether to replace
    an existing file, and how many rows to draw from the reference statistics."""

    format: Literal["onnx"] = "onnx"
    quantize: Literal["int8"] | None = None
    limits: Limits = field(default_factory=Limits)
    allow_accuracy_loss: bool = False
    overwrite: bool = False
    reference_rows: int = REFERENCE_ROWS


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote and how it was checked."""

    path: Path
    format: str
    source: str
    model: str | None
    version: int | None
    graph: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    input_layout: str | None
    quantization: Quantization | None
    accuracy: Accuracy
    size_bytes: int
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """As ``modelport export --json`` prints it."""
        return {
            "path": str(self.path),
            "format": self.format,
            "source": self.source,
            "model": self.model,
            "version": self.version,
            "graph": self.graph,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "input_layout": self.input_layout,
            "quantization": None if self.quantization is None else self.quantization.to_dict(),
            "accuracy": self.accuracy.to_dict(),
            "size_bytes": self.size_bytes,
            "notes": list(self.notes),
        }


def export_model(
    loaded: LoadedModel, out: Path, catalog: FlavorCatalog, options: ExportOptions
) -> ExportResult:
    """Export ``loaded`` (its native model: load without ``accelerate``) to ``out``."""
    _check_options(options, out)
    rows = _rows(loaded, options)
    rows, native = _native_answers(loaded, rows)
    graph = export_graph(loaded, catalog, native, for_quantization=options.quantize is not None)
    data, quantization = graph.data, None
    if options.quantize == "int8":
        data, quantization = quantize_int8(data)
    accuracy = _measure(graph, data, native, options.limits, rows)
    notes = [note for note in (rows.note, quantization and quantization.note) if note]
    _judge(loaded, accuracy, options)
    if quantization is not None and not quantization.applied:
        warnings.warn(quantization.note or "nothing quantized", QuantizationSkippedWarning,
                      stacklevel=3)  # fmt: skip
    data = with_metadata(data, _properties(loaded, graph, data, quantization))
    _write(out, data)
    inputs, outputs = graph_ports(data)
    version = loaded.version
    return ExportResult(
        path=out,
        format=options.format,
        source=loaded.source,
        model=version.name if version is not None else None,
        version=version.version if version is not None else None,
        graph=graph.origin,
        inputs=inputs,
        outputs=outputs,
        input_layout=graph.section.input_layout if graph.section is not None else None,
        quantization=quantization,
        accuracy=accuracy,
        size_bytes=len(data),
        notes=tuple(notes),
    )


def _check_options(options: ExportOptions, out: Path) -> None:
    if options.format not in FORMATS:
        raise InvalidArgumentError(
            f"unknown export format {options.format!r}; accepted: {', '.join(FORMATS)}",
            field="format",
        )
    if options.quantize is not None and options.quantize not in QUANTIZATIONS:
        raise InvalidArgumentError(
            f"unknown quantization {options.quantize!r}; accepted: {', '.join(QUANTIZATIONS)}",
            field="quantize",
        )
    if out.is_dir():
        raise InvalidArgumentError(f"{out} is a directory; pass a file path", field="out")
    if out.exists() and not options.overwrite:
        raise InvalidArgumentError(
            f"{out} already exists; choose another path or pass --overwrite (overwrite=True)",
            field="out",
        )


def _rows(loaded: LoadedModel, options: ExportOptions) -> CheckRows:
    signature = loaded.signature
    if signature is None:
        raise UnsupportedOperationError(
            f"{loaded.source} has no signature, so the graph's inputs cannot be laid out; "
            "register the model with a sample input",
            field="signature",
        )
    rows = check_rows(
        loaded.input_example(), loaded.reference_stats(), signature, options.reference_rows
    )
    if rows.batch is None:
        raise PackageError(
            f"{loaded.source} has no input example or reference statistics to check an "
            "exported graph on; register the model with a sample input",
            field="input_example",
        )
    return rows


def _native_answers(loaded: LoadedModel, rows: CheckRows) -> tuple[CheckRows, NativeAnswers]:
    """The native model's answers on the rows; on the example alone when it fails on the
    drawn rows (missing values it never saw together, say), with the reason noted."""
    try:
        return rows, _answers(loaded, rows.batch)
    except Exception as exc:  # the model's own code may raise anything
        if rows.reference_rows == 0 or loaded.manifest.input_example is None:
            raise
        example = loaded.input_example()
        note = (
            "the native model fails on rows drawn from the reference statistics "
            f"({type(exc).__name__}: {exc}); checked on the input example only"
        )
        rows = replace(rows, batch=example, reference_rows=0, note=note)
        return rows, _answers(loaded, example)


def _answers(loaded: LoadedModel, batch: Any) -> NativeAnswers:
    predictions = np.asarray(loaded.predict(batch, validate=False))
    probabilities = (
        np.asarray(loaded.predict_proba(batch, validate=False), dtype=np.float64)
        if loaded.supports_proba
        else None
    )
    return NativeAnswers(batch, predictions, probabilities)


def _measure(
    graph: ExportGraph, data: bytes, native: NativeAnswers, limits: Limits, rows: CheckRows
) -> Accuracy:
    predictor = graph.open(data)
    try:
        return measure(predictor, native, limits, (rows.example_rows, rows.reference_rows))
    finally:
        predictor.close()


def _judge(loaded: LoadedModel, accuracy: Accuracy, options: ExportOptions) -> None:
    if accuracy.within_tolerance:
        return
    version = loaded.version
    text = f"the exported graph of {loaded.source} strays from the native model: "
    text += accuracy.describe()
    if options.allow_accuracy_loss:
        warnings.warn(text + "; written anyway, as allowed", AccuracyLossWarning, stacklevel=4)
        return
    raise AccuracyLossError(
        text + "; pass --allow-accuracy-loss (allow_accuracy_loss=True) to write it anyway, "
        "or widen --tolerance/--min-agreement",
        accuracy=accuracy.to_dict(),
        model=version.name if version is not None else None,
        version=version.version if version is not None else None,
    )


def _properties(
    loaded: LoadedModel, graph: ExportGraph, data: bytes, quantization: Quantization | None
) -> dict[str, str | None]:
    signature, version, section = loaded.signature, loaded.version, graph.section
    inputs, outputs = graph_ports(data)
    columns = getattr(signature.inputs, "names", None) if signature is not None else None
    return {
        "signature": as_json(signature.to_dict()) if signature is not None else None,
        "model": version.name if version is not None else None,
        "version": str(version.version) if version is not None else None,
        "source": loaded.source,
        "flavor": loaded.flavor,
        "inputs": as_json(inputs),
        "outputs": as_json(outputs),
        "input_layout": section.input_layout if section is not None else None,
        "columns": as_json(columns) if columns is not None else None,
        "label_output": _output(loaded, section, "label"),
        "probabilities_output": _output(loaded, section, "probabilities"),
        "quantization": "int8-dynamic" if quantization and quantization.applied else "none",
    }


def _output(loaded: LoadedModel, section: AccelerationSection | None, kind: str) -> str | None:
    """The output holding the labels (or values) or the probabilities: the acceleration
    section's, or for an ONNX model its flavor spec's."""
    if section is not None:
        return section.output_label if kind == "label" else section.output_probabilities
    spec = loaded.manifest.flavor.spec
    value = spec.get("label_output" if kind == "label" else "probability_output")
    return None if value is None else str(value)


def _write(out: Path, data: bytes) -> None:
    """Write ``data`` to ``out`` whole: a temporary file beside it, then renamed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
