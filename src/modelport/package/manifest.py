"""``modelport.yaml``: the manifest that makes a package self-describing and verifiable."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelport.domain.signature import Signature
from modelport.errors import CorruptPackageError, InvalidParameterError
from modelport.package.location import MANIFEST_FILE

FORMAT_VERSION = 1
MODEL_DIR = "model"
INPUT_EXAMPLE_FILE = "input_example.json"
REFERENCE_STATS_FILE = "reference_stats.json"
ACCELERATED_FILE = "accelerated/model.onnx"


# libyaml's safe loader when PyYAML was built with it: the same safe subset, parsed ~10x
# faster (a manifest with reference statistics took ~70 ms in the pure-Python loader).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileEntry(_Strict):
    """One file of the package: its sha256 and size in bytes."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class FlavorSection(_Strict):
    """Which flavor loads the model, and that flavor's own settings."""

    name: str
    spec: dict[str, Any] = Field(default_factory=dict)


class EnvironmentSection(_Strict):
    """The Python and library versions the model was saved with."""

    python: str
    modelport: str
    framework: str | None = None
    libraries: dict[str, str] = Field(default_factory=dict)
    requirements: list[str] = Field(default_factory=list)


class TrainingData(_Strict):
    """A fingerprint of the data the reference statistics describe."""

    sha256: str
    rows: int
    columns: int


class GitInfo(_Strict):
    """The commit of the repository the model was saved from."""

    commit: str
    dirty: bool


class LineageSection(_Strict):
    """Where the model came from: parameters, metrics, tags, data and code."""

    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    training_data: TrainingData | None = None
    git: GitInfo | None = None


class TrustSection(_Strict):
    """What the user explicitly trusted at save time, and which names needed it."""

    granted: list[str] = Field(default_factory=list)
    used: list[str] = Field(default_factory=list)


class AccelerationSection(_Strict):
    """The ONNX graph that may serve the model in place of the native one.

    ``verified``: ``file`` holds a graph whose outputs on the sample matched the native
    model's (see :mod:`modelport.package.acceleration.verification` for the tolerances);
    ``unavailable``: the native model serves, and ``reason`` says why. ``input_layout`` is
    the batch the server passes (``matrix``, ``columns`` or ``tensors``), ``input_names``
    the graph's inputs, ``output_label`` the output read as predictions (labels or
    values), ``output_probabilities`` the class probabilities output, and
    ``prediction_dtype`` the native predictions' dtype, which the graph's are cast to.
    ``max_abs_diff`` and ``tolerance`` are absolute, on probabilities for classifiers
    and on predictions for regressors.
    """

    status: Literal["verified", "unavailable"]
    runtime: Literal["onnxruntime"] = "onnxruntime"
    file: str | None = None
    input_layout: Literal["matrix", "columns", "tensors"] | None = None
    input_names: list[str] = Field(default_factory=list)
    output_label: str | None = None
    output_probabilities: str | None = None
    prediction_dtype: str | None = None
    rows_checked: int = Field(default=0, ge=0)
    max_abs_diff: float | None = None
    tolerance: float | None = None
    reason: str | None = None

    def outcome(self) -> dict[str, Any]:
        """What registration found, as ``version show --json``, ``model register --json``
        and ``/api/models`` show it: the status, why no graph was kept (``reason``), or
        how closely the kept one matched."""
        keys = ("status", "reason", "rows_checked", "max_abs_diff", "tolerance")
        return {key: getattr(self, key) for key in keys}

    def describe(self) -> str:
        """What serves the version, in words: ``its ONNX graph, in onnxruntime (verified
        on 426 rows: ...)``, or ``the native model; no ONNX graph: <reason>``."""
        if self.status == "unavailable":
            return f"the native model; no ONNX graph: {self.reason or 'no reason recorded'}"
        match = f"verified on {self.rows_checked} rows"
        if self.max_abs_diff is not None and self.tolerance is not None:
            match += f": largest difference {self.max_abs_diff:.2g}, tolerance {self.tolerance:.2g}"
        return f"its ONNX graph, in {self.runtime} ({match})"


class Manifest(_Strict):
    """The contents of ``modelport.yaml``."""

    format_version: int = FORMAT_VERSION
    created_at: datetime
    description: str = ""
    flavor: FlavorSection
    signature_data: dict[str, Any] | None = Field(default=None, alias="signature")
    environment: EnvironmentSection
    lineage: LineageSection = Field(default_factory=LineageSection)
    trust: TrustSection = Field(default_factory=TrustSection)
    input_example: str | None = None
    reference_stats: str | None = None
    # Absent in packages written before acceleration existed, when it is turned off, and
    # for flavors that do not convert their models to ONNX (no to_onnx hook).
    acceleration: AccelerationSection | None = None
    files: dict[str, FileEntry] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def signature(self) -> Signature | None:
        """The model's signature, when one was inferred or given."""
        return Signature.from_dict(self.signature_data) if self.signature_data else None

    def to_yaml(self) -> str:
        """The manifest as YAML text, keys in a stable order."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_manifest(directory: Path, manifest: Manifest) -> str:
    """Write ``modelport.yaml`` into ``directory``; return its sha256."""
    data = manifest.to_yaml().encode("utf-8")
    (directory / MANIFEST_FILE).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_manifest(directory: Path) -> Manifest:
    """Read and validate ``modelport.yaml``, raising ``CorruptPackageError`` with the reason."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise CorruptPackageError(
            f"{directory} is not a modelport package: it has no {MANIFEST_FILE}",
            field=MANIFEST_FILE,
        )
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CorruptPackageError(
            f"{MANIFEST_FILE} is not valid YAML: {exc}", field=MANIFEST_FILE
        ) from None
    if not isinstance(data, dict):
        raise CorruptPackageError(f"{MANIFEST_FILE} must hold a mapping", field=MANIFEST_FILE)
    version = data.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise CorruptPackageError(
            f"{MANIFEST_FILE} has format version {version}, written by a newer modelport; "
            f"this release reads up to version {FORMAT_VERSION}: upgrade modelport",
            field="format_version",
        )
    try:
        manifest = Manifest.model_validate(data)
        _ = manifest.signature
    except (ValidationError, ValueError, KeyError, TypeError, InvalidParameterError) as exc:
        raise CorruptPackageError(
            f"{MANIFEST_FILE} is malformed: {_first_error(exc)}", field=MANIFEST_FILE
        ) from None
    return manifest


def manifest_digest(directory: Path) -> str:
    """sha256 of ``modelport.yaml`` as stored."""
    return hashlib.sha256((directory / MANIFEST_FILE).read_bytes()).hexdigest()


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}"
    if isinstance(exc, InvalidParameterError):
        return f"signature.params: {exc.message}"
    return str(exc)
