"""What must never happen: half-registered versions, tampered or unsafe models loading."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import modelport
from modelport.errors import (
    EnvironmentMismatchError,
    EnvironmentMismatchWarning,
    IntegrityError,
    UnsafeModelError,
)
from modelport.metadata.store import MetadataSession, MetadataStore
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService

Data = tuple[pd.DataFrame, np.ndarray]


class InjectedFailure(RuntimeError):
    """Raised on purpose in the middle of a registration."""


class FailingUploads:
    """An artifact store that writes part of a package and then fails."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def put_directory(self, source: Path, key: str, digests: Mapping[str, str]) -> None:
        first = dict(list(digests.items())[:1])
        self.inner.put_directory(source, key, first)  # something really lands...
        raise InjectedFailure("network dropped")  # ...and then the upload dies

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FailingVersionWrites:
    """A metadata store whose sessions fail when the version row is written."""

    def __init__(self, inner: MetadataStore) -> None:
        self.inner = inner

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.inner.transaction() as session:
            yield _FailOnCreateVersion(session)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _FailOnCreateVersion:
    def __init__(self, session: MetadataSession) -> None:
        self._session = session

    def create_version(self, *args: Any, **kwargs: Any) -> Any:
        raise InjectedFailure("database went away")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def test_a_failed_upload_leaves_no_version_and_no_files(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    frame, _ = churn_data
    real = registry.artifacts
    registry.artifacts = FailingUploads(real)  # type: ignore[assignment]
    with pytest.raises(InjectedFailure):
        registry.register(churn_model, "churn", PackageOptions(sample_input=frame))
    registry.artifacts = real
    assert registry.list_models() == []
    assert real.keys() == []


def test_a_failed_metadata_write_leaves_no_version_and_no_files(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    frame, _ = churn_data
    registry.register(churn_model, "churn", PackageOptions(sample_input=frame))
    real = registry.metadata
    registry.metadata = FailingVersionWrites(real)  # type: ignore[assignment]
    with pytest.raises(InjectedFailure):
        registry.register(churn_model, "churn", PackageOptions(sample_input=frame))
    with pytest.raises(InjectedFailure):
        registry.register(churn_model, "brand-new", PackageOptions(sample_input=frame))
    registry.metadata = real
    assert [v.version for v in registry.list_versions("churn")] == [1]
    assert [m.name for m in registry.list_models()] == ["churn"]  # 'brand-new' rolled back
    assert len(registry.artifacts.keys()) == 1
    assert [e.action for e in registry.get_audit_log()] == ["version.create", "model.create"]
    # The counter rolled back too: the next version is 2, not 3.
    assert registry.register(churn_model, "churn", PackageOptions(sample_input=frame)).version == 2


def _stored_file(registry: RegistryService, ref: str, relpath: str) -> Path:
    version = registry.resolve(ref)
    return registry.artifacts.local_path(version.artifact_key) / relpath


def test_a_tampered_model_file_is_refused_by_name(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    frame, _ = churn_data
    registry.register(churn_model, "churn", PackageOptions(sample_input=frame))
    target = _stored_file(registry, "churn/1", "model/model.skops")
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="model/model.skops") as info:
        registry.load("churn/1")
    assert info.value.field == "model/model.skops"


def test_a_tampered_manifest_is_refused(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    frame, _ = churn_data
    registry.register(churn_model, "churn", PackageOptions(sample_input=frame))
    manifest = _stored_file(registry, "churn/1", "modelport.yaml")
    data = yaml.safe_load(manifest.read_text())
    data["trust"] = {"granted": ["posix.*"], "used": ["posix.system"]}
    manifest.write_text(yaml.safe_dump(data))
    with pytest.raises(IntegrityError, match="modelport.yaml"):
        registry.load("churn/1")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".pkl", ".joblib"])
def test_a_malicious_pickle_is_refused_and_never_runs(
    registry: RegistryService, tmp_path: Path, suffix: str
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / f"model{suffix}"
    if suffix == ".pkl":
        path.write_bytes(pickle.dumps({"model": _Payload(marker)}))
    else:
        import joblib

        joblib.dump({"model": _Payload(marker)}, path)
    with pytest.raises(UnsafeModelError, match="posix.system") as info:
        registry.register(path, "evil")
    assert info.value.offending == ("posix.system",)
    assert not marker.exists()
    assert registry.list_models() == []
    assert registry.artifacts.keys() == []


def test_framework_version_differences_are_errors_unless_warn(
    churn_model: Any, churn_data: Data, tmp_path: Path
) -> None:
    frame, _ = churn_data
    package = tmp_path / "pkg"
    modelport.save(churn_model, package, sample_input=frame)
    manifest = package / "modelport.yaml"
    data = yaml.safe_load(manifest.read_text())
    data["environment"]["libraries"]["scikit-learn"] = "0.20.0"
    manifest.write_text(yaml.safe_dump(data))
    with pytest.raises(EnvironmentMismatchError, match=r"scikit-learn 0\.20\.0 recorded"):
        modelport.load(package)
    with pytest.warns(EnvironmentMismatchWarning, match="scikit-learn"):
        loaded = modelport.load(package, version_check="warn")
    assert "scikit-learn 0.20.0 recorded" in loaded.environment.differences[0]
    np.testing.assert_array_equal(loaded.predict(frame), churn_model.predict(frame))
