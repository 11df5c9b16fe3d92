"""Writing packages, with a small fake flavor so only the package layer is exercised."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.errors import InvalidArgumentError, PackageError, PackageExistsError
from modelport.flavors.base import LoadContext, SaveContext, SavedFlavor
from modelport.flavors.catalog import FlavorCatalog
from modelport.package.manifest import read_manifest
from modelport.package.options import PackageOptions
from modelport.package.reader import load_package, verify_package
from modelport.package.writer import build_package


class Threshold:
    """A 'model': predicts 1 where the first column exceeds a threshold."""

    def __init__(self, cut: float, drift: float = 0.0) -> None:
        self.cut = cut
        self.drift = drift  # added after reload, to fake a flavor that loses information

    def get_params(self) -> dict[str, float]:
        return {"cut": self.cut}

    def predict(self, batch: Any) -> np.ndarray:
        values = np.asarray(pd.DataFrame(batch).iloc[:, 0], dtype=float)
        return (values > self.cut).astype(int)


class ThresholdPredictor:
    supports_proba = False

    def __init__(self, model: Threshold) -> None:
        self.model = model

    def predict(self, batch: Any) -> np.ndarray:
        return self.model.predict(batch)

    def predict_proba(self, batch: Any) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ThresholdFlavor:
    name, framework, extra, suffixes = "threshold", "numpy", "all", (".cut",)

    def __init__(self, drift: float = 0.0) -> None:
        self.drift = drift

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, Threshold)

    def reads(self, path: Path) -> bool:
        return True

    def save(self, obj: Threshold, directory: Path, context: SaveContext) -> SavedFlavor:
        (directory / "cut.json").write_text(json.dumps(obj.cut))
        return SavedFlavor(spec={"file": "cut.json"}, libraries=("numpy",))

    def import_file(self, source: Path, directory: Path, context: SaveContext) -> SavedFlavor:
        raise NotImplementedError

    def load(self, directory: Path, spec: Mapping[str, Any], context: LoadContext) -> Any:
        cut = json.loads((directory / spec["file"]).read_text()) + self.drift
        return ThresholdPredictor(Threshold(cut))


SAMPLE = pd.DataFrame({"x": np.linspace(0, 1, 50), "city": ["a", "b"] * 25})


def test_a_package_has_everything_and_verifies(tmp_path: Path) -> None:
    options = PackageOptions(sample_input=SAMPLE, metrics={"auc": 0.9}, params={"cut": 0.5})
    manifest = build_package(
        Threshold(0.5), tmp_path / "p", FlavorCatalog([ThresholdFlavor()]), options
    )
    assert sorted(manifest.files) == [
        "input_example.json",
        "model/cut.json",
        "reference_stats.json",
    ]
    assert manifest.lineage.metrics == {"auc": 0.9}
    assert manifest.lineage.params == {"cut": "0.5"}
    assert manifest.lineage.training_data.rows == 50
    assert manifest.signature.outputs.tensors[0].name == "predictions"  # type: ignore[union-attr]
    assert manifest.environment.framework == "numpy"
    assert verify_package(tmp_path / "p") == read_manifest(tmp_path / "p")
    loaded = load_package(tmp_path / "p", FlavorCatalog([ThresholdFlavor()]))
    assert loaded.predict(SAMPLE).sum() == 25


def test_a_model_that_does_not_survive_saving_is_refused(tmp_path: Path) -> None:
    catalog = FlavorCatalog([ThresholdFlavor(drift=0.3)])
    with pytest.raises(PackageError, match="does not give the same predictions"):
        build_package(Threshold(0.5), tmp_path / "p", catalog, PackageOptions(sample_input=SAMPLE))
    assert not (tmp_path / "p").exists()


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    with pytest.raises(PackageExistsError, match="not an empty directory"):
        build_package(
            Threshold(0.5), tmp_path / "p", FlavorCatalog([ThresholdFlavor()]), PackageOptions()
        )
    assert (tmp_path / "p" / "keep.txt").read_text() == "mine"


def test_repackaging_adds_lineage_and_keeps_files(tmp_path: Path) -> None:
    catalog = FlavorCatalog([ThresholdFlavor()])
    build_package(Threshold(0.5), tmp_path / "a", catalog, PackageOptions(metrics={"auc": 0.8}))
    options = PackageOptions(metrics={"f1": 0.7}, tags={"team": "risk"})
    manifest = build_package(tmp_path / "a", tmp_path / "b", catalog, options)
    assert manifest.lineage.metrics == {"auc": 0.8, "f1": 0.7}
    assert manifest.lineage.tags == {"team": "risk"}
    verify_package(tmp_path / "b")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"metrics": {"auc": "high"}}, "metric 'auc' must be a number"),
        ({"metrics": {"auc": float("nan")}}, "finite"),
        ({"metrics": {"auc": True}}, "finite number"),
        ({"metrics": {"": 1.0}}, "metric names must be"),
        ({"tags": {"team": 3}}, "tag 'team' must be text"),
        ({"params": {"a\nb": 1}}, "param names must be printable"),
    ],
)
def test_bad_lineage_values_are_named(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    catalog = FlavorCatalog([ThresholdFlavor()])
    with pytest.raises(InvalidArgumentError, match=message):
        build_package(Threshold(0.5), tmp_path / "p", catalog, PackageOptions(**options))
    assert not (tmp_path / "p").exists()


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no such file"):
        build_package(
            tmp_path / "nope.cut",
            tmp_path / "p",
            FlavorCatalog([ThresholdFlavor()]),
            PackageOptions(),
        )


# ---------------------------------------------- the package predicts on its own example


class NeedsManyRows(ThresholdFlavor):
    """A flavor whose reloaded model fails on fewer than ten rows (the example has five)."""

    def load(self, directory: Path, spec: Mapping[str, Any], context: LoadContext) -> Any:
        predictor = super().load(directory, spec, context)
        predict = predictor.predict

        def at_least_ten(batch: Any) -> np.ndarray:
            if len(batch) < 10:
                raise ValueError("needs at least 10 rows")
            return predict(batch)

        predictor.predict = at_least_ten
        return predictor


def test_a_signature_that_refuses_the_sample_is_refused(tmp_path: Path) -> None:
    from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature

    signature = Signature(ColumnSchema((ColumnSpec("y", "float64"),)))
    options = PackageOptions(sample_input=SAMPLE, signature=signature)
    catalog = FlavorCatalog([ThresholdFlavor()])
    with pytest.raises(PackageError, match="signature does not accept its own input example") as e:
        build_package(Threshold(0.5), tmp_path / "p", catalog, options)
    assert "missing required column 'y'" in str(e.value)
    assert "pass a signature that matches the sample input" in str(e.value)
    assert not (tmp_path / "p").exists()


def test_a_model_that_fails_on_its_stored_example_is_refused(tmp_path: Path) -> None:
    catalog = FlavorCatalog([NeedsManyRows()])
    with pytest.raises(PackageError, match="fails on its own input example") as e:
        build_package(Threshold(0.5), tmp_path / "p", catalog, PackageOptions(sample_input=SAMPLE))
    assert "ValueError: needs at least 10 rows" in str(e.value)
    assert not (tmp_path / "p").exists()


def test_repackaging_checks_the_example_when_the_flavor_loads_here(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from modelport.package.manifest import write_manifest

    catalog = FlavorCatalog([ThresholdFlavor()])
    build_package(Threshold(0.5), tmp_path / "a", catalog, PackageOptions(sample_input=SAMPLE))
    manifest = read_manifest(tmp_path / "a")
    edited = {"inputs": {"kind": "columns", "columns": [{"name": "y", "dtype": "float64"}]}}
    write_manifest(tmp_path / "a", manifest.model_copy(update={"signature_data": edited}))
    with pytest.raises(PackageError, match="does not accept its own input example"):
        build_package(tmp_path / "a", tmp_path / "b", catalog, PackageOptions())
    assert not (tmp_path / "b").exists()
    # Where the flavor is not installed, the copy goes ahead and says it was not checked.
    build_package(tmp_path / "a", tmp_path / "c", FlavorCatalog([]), PackageOptions())
    assert "not checking the package's input example" in caplog.text
