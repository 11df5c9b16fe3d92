"""Writing a package: from a live model, a model file, or an existing package."""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelport.domain.params import ParamSchema
from modelport.domain.predictor import accepts_params
from modelport.domain.signature import Signature
from modelport.errors import (
    InvalidArgumentError,
    MissingDependencyError,
    PackageError,
    PackageExistsError,
    ParamsIgnoredWarning,
    UnknownFlavorError,
)
from modelport.flavors.base import LoadContext, Sample, SaveContext, SavedFlavor
from modelport.flavors.catalog import FlavorCatalog
from modelport.package.acceleration.accelerator import accelerate, converts_to_onnx, native_model
from modelport.package.digests import compute_digests
from modelport.package.environment import capture_environment
from modelport.package.example import check_input_example, write_input_example
from modelport.package.lineage import fingerprint, git_info
from modelport.package.location import MANIFEST_FILE, is_package_dir
from modelport.package.manifest import (
    INPUT_EXAMPLE_FILE,
    MODEL_DIR,
    REFERENCE_STATS_FILE,
    EnvironmentSection,
    FlavorSection,
    LineageSection,
    Manifest,
    TrustSection,
    read_manifest,
    write_manifest,
)
from modelport.package.options import (
    PackageOptions,
    clean_metrics,
    clean_params,
    clean_tags,
)
from modelport.package.reader import verify_package
from modelport.package.sample_schema import infer_signature, normalize_sample
from modelport.package.stats import reference_statistics

logger = logging.getLogger(__name__)

# Predictions for the reference statistics and the round-trip check are computed on
# at most this many rows, so registering a model with its whole training set stays fast.
_MAX_PREDICTION_ROWS = 10_000
_ROUND_TRIP_ROWS = 100


def build_package(
    source: Any, destination: Path, catalog: FlavorCatalog, options: PackageOptions
) -> Manifest:
    """Write a package for ``source`` (a live model, a model file, or a package
    directory) into ``destination``, which must not exist or be empty."""
    _prepare_destination(destination)
    try:
        if isinstance(source, str | Path) and is_package_dir(Path(source)):
            return _repackage(Path(source), destination, catalog, options)
        return _package_model(source, destination, catalog, options)
    except BaseException:
        shutil.rmtree(destination, ignore_errors=True)
        raise


def _prepare_destination(destination: Path) -> None:
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise PackageExistsError(
            f"{destination} already exists and is not an empty directory; "
            "choose a new path or remove it first",
            field="path",
        )
    destination.mkdir(parents=True, exist_ok=True)


def _package_model(
    source: Any, destination: Path, catalog: FlavorCatalog, options: PackageOptions
) -> Manifest:
    sample = normalize_sample(options.sample_input) if options.sample_input is not None else None
    lineage = _lineage(options, sample)  # checks metrics, params and tags before any work
    trust = tuple(options.trust)
    context = SaveContext(sample=sample, trust=trust, options=dict(options.flavor_options))
    model_dir = destination / MODEL_DIR
    model_dir.mkdir()
    if isinstance(source, str | Path):
        path = _existing_file(Path(source))
        flavor = catalog.get(options.flavor) if options.flavor else catalog.for_file(path)
        saved = flavor.import_file(path, model_dir, context)
    else:
        flavor = catalog.get(options.flavor) if options.flavor else catalog.for_object(source)
        saved = flavor.save(source, model_dir, context)
    declared = _declared_params(options)
    predictor = flavor.load(model_dir, saved.spec, LoadContext(trust=saved.trusted))
    try:
        takes_params = accepts_params(predictor)
        defaults = declared.defaults if declared and takes_params else None
        outputs = _describe_outputs(predictor, sample, source, defaults)
        native = native_model(source, predictor)
        signature = options.signature or _signature(sample, outputs.predictions) or saved.signature
        signature = _with_params(signature, declared)
        signature = _with_id_columns(signature, options.id_columns)
        if sample is not None:
            _write_sample_files(sample, outputs, destination)
            check_input_example(predictor, destination / INPUT_EXAMPLE_FILE, signature, defaults)
    finally:
        predictor.close()
    if declared and not takes_params:
        warnings.warn(_ignored_params(flavor.name, declared), stacklevel=4)
    acceleration = None
    # Before the digests. Flavors without a to_onnx hook (onnx, torch, python) get no
    # section, as if acceleration were off: there is nothing to try for them.
    if options.accelerate and converts_to_onnx(flavor):
        acceleration = accelerate(
            native,
            flavor,
            destination,
            signature=signature,
            sample=sample,
            sample_predictions=outputs.predictions,
            sample_probabilities=outputs.probabilities,
        )
    manifest = Manifest(
        created_at=datetime.now(UTC),
        description=options.description,
        flavor=FlavorSection(name=flavor.name, spec=saved.spec),
        signature=signature.to_dict() if signature is not None else None,
        environment=_environment(saved, flavor.framework),
        lineage=lineage,
        trust=TrustSection(granted=sorted(set(trust)), used=sorted(set(saved.trusted))),
        input_example=INPUT_EXAMPLE_FILE if sample is not None else None,
        reference_stats=REFERENCE_STATS_FILE if sample is not None else None,
        acceleration=acceleration,
        files=compute_digests(destination),
    )
    write_manifest(destination, manifest)
    return manifest


def _write_sample_files(sample: Sample, outputs: _Outputs, destination: Path) -> None:
    """The input example and the reference statistics, both drawn from the sample."""
    write_input_example(sample, destination / INPUT_EXAMPLE_FILE)
    stats = reference_statistics(
        sample, outputs.predictions, outputs.probabilities, outputs.classes
    )
    (destination / REFERENCE_STATS_FILE).write_text(
        json.dumps(stats, allow_nan=False), encoding="utf-8"
    )


def _existing_file(path: Path) -> Path:
    if not path.exists():
        raise InvalidArgumentError(f"no such file: {path}", field="model")
    if path.is_dir():
        raise InvalidArgumentError(
            f"{path} is a directory without {MANIFEST_FILE}; pass a model file or a package",
            field="model",
        )
    return path


def _environment(saved: SavedFlavor, framework: str | None) -> EnvironmentSection:
    libraries = [*saved.libraries, "numpy", "pandas"]
    return capture_environment(libraries, framework)


@dataclass(frozen=True)
class _Outputs:
    predictions: Any = None
    probabilities: np.ndarray | None = None
    classes: list[Any] | None = None


def _describe_outputs(
    predictor: Any, sample: Sample | None, source: Any, params: Mapping[str, Any] | None
) -> _Outputs:
    """Predict on the sample with the *reloaded* model, checking it matches the original;
    a model that takes inference params gets their defaults."""
    if sample is None:
        return _Outputs()
    head = _head(sample, _MAX_PREDICTION_ROWS)
    extra = () if params is None else (params,)
    predictions = predictor.predict(head, *extra)
    _check_round_trip(source, predictions, head)
    probabilities = (
        np.asarray(predictor.predict_proba(head, *extra)) if predictor.supports_proba else None
    )
    classes = getattr(predictor, "classes", None)
    return _Outputs(predictions, probabilities, list(classes) if classes is not None else None)


def _head(sample: Sample, rows: int) -> Sample:
    if isinstance(sample, dict):
        return {name: array[:rows] for name, array in sample.items()}
    return sample.iloc[:rows] if isinstance(sample, pd.DataFrame) else sample[:rows]


def _check_round_trip(source: Any, reloaded: Any, head: Sample) -> None:
    """A live estimator (``predict`` + ``get_params``) must answer the same after saving."""
    predict = getattr(source, "predict", None)
    if isinstance(source, str | Path) or not callable(predict) or not hasattr(source, "get_params"):
        return
    expected = np.asarray(predict(_head(head, _ROUND_TRIP_ROWS)))
    actual = np.asarray(reloaded)[:_ROUND_TRIP_ROWS]
    numeric = expected.dtype.kind in "fc" and actual.dtype.kind in "fciu"
    same = expected.shape == actual.shape and (
        np.allclose(expected, actual, rtol=1e-5, atol=1e-8, equal_nan=True)
        if numeric
        else np.array_equal(expected, actual)
    )
    if not same:
        raise PackageError(
            "the saved model does not give the same predictions as the original; "
            "it cannot be packaged faithfully (please report this with the model type)"
        )


def _signature(sample: Sample | None, predictions: Any) -> Signature | None:
    return infer_signature(sample, predictions) if sample is not None else None


def _with_id_columns(signature: Signature | None, names: Sequence[str]) -> Signature | None:
    if not names:
        return signature
    if signature is None:
        raise InvalidArgumentError(
            "id columns need a signature: give a sample input (or a signature) too",
            field="id_columns",
        )
    return signature.with_id_columns(names)


def _declared_params(options: PackageOptions) -> ParamSchema | None:
    """The inference params the package declares: given apart, or in the signature."""
    given = options.inference_params or None
    in_signature = options.signature.params if options.signature is not None else None
    if given and in_signature and given != in_signature:
        raise InvalidArgumentError(
            "the signature already declares params and inference_params declares others: "
            "pass them in one place",
            field="inference_params",
        )
    return given or in_signature or None


def _with_params(signature: Signature | None, params: ParamSchema | None) -> Signature | None:
    if not params or (signature is not None and signature.params == params):
        return signature
    if signature is None:
        raise InvalidArgumentError(
            "inference_params are declared in the model's signature, and this model has "
            "none: pass sample_input (or signature) as well",
            field="inference_params",
        )
    return replace(signature, params=params)


def _ignored_params(flavor: str, params: ParamSchema) -> ParamsIgnoredWarning:
    return ParamsIgnoredWarning(
        f"the signature declares inference params {params.names}, but this {flavor} model's "
        "predict takes no params: requests' params will be type-checked against the "
        "signature, then not passed to the model (as MLflow does). Only a PythonModel "
        "whose predict has a params argument receives them."
    )


def _lineage(options: PackageOptions, sample: Sample | None) -> LineageSection:
    return LineageSection(
        params=clean_params(options.params),
        metrics=clean_metrics(options.metrics),
        tags=clean_tags(options.tags),
        training_data=fingerprint(sample) if sample is not None else None,
        git=git_info(Path.cwd()),
    )


def _repackage(
    source: Path, destination: Path, catalog: FlavorCatalog, options: PackageOptions
) -> Manifest:
    """Copy a verified package, adding the given metrics, params and tags to its lineage."""
    if options.inference_params:
        raise InvalidArgumentError(
            f"{source} is already a package: its signature (and the inference params it "
            "declares) cannot change; register the model itself with inference_params",
            field="inference_params",
        )
    manifest = verify_package(source)
    shutil.copytree(
        source, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    _check_copied_example(destination, manifest, catalog)
    lineage = manifest.lineage.model_copy(
        update={
            "metrics": {**manifest.lineage.metrics, **clean_metrics(options.metrics)},
            "params": {**manifest.lineage.params, **clean_params(options.params)},
            "tags": {**manifest.lineage.tags, **clean_tags(options.tags)},
        }
    )
    updated = manifest.model_copy(
        update={"lineage": lineage, "description": options.description or manifest.description}
    )
    write_manifest(destination, updated)
    return read_manifest(destination)


def _check_copied_example(directory: Path, manifest: Manifest, catalog: FlavorCatalog) -> None:
    """The check ``_package_model`` makes, on a package written elsewhere: its model must
    predict on its own example. Skipped, with a warning, where the flavor cannot load
    (its library is not installed here): the package was checked when it was written."""
    if manifest.input_example is None:
        return
    try:
        flavor = catalog.get(manifest.flavor.name)
        context = LoadContext(trust=tuple(manifest.trust.used))
        predictor = flavor.load(directory / MODEL_DIR, manifest.flavor.spec, context)
    except (MissingDependencyError, UnknownFlavorError) as exc:
        logger.warning("not checking the package's input example: %s", exc)
        return
    signature = manifest.signature
    declared = signature.params if signature is not None else None
    defaults = declared.defaults if declared and accepts_params(predictor) else None
    try:
        check_input_example(predictor, directory / manifest.input_example, signature, defaults)
    finally:
        predictor.close()
