"""The public functions: ``register``, ``load``, ``save``, aliases, stages, search, audit,
``batch_predict`` and ``export``.

Each call builds the registry from ``Settings`` (the ``MODELPORT_*`` environment) and
releases it afterwards, so there is no hidden global state. For many operations in a
row, ``connect()`` returns a ``RegistryService`` to reuse (and close).

With ``MODELPORT_REGISTRY_URL`` set, every function talks to that control plane over
HTTP instead (``modelport.client.RegistryClient``, which has the same methods and
raises the same errors): no database credentials are needed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from modelport.bootstrap import build_registry
from modelport.client import RegistryClient
from modelport.config import Settings, VersionCheck
from modelport.domain.entities import AuditEntry, ModelVersion, RegisteredModel
from modelport.domain.params import ParamSchema, ParamSpec, param_schema_of
from modelport.domain.signature import Signature
from modelport.flavors.catalog import default_catalog
from modelport.package.loaded import LoadedModel
from modelport.package.location import locate_model
from modelport.package.manifest import Manifest
from modelport.package.options import PackageOptions
from modelport.package.reader import load_package
from modelport.package.writer import build_package
from modelport.registry.service import RegistryService

if TYPE_CHECKING:
    from modelport.batch.job import BatchSummary
    from modelport.package.export.exporter import ExportResult

T = TypeVar("T")
InferenceParams = ParamSchema | Mapping[str, Any] | Sequence[ParamSpec]


Registry = RegistryService | RegistryClient


def connect(settings: Settings | None = None) -> Registry:
    """A registry for ``settings`` (default: from the environment): the control plane at
    ``registry_url`` over HTTP when it is set, else the database and artifact store.
    Close it when done, or use it as a context manager."""
    settings = settings or Settings()
    if settings.registry_url is not None:
        return RegistryClient.from_settings(settings)
    return build_registry(settings)


@contextmanager
def _registry(settings: Settings | None) -> Iterator[Registry]:
    registry = connect(settings)
    try:
        yield registry
    finally:
        registry.close()


def _with_registry(settings: Settings | None, action: Callable[[Registry], T]) -> T:
    with _registry(settings) as registry:
        return action(registry)


def _options(
    *,
    sample_input: Any,
    signature: Signature | None,
    flavor: str | None,
    metrics: Mapping[str, float] | None,
    params: Mapping[str, Any] | None,
    tags: Mapping[str, str] | None,
    description: str,
    trust: Sequence[str],
    flavor_options: Mapping[str, Any],
    accelerate: bool = True,
    inference_params: InferenceParams | None = None,
    id_columns: Sequence[str] | None = None,
) -> PackageOptions:
    return PackageOptions(
        sample_input=sample_input,
        signature=signature,
        flavor=flavor,
        metrics=dict(metrics or {}),
        params=dict(params or {}),
        tags=dict(tags or {}),
        description=description,
        trust=tuple(trust),
        flavor_options={k: v for k, v in flavor_options.items() if v is not None},
        accelerate=accelerate,
        inference_params=param_schema_of(inference_params) if inference_params else None,
        id_columns=tuple(id_columns or ()),
    )


def register(
    model: Any,
    name: str,
    *,
    sample_input: Any = None,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    description: str = "",
    flavor: str | None = None,
    signature: Signature | None = None,
    trust: Sequence[str] = (),
    code_paths: Sequence[str | Path] | None = None,
    artifacts: Mapping[str, str | Path] | None = None,
    model_config: Mapping[str, Any] | None = None,
    requirements: Sequence[str] | None = None,
    accelerate: bool = True,
    inference_params: InferenceParams | None = None,
    id_columns: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> ModelVersion:
    """Package a model and register it as the next version of ``name``.

    ``model`` is a live model object, a model file (``.joblib``, ``.pkl``, ``.skops``,
    ``.onnx``, ``.json``/``.ubj``, ``.txt``, ``.pt``/``.pt2``) or a package directory.
    ``sample_input`` (ideally the training data) gives the signature, the input example
    and the reference statistics. ``trust`` names globals in pickles (``"pkg.Class"`` or
    ``"pkg.*"``) you vouch for; it is recorded. ``code_paths``, ``artifacts``,
    ``model_config`` and ``requirements`` apply to ``PythonModel`` subclasses.
    ``accelerate=False`` skips the ONNX conversion of scikit-learn, XGBoost and LightGBM
    models (by default the converted graph is stored, and served, when its outputs on the
    sample match the model's).

    ``params`` are lineage (training hyperparameters, recorded as text).
    ``inference_params`` are the parameters a request may pass at predict time (MLflow's
    ``ParamSchema``): a mapping of name to default value (types inferred: ``{"temperature":
    0.7, "top_k": 5}``), or a ``ParamSchema``/list of ``ParamSpec`` for explicit types.
    They are stored in the signature, so they need one (``sample_input`` or
    ``signature``); a ``signature`` from ``infer_signature(x, y, params=...)`` may carry
    them instead. Only a ``PythonModel`` whose ``predict`` takes ``params`` receives them;
    for other models they are type-checked and dropped (``ParamsIgnoredWarning``).

    ``id_columns`` name columns that identify a row (``["customer_id"]``), which are not
    model inputs: requests may send them, the server logs them (as ``id_<name>`` in the
    prediction log) and returns them (V2: as extra outputs), and never passes them to the
    model. They are stored in the signature, so they need one.
    """
    options = _options(
        sample_input=sample_input,
        signature=signature,
        flavor=flavor,
        metrics=metrics,
        params=params,
        tags=tags,
        description=description,
        trust=trust,
        flavor_options={
            "code_paths": code_paths,
            "artifacts": artifacts,
            "config": model_config,
            "requirements": requirements,
        },
        accelerate=accelerate,
        inference_params=inference_params,
        id_columns=id_columns,
    )
    return _with_registry(settings, lambda r: r.register(model, name, options))


def save(
    model: Any,
    path: str | Path,
    *,
    sample_input: Any = None,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    description: str = "",
    flavor: str | None = None,
    signature: Signature | None = None,
    trust: Sequence[str] = (),
    code_paths: Sequence[str | Path] | None = None,
    artifacts: Mapping[str, str | Path] | None = None,
    model_config: Mapping[str, Any] | None = None,
    requirements: Sequence[str] | None = None,
    accelerate: bool = True,
    inference_params: InferenceParams | None = None,
    id_columns: Sequence[str] | None = None,
) -> Manifest:
    """Write a package for ``model`` into the directory ``path`` (no registry needed).
    The arguments are those of ``register``."""
    options = _options(
        sample_input=sample_input,
        signature=signature,
        flavor=flavor,
        metrics=metrics,
        params=params,
        tags=tags,
        description=description,
        trust=trust,
        flavor_options={
            "code_paths": code_paths,
            "artifacts": artifacts,
            "config": model_config,
            "requirements": requirements,
        },
        accelerate=accelerate,
        inference_params=inference_params,
        id_columns=id_columns,
    )
    return build_package(model, Path(path), default_catalog(), options)


def load(
    model_uri: str | Path,
    *,
    trust: Iterable[str] = (),
    version_check: VersionCheck | None = None,
    settings: Settings | None = None,
) -> LoadedModel:
    """Load a model from a package directory or from the registry, verifying every file
    first.

    ``model_uri`` is a directory containing ``modelport.yaml``, or else a reference:
    ``models:/churn/3``, ``models:/churn@production``, ``churn/3``, ``churn@production`` or
    a bare ``churn`` for its latest version (``models:/...`` always means the registry).
    Anything else raises ``InvalidArgumentError``. The rule is
    ``modelport.package.location.locate_model``'s, shared with ``modelport serve``.
    """
    settings = settings or Settings()
    found = locate_model(model_uri)
    if isinstance(found, Path):
        return load_package(
            found,
            default_catalog(),
            trust=trust,
            version_check=version_check or settings.version_check,
        )
    return _with_registry(
        settings, lambda r: r.load(found, trust=trust, version_check=version_check)
    )


def get_model(name: str, *, settings: Settings | None = None) -> RegisteredModel:
    """A registered model with its aliases."""
    return _with_registry(settings, lambda r: r.get_model(name))


def list_models(*, settings: Settings | None = None) -> list[RegisteredModel]:
    """Every registered model."""
    return _with_registry(settings, lambda r: r.list_models())


def list_versions(name: str, *, settings: Settings | None = None) -> list[ModelVersion]:
    """Every version of a model, newest first."""
    return _with_registry(settings, lambda r: r.list_versions(name))


def get_version(name: str, version: int, *, settings: Settings | None = None) -> ModelVersion:
    """One version of a model."""
    return _with_registry(settings, lambda r: r.get_version(name, version))


def resolve(ref: str, *, settings: Settings | None = None) -> ModelVersion:
    """The version a reference names, e.g. ``resolve("churn@production")``."""
    return _with_registry(settings, lambda r: r.resolve(ref))


def set_alias(
    name: str,
    alias: str,
    version: int,
    *,
    force: bool = False,
    skip_gates: str | None = None,
    settings: Settings | None = None,
) -> ModelVersion:
    """Point an alias (``champion``, or a stage) at a version.

    A version without a signature gets a ``MissingSignatureWarning`` (any alias but
    ``production``, which refuses it like ``promote``); ``force=True`` goes ahead quietly.
    An alias the promotion gates guard runs them first, as ``promote`` does.
    """
    return _with_registry(
        settings,
        lambda r: r.set_alias(name, alias, version, force=force, skip_gates=skip_gates),
    )


def delete_alias(name: str, alias: str, *, settings: Settings | None = None) -> None:
    """Remove an alias or stage from a model."""
    _with_registry(settings, lambda r: r.delete_alias(name, alias))


def promote(
    name: str,
    version: int,
    stage: str,
    *,
    archive_previous: bool = False,
    force: bool = False,
    skip_gates: str | None = None,
    settings: Settings | None = None,
) -> ModelVersion:
    """Move a stage (``staging``, ``production``) to a version, or archive it
    (``archived``: a status, not a pointer; see ``archive_version``).

    ``production`` refuses a version without a signature (``MissingSignatureError``:
    register it with ``sample_input``) unless ``force=True``, which the audit trail
    records; ``staging`` takes it with a ``MissingSignatureWarning``.

    ``production`` (or what ``[gates] targets`` names) first runs the promotion gates
    of ``[gates]``: ``GateFailedError`` with every gate's numbers when one fails or
    cannot be evaluated. ``skip_gates="reason"`` skips them; the audit trail records it.
    """
    return _with_registry(
        settings,
        lambda r: r.promote(
            name,
            version,
            stage,
            archive_previous=archive_previous,
            force=force,
            skip_gates=skip_gates,
        ),
    )


def archive_version(name: str, version: int, *, settings: Settings | None = None) -> ModelVersion:
    """Archive a version: it keeps its number and files but leaves every alias
    (refused while it is in staging or production); ``search_versions("status =
    archived")`` finds every archived version."""
    return _with_registry(settings, lambda r: r.archive_version(name, version))


def delete_version(name: str, version: int, *, settings: Settings | None = None) -> None:
    """Delete a version and its files (refused while an alias points at it)."""
    _with_registry(settings, lambda r: r.delete_version(name, version))


def delete_model(name: str, *, settings: Settings | None = None) -> None:
    """Delete a model with all its versions (refused while it has aliases)."""
    _with_registry(settings, lambda r: r.delete_model(name))


def search_versions(
    filter: str | None = None,
    *,
    max_results: int = 1000,
    settings: Settings | None = None,
) -> list[ModelVersion]:
    """Versions matching e.g. ``"name = 'churn' AND metrics.auc > 0.9"``."""
    return _with_registry(settings, lambda r: r.search_versions(filter, max_results=max_results))


def get_audit_log(
    model: str | None = None,
    *,
    since: datetime | None = None,
    limit: int = 100,
    settings: Settings | None = None,
) -> list[AuditEntry]:
    """The audit trail of changes, newest first."""
    return _with_registry(settings, lambda r: r.get_audit_log(model, since=since, limit=limit))


def batch_predict(
    model_ref: str,
    input: str | Sequence[str],
    output: str,
    *,
    output_format: Literal["parquet", "csv"] | None = None,
    input_format: Literal["parquet", "csv"] | None = None,
    keep: Sequence[str] | None = None,
    outputs: Sequence[str] = ("prediction",),
    on_error: Literal["fail", "skip", "null"] = "fail",
    resume: bool = False,
    allow_moved_alias: bool = False,
    overwrite: bool = False,
    engine: Literal["local", "dask", "ray"] = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    chunk_rows: int = 100_000,
    log_predictions: bool = False,
    progress: bool | None = None,
    settings: Settings | None = None,
) -> BatchSummary:
    """Score files with a registered model and write the scores as a directory of parts.

    ``input`` is a CSV or Parquet file, a directory of them, a glob, any of these at an
    fsspec URI (``s3://bucket/day=*/*.parquet``), or a list. ``output`` is a directory
    (``scores.parquet``) committed whole when every part is written: its ``_SUCCESS``
    and ``_modelport.json`` (the summary) say it is complete. The output holds the
    ``keep`` columns (default: the signature's id columns), the ``outputs``
    (``prediction``, and ``probabilities`` for classifiers) and the model's name and
    version. ``on_error``: ``fail`` (default) stops at the first bad row, naming its
    file, row and column; ``skip`` leaves bad rows out and ``null`` keeps them with empty
    predictions, both listing them in ``_errors/``.

    ``resume=True`` continues an interrupted run with the model version it started
    with (refused if ``model_ref``'s alias moved since, unless ``allow_moved_alias``);
    ``overwrite=True`` replaces an existing output. ``engine`` is ``local`` (threads in
    this process, ``workers`` of them, default one per core), ``dask`` or ``ray``
    (``scheduler``: the cluster's address; default a local cluster of ``workers``).
    ``progress``: True shows a bar on a terminal and periodic lines otherwise; None (the
    default) a bar on a terminal only. ``log_predictions`` writes the scores to the
    prediction log, to be joined with labels later.

    With ``MODELPORT_REGISTRY_URL`` set, the reference is resolved by the control plane
    and its package downloaded into the local cache (every sha256 checked) before any
    row is scored; workers on other machines download it with their own
    ``MODELPORT_API_KEY``.
    """
    from modelport.batch.job import BatchJob
    from modelport.batch.scoring import ScoringOptions
    from modelport.bootstrap import run_batch_job

    settings = settings or Settings()
    job = BatchJob(
        model_ref=model_ref,
        inputs=input,
        output=str(output),
        options=ScoringOptions(
            outputs=tuple(outputs),
            keep=None if keep is None else tuple(keep),
            on_error=on_error,
        ),
        input_format=input_format,
        output_format=output_format,
        chunk_rows=chunk_rows,
        resume=resume,
        allow_moved_alias=allow_moved_alias,
        overwrite=overwrite,
        engine=engine,
        scheduler=scheduler,
        workers=workers,
    )

    return run_batch_job(job, settings, progress=progress, log_predictions=log_predictions)


def export(
    model_uri: str | Path,
    out: str | Path,
    *,
    format: Literal["onnx"] = "onnx",
    quantize: Literal["int8"] | None = None,
    tolerance: float | None = None,
    min_agreement: float | None = None,
    allow_accuracy_loss: bool = False,
    overwrite: bool = False,
    trust: Iterable[str] = (),
    settings: Settings | None = None,
) -> ExportResult:
    """Export a model (``churn/3``, ``churn@production`` or a package directory) as one
    ONNX file ``out`` for edge runtimes, and say how it was checked.

    The graph is the one acceleration verifies: the package's verified graph, or one
    converted now (scikit-learn, XGBoost, LightGBM) and checked against the native
    model; an ONNX model is already one. A model that cannot be converted raises
    ``UnsupportedOperationError`` with the reason. ``quantize="int8"`` quantizes its
    weights dynamically (a graph without quantizable weights, such as a tree ensemble,
    is written unquantized with a ``QuantizationSkippedWarning``).

    The graph is compared with the native model on the input example and rows drawn
    from the reference statistics: the share of equal labels must be at least
    ``min_agreement`` (default 0.99) and probabilities (or, relative to their scale,
    predicted values) may differ by ``tolerance`` (default 0.05). Beyond that,
    ``AccuracyLossError`` with the numbers, or with ``allow_accuracy_loss=True`` an
    ``AccuracyLossWarning`` and the file is written. The signature, inputs and outputs
    are written into the graph's ``metadata_props`` (``modelport.signature``, ...).
    """
    from modelport.package.export.accuracy import Limits
    from modelport.package.export.exporter import ExportOptions, export_model

    options = ExportOptions(
        format=format,
        quantize=quantize,
        limits=Limits.of(tolerance, min_agreement),
        allow_accuracy_loss=allow_accuracy_loss,
        overwrite=overwrite,
    )
    with load(model_uri, trust=trust, settings=settings) as loaded:
        return export_model(loaded, Path(out), default_catalog(), options)
