"""``modelport export``: a model as one ONNX file for edge runtimes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelport.cli.output import format_value, print_fields, print_json, warnings_on_stderr
from modelport.cli.state import json_option, state

if TYPE_CHECKING:
    from modelport.package.loaded import LoadedModel


@click.command("export")
@click.argument("ref")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["onnx"]),
    default="onnx",
    show_default=True,
    help="The file format.",
)
@click.option("--out", required=True, help="The file to write (churn.onnx).")
@click.option(
    "--quantize",
    type=click.Choice(["int8"]),
    help="Quantize the graph's weights dynamically (MatMul/Conv/Gather weights to int8).",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    help="Largest accepted difference from the native model: in class probabilities, or in "
    "predicted values relative to their scale (default 0.05).",
)
@click.option(
    "--min-agreement",
    type=click.FloatRange(min=0, max=1),
    help="Smallest accepted share of labels equal to the native model's (default 0.99).",
)
@click.option(
    "--allow-accuracy-loss",
    is_flag=True,
    help="Write a graph beyond the tolerance anyway, with a warning, instead of refusing.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
@click.option(
    "--trust", multiple=True, help="A global in a pickle you vouch for (pkg.Class or pkg.*)."
)
@json_option
def export(
    *,
    ref: str,
    export_format: str,
    out: str,
    quantize: str | None,
    tolerance: float | None,
    min_agreement: float | None,
    allow_accuracy_loss: bool,
    overwrite: bool,
    trust: tuple[str, ...],
    as_json: bool,
) -> None:
    """Export the model REF (churn/3, churn@production, or a package directory) as one
    ONNX file that any ONNX runtime can run.

    The graph is the one acceleration verifies (the package's, or converted now and
    checked against the native model), optionally quantized, then compared with the
    native model on the input example and on rows drawn from the reference statistics:
    beyond the tolerance it is refused (or, with --allow-accuracy-loss, written with a
    warning). The signature is written into the graph's metadata (modelport.signature).

    \b
    Examples:
      modelport export churn/3 --out churn.onnx
      modelport export churn@production --quantize int8 --out churn-int8.onnx --json
    """
    from modelport.flavors.catalog import default_catalog
    from modelport.package.export.accuracy import Limits
    from modelport.package.export.exporter import ExportOptions, export_model

    options = ExportOptions(
        format="onnx",
        quantize="int8" if quantize == "int8" else None,
        limits=Limits.of(tolerance, min_agreement),
        allow_accuracy_loss=allow_accuracy_loss,
        overwrite=overwrite,
    )
    with warnings_on_stderr(as_json=as_json), _loaded(ref, trust) as loaded:
        result = export_model(loaded, Path(out), default_catalog(), options)
    document = result.to_dict()
    if as_json:
        print_json(document)
        return
    _print(document)


def _loaded(ref: str, trust: tuple[str, ...]) -> LoadedModel:
    """The native model REF names: a package directory, or a version in the registry."""
    from modelport.flavors.catalog import default_catalog
    from modelport.package.location import locate_model
    from modelport.package.reader import load_package

    found = locate_model(ref)
    if isinstance(found, Path):
        version_check = state().settings.version_check
        return load_package(found, default_catalog(), trust=trust, version_check=version_check)
    return state().registry().load(found, trust=trust)


def _print(document: dict[str, Any]) -> None:
    accuracy = document["accuracy"]
    quantization = document["quantization"]
    print_fields(
        [
            ("written", f"{document['path']} ({document['size_bytes']:,} bytes)"),
            ("model", document["source"]),
            ("graph", _origin(document["graph"])),
            ("inputs", [_port(port) for port in document["inputs"]]),
            ("outputs", [_port(port) for port in document["outputs"]]),
            ("quantization", _quantized(quantization) if quantization else "none"),
            ("checked on", _rows(accuracy)),
            ("agreement", _agreement(accuracy)),
        ]
    )
    for note in document["notes"]:
        click.echo(f"note: {note}")


def _origin(origin: str) -> str:
    return {
        "package": "the package's verified accelerated graph",
        "converted": "converted now and verified against the native model",
        "onnx-model": "the ONNX model itself",
    }.get(origin, origin)


def _port(port: dict[str, Any]) -> str:
    shape = (
        "?"
        if port["shape"] is None
        else format_value(["N" if d is None else d for d in port["shape"]])
    )
    return f"{port['name']} {port['type']}[{shape}]"


def _quantized(quantization: dict[str, Any]) -> str:
    if not quantization["applied"]:
        return "none (nothing to quantize)"
    return (
        f"int8 dynamic, {quantization['quantized_weights']} weight tensors, "
        f"{quantization['bytes_before']:,} -> {quantization['bytes_after']:,} bytes"
    )


def _rows(accuracy: dict[str, Any]) -> str:
    return (
        f"{accuracy['rows']} rows ({accuracy['example_rows']} from the input example, "
        f"{accuracy['reference_rows']} drawn from the reference statistics)"
    )


def _agreement(accuracy: dict[str, Any]) -> str:
    parts = []
    if accuracy["label_agreement"] is not None:
        parts.append(f"labels {accuracy['label_agreement']:.2%}")
    if accuracy["max_abs_diff"] is not None:
        parts.append(
            f"{accuracy['compared']} within {accuracy['max_abs_diff']:.3g} "
            f"(tolerance {accuracy['tolerance']:.3g})"
        )
    return ", ".join(parts)
