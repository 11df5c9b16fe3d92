"""A model loaded from a package: its predictor, checked against its signature."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from modelport.domain.entities import ModelVersion
from modelport.domain.params import ignored_warning
from modelport.domain.predictor import Batch, ModelPredictor, accepts_params
from modelport.domain.signature import Signature
from modelport.package.batch_validation import validate_batch
from modelport.package.environment import EnvironmentReport
from modelport.package.manifest import Manifest

logger = logging.getLogger(__name__)


class LoadedModel:
    """What ``modelport.load`` returns.

    ``predict`` and ``predict_proba`` first validate the batch against the signature
    (pass ``validate=False`` to skip it for data already checked). Their ``params`` are
    the inference parameters the signature declares, resolved as the server resolves a
    request's: converted and type-checked (``InvalidParameterError``), defaults filled
    in, undeclared ones dropped with a logged warning; then passed to the model when it
    takes them.
    """

    def __init__(
        self,
        predictor: ModelPredictor,
        manifest: Manifest,
        *,
        directory: Path,
        source: str,
        environment: EnvironmentReport,
        version: ModelVersion | None = None,
        runtime: str | None = None,
    ) -> None:
        self._predictor = predictor
        self._manifest = manifest
        self._signature = manifest.signature
        self._directory = directory
        self.source = source
        self.environment = environment
        self.version = version
        self._runtime = runtime

    @property
    def manifest(self) -> Manifest:
        """The package's manifest."""
        return self._manifest

    @property
    def signature(self) -> Signature | None:
        """The input/output signature, when the package has one."""
        return self._signature

    @property
    def flavor(self) -> str:
        """The flavor that loaded the model."""
        return self._manifest.flavor.name

    @property
    def runtime(self) -> str:
        """What runs the model: ``onnxruntime`` for a package's accelerated graph, else the
        flavor's name."""
        return self._runtime or self.flavor

    @property
    def directory(self) -> Path:
        """The package directory the model was loaded from."""
        return self._directory

    @property
    def predictor(self) -> ModelPredictor:
        """The flavor's predictor, without signature checks (for composing wrappers)."""
        return self._predictor

    @property
    def supports_proba(self) -> bool:
        """Whether ``predict_proba`` is available."""
        return self._predictor.supports_proba

    def _checked(self, batch: Batch, validate: bool) -> Batch:
        if validate and self._signature is not None:
            return validate_batch(self._signature.inputs, batch)
        return batch

    def _params(self, given: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        schema = self._signature.params if self._signature is not None else None
        if schema is None:
            if given:
                logger.warning("%s", ignored_warning(given, None))
            return None
        resolved = schema.resolve(given)
        if resolved.ignored:
            logger.warning("%s", ignored_warning(resolved.ignored, schema))
        return resolved.values if accepts_params(self._predictor) else None

    def predict(
        self, batch: Batch, *, validate: bool = True, params: Mapping[str, Any] | None = None
    ) -> Batch:
        """Predict for every row of ``batch``."""
        checked = self._checked(batch, validate)
        values = self._params(params)
        if values is None:
            return self._predictor.predict(checked)
        return self._predictor.predict(checked, values)  # type: ignore[call-arg]

    def predict_proba(
        self, batch: Batch, *, validate: bool = True, params: Mapping[str, Any] | None = None
    ) -> Batch:
        """Class probabilities for every row of ``batch``; ``UnsupportedOperationError``
        when the model has none."""
        checked = self._checked(batch, validate)
        values = self._params(params)
        if values is None:
            return self._predictor.predict_proba(checked)
        return self._predictor.predict_proba(checked, values)  # type: ignore[call-arg]

    def input_example(self) -> Any:
        """The stored input example as a batch, or None."""
        if self._manifest.input_example is None:
            return None
        from modelport.package.example import read_input_example  # pandas, for tables

        return read_input_example(self._directory / self._manifest.input_example, self._signature)

    def reference_stats(self) -> dict[str, Any] | None:
        """The reference statistics of the training data, or None."""
        if self._manifest.reference_stats is None:
            return None
        path = self._directory / self._manifest.reference_stats
        stats: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return stats

    def close(self) -> None:
        """Release what the predictor holds."""
        self._predictor.close()

    def __enter__(self) -> LoadedModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LoadedModel {self.source} flavor={self.flavor} runtime={self.runtime}>"
