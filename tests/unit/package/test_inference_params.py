"""Declaring inference parameters when a model is packaged, and predicting with them
through ``modelport.load``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from modelport import ParamSchema, ParamSpec, infer_signature, load, save
from modelport.errors import (
    CorruptPackageError,
    InvalidArgumentError,
    InvalidParameterError,
    ParamsIgnoredWarning,
)
from testing_models import EchoModel, ScaledModel

X = np.random.default_rng(1).normal(size=(10, 3))
ROWS = np.array([[1.0, 2.0, 3.0]])


def test_infer_signature_declares_params_as_mlflows_does() -> None:
    signature = infer_signature(X, X.sum(axis=1), params={"scale": 2.0, "shift": 1})
    assert signature.params == ParamSchema(
        (ParamSpec("scale", "double", 2.0), ParamSpec("shift", "long", 1))
    )
    assert infer_signature(X).params is None
    assert infer_signature(X, params={}).params is None


def test_params_are_stored_in_the_manifest_and_reach_the_model(tmp_path: Path) -> None:
    save(ScaledModel(), tmp_path / "p", sample_input=X, inference_params={"scale": 2.0, "shift": 0})
    manifest = yaml.safe_load((tmp_path / "p" / "modelport.yaml").read_text())
    assert manifest["signature"]["params"] == [
        {"name": "scale", "type": "double", "default": 2.0, "shape": None},
        {"name": "shift", "type": "long", "default": 0, "shape": None},
    ]
    with load(tmp_path / "p") as model:
        assert model.predict(ROWS).tolist() == [12.0]  # the defaults
        assert model.predict(ROWS, params={"scale": 1, "shift": 4}).tolist() == [10.0]
        with pytest.raises(InvalidParameterError, match="'shift' expects long"):
            model.predict(ROWS, params={"shift": "4"})


def test_a_signature_may_carry_the_params_instead(tmp_path: Path) -> None:
    signature = infer_signature(
        X, params=[ParamSpec("scale", "double", 3.0), ParamSpec("shift", "long", 0)]
    )
    save(ScaledModel(), tmp_path / "p", signature=signature)
    with load(tmp_path / "p") as model:
        assert model.predict(ROWS).tolist() == [18.0]


def test_undeclared_params_are_dropped_with_a_logged_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    save(EchoModel(), tmp_path / "p", sample_input=X)
    with load(tmp_path / "p") as model:
        assert model.predict(ROWS, params={"k": 1}).tolist() == [6.0]
    assert "This model does not define a params schema. Ignoring provided params: ['k']" in (
        caplog.text
    )


def test_declaring_params_needs_a_signature_and_one_place(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="pass sample_input"):
        save(ScaledModel(), tmp_path / "a", inference_params={"scale": 1.0, "shift": 0})
    signature = infer_signature(X, params={"scale": 1.0})
    with pytest.raises(InvalidArgumentError, match="pass them in one place"):
        save(ScaledModel(), tmp_path / "b", signature=signature, inference_params={"shift": 0})
    with pytest.raises(InvalidParameterError, match="cannot infer the type of parameter 'x'"):
        save(ScaledModel(), tmp_path / "c", sample_input=X, inference_params={"x": None})


def test_a_model_that_cannot_take_params_is_warned_about(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    linear = LinearRegression().fit(X, X.sum(axis=1))
    with pytest.warns(ParamsIgnoredWarning, match=r"\['alpha'\].*sklearn model's predict"):
        save(
            linear,
            tmp_path / "p",
            sample_input=X,
            inference_params={"alpha": 0.5},
            accelerate=False,
        )
    with load(tmp_path / "p") as model:
        plain = model.predict(ROWS)
        assert model.predict(ROWS, params={"alpha": 2}).tolist() == plain.tolist()
        with pytest.raises(InvalidParameterError):
            model.predict(ROWS, params={"alpha": "much"})


def test_an_existing_package_keeps_its_signature(tmp_path: Path) -> None:
    save(EchoModel(), tmp_path / "p", sample_input=X)
    with pytest.raises(InvalidArgumentError, match="already a package"):
        save(tmp_path / "p", tmp_path / "q", inference_params={"k": 1})


def test_a_malformed_params_declaration_is_a_corrupt_package(tmp_path: Path) -> None:
    save(EchoModel(), tmp_path / "p", sample_input=X)
    path = tmp_path / "p" / "modelport.yaml"
    manifest = yaml.safe_load(path.read_text())
    manifest["signature"]["params"] = [{"name": "k", "type": "binary", "default": None}]
    path.write_text(yaml.safe_dump(manifest))
    with pytest.raises(CorruptPackageError, match="signature.params: .*binary"):
        load(tmp_path / "p")
