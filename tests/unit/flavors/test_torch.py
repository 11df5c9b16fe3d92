"""TorchFlavor: torch.export and TorchScript round trips, and what import refuses."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelport.domain.signature import TensorSchema, TensorSpec
from modelport.errors import (
    CorruptModelFileError,
    InvalidSampleError,
    UnsafeModelError,
    UnsupportedOperationError,
)
from modelport.flavors.base import LoadContext, SaveContext
from modelport.flavors.torch import TorchFlavor

torch = pytest.importorskip("torch")

FLAVOR = TorchFlavor()
RNG = np.random.default_rng(0)


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(4, 8)
        self.out = torch.nn.Linear(8, 3)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(torch.relu(self.hidden(features))))


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, offset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.linear(x) + offset, x.sum(dim=1)


@pytest.fixture
def mlp() -> MLP:
    torch.manual_seed(0)
    return MLP().eval()


def _expected(module: Any, array: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(array.astype(np.float32))).numpy()


def _scripted(module: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated
        return torch.jit.script(module)


def _package(tmp_path: Path) -> Path:
    directory = tmp_path / "package"
    directory.mkdir()
    return directory


def test_describes_itself() -> None:
    assert (FLAVOR.name, FLAVOR.framework, FLAVOR.extra) == ("torch", "torch", "torch")
    assert set(FLAVOR.suffixes) == {".pt", ".pth", ".pt2"}


def test_owns_modules_and_programs_but_not_tensors(mlp: MLP) -> None:
    sample = (torch.zeros(2, 4),)
    assert FLAVOR.owns(mlp)
    assert FLAVOR.owns(_scripted(mlp))
    assert FLAVOR.owns(torch.export.export(mlp, sample))
    assert not FLAVOR.owns(torch.zeros(3))
    assert not FLAVOR.owns(object())


@pytest.mark.parametrize("sample_rows", [1, 5])
def test_module_round_trip_has_a_dynamic_batch(tmp_path: Path, mlp: MLP, sample_rows: int) -> None:
    sample = RNG.normal(size=(sample_rows, 4))  # float64: cast to the float32 parameters
    saved = FLAVOR.save(mlp, tmp_path, SaveContext(sample=sample))
    predictor = FLAVOR.load(tmp_path, saved.spec, LoadContext())

    assert saved.spec["format"] == "export"
    assert saved.spec["float_dtype"] == "float32"
    assert (tmp_path / "model.pt2").is_file()
    for rows in (1, 3, 17):
        batch = RNG.normal(size=(rows, 4))
        result = predictor.predict(batch)
        assert result.shape == (rows, 3)
        np.testing.assert_allclose(result, _expected(mlp, batch), rtol=1e-5, atol=1e-6)


def test_export_runs_in_eval_mode_and_restores_training(tmp_path: Path, mlp: MLP) -> None:
    mlp.train()
    mlp.hidden.eval()  # mixed modes are restored one submodule at a time
    saved = FLAVOR.save(mlp, tmp_path, SaveContext(sample=RNG.normal(size=(4, 4))))
    predictor = FLAVOR.load(tmp_path, saved.spec, LoadContext())
    batch = RNG.normal(size=(6, 4))

    assert mlp.training
    assert mlp.drop.training
    assert not mlp.hidden.training
    mlp.eval()
    np.testing.assert_allclose(predictor.predict(batch), _expected(mlp, batch), rtol=1e-5)


def test_signature_and_libraries_come_from_the_sample(tmp_path: Path, mlp: MLP) -> None:
    saved = FLAVOR.save(mlp, tmp_path, SaveContext(sample=RNG.normal(size=(2, 4))))

    assert saved.libraries == ("torch",)
    assert saved.signature is not None
    assert saved.signature.inputs == TensorSchema((TensorSpec("input", "float64", (-1, 4)),))


def test_dataframe_inputs(tmp_path: Path, mlp: MLP) -> None:
    frame = pd.DataFrame(RNG.normal(size=(5, 4)), columns=list("abcd"))
    saved = FLAVOR.save(mlp, tmp_path, SaveContext(sample=frame))
    predictor = FLAVOR.load(tmp_path, saved.spec, LoadContext())

    np.testing.assert_allclose(
        predictor.predict(frame), _expected(mlp, frame.to_numpy()), rtol=1e-5, atol=1e-6
    )


def test_named_inputs_and_tuple_outputs(tmp_path: Path) -> None:
    module = TwoInputs().eval()
    sample = {"x": RNG.normal(size=(3, 4)), "offset": RNG.normal(size=(3, 2))}
    saved = FLAVOR.save(module, tmp_path, SaveContext(sample=sample))
    predictor = FLAVOR.load(tmp_path, saved.spec, LoadContext())
    batch = {"offset": RNG.normal(size=(7, 2)), "x": RNG.normal(size=(7, 4))}

    result = predictor.predict(batch)

    assert saved.spec["keyword"] == ["x", "offset"]
    assert set(result) == {"output_0", "output_1"}
    with torch.no_grad():
        x = torch.from_numpy(batch["x"]).float()
        expected = module(x, torch.from_numpy(batch["offset"]).float())
    np.testing.assert_allclose(result["output_0"], expected[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["output_1"], expected[1].numpy(), rtol=1e-5, atol=1e-6)


def test_missing_sample_is_explained(tmp_path: Path, mlp: MLP) -> None:
    with pytest.raises(InvalidSampleError, match="needs a sample input"):
        FLAVOR.save(mlp, tmp_path, SaveContext())


def test_text_sample_is_refused(tmp_path: Path, mlp: MLP) -> None:
    with pytest.raises(InvalidSampleError, match="numeric"):
        FLAVOR.save(mlp, tmp_path, SaveContext(sample=np.array([["a"] * 4] * 2)))


def test_no_predict_proba(tmp_path: Path, mlp: MLP) -> None:
    saved = FLAVOR.save(mlp, tmp_path, SaveContext(sample=RNG.normal(size=(2, 4))))
    predictor = FLAVOR.load(tmp_path, saved.spec, LoadContext())

    assert not predictor.supports_proba
    with pytest.raises(UnsupportedOperationError):
        predictor.predict_proba(RNG.normal(size=(2, 4)))
    predictor.close()


def test_exported_program_is_saved_as_is(tmp_path: Path, mlp: MLP) -> None:
    batch_dim = torch.export.Dim("batch")
    program = torch.export.export(
        mlp, (torch.zeros(2, 4),), dynamic_shapes={"features": {0: batch_dim}}
    )
    saved = FLAVOR.save(program, tmp_path, SaveContext())
    predictor = FLAVOR.load(tmp_path, saved.spec, LoadContext())
    batch = RNG.normal(size=(9, 4))

    assert saved.signature is not None
    assert saved.signature.inputs == TensorSchema((TensorSpec("features", "float32", (-1, 4)),))
    np.testing.assert_allclose(predictor.predict(batch), _expected(mlp, batch), rtol=1e-5)


def test_script_module_round_trip(tmp_path: Path, mlp: MLP) -> None:
    saved = FLAVOR.save(_scripted(mlp), tmp_path, SaveContext())
    predictor = FLAVOR.load(tmp_path, saved.spec, LoadContext())
    batch = RNG.normal(size=(4, 4))

    assert saved.spec["format"] == "torchscript"
    assert saved.signature is None
    assert (tmp_path / "model.pt").is_file()
    np.testing.assert_allclose(predictor.predict(batch), _expected(mlp, batch), rtol=1e-5)


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_import_torchscript_file(tmp_path: Path, mlp: MLP, suffix: str) -> None:
    source = tmp_path / f"scripted{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(_scripted(mlp), str(source))
    target = _package(tmp_path)

    assert FLAVOR.reads(source)
    saved = FLAVOR.import_file(source, target, SaveContext())
    predictor = FLAVOR.load(target, saved.spec, LoadContext())
    batch = RNG.normal(size=(3, 4))

    np.testing.assert_allclose(predictor.predict(batch), _expected(mlp, batch), rtol=1e-5)


def test_import_export_archive(tmp_path: Path, mlp: MLP) -> None:
    source = tmp_path / "exported.pt2"
    program = torch.export.export(
        mlp, (torch.zeros(2, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, str(source))
    target = _package(tmp_path)

    saved = FLAVOR.import_file(source, target, SaveContext())
    predictor = FLAVOR.load(target, saved.spec, LoadContext())
    batch = RNG.normal(size=(5, 4))

    assert (target / "model.pt2").read_bytes() == source.read_bytes()
    np.testing.assert_allclose(predictor.predict(batch), _expected(mlp, batch), rtol=1e-5)


@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_save_checkpoint_is_refused(tmp_path: Path, mlp: MLP, zip_format: bool) -> None:
    source = tmp_path / "weights.pt"
    torch.save(mlp.state_dict(), str(source), _use_new_zipfile_serialization=zip_format)
    target = _package(tmp_path)

    with pytest.raises(UnsafeModelError, match=r"torch\.save checkpoint") as caught:
        FLAVOR.import_file(source, target, SaveContext())
    assert caught.value.offending == ("torch.save checkpoint",)
    assert "torch.export" in str(caught.value)
    assert not any(target.iterdir())


def test_pickled_sample_inputs_in_pt2_are_refused(tmp_path: Path, mlp: MLP) -> None:
    source = tmp_path / "exported.pt2"
    torch.export.save(torch.export.export(mlp, (torch.zeros(2, 4),)), str(source))
    tampered = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(tampered, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            if item.filename.endswith("data/sample_inputs/model.pt"):
                data = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93."
            copy.writestr(item, data)

    with pytest.raises(UnsafeModelError, match="sample inputs"):
        FLAVOR.import_file(tampered, _package(tmp_path), SaveContext())


@pytest.mark.parametrize("name", ["broken.pt", "broken.pt2"])
@pytest.mark.parametrize("content", [b"", b"definitely not a model"])
def test_garbage_files_are_corrupt(tmp_path: Path, name: str, content: bytes) -> None:
    source = tmp_path / name
    source.write_bytes(content)

    with pytest.raises(CorruptModelFileError, match=name.replace(".", r"\.")):
        FLAVOR.import_file(source, _package(tmp_path), SaveContext())


@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_truncated_files_are_corrupt(tmp_path: Path, mlp: MLP, suffix: str) -> None:
    source = tmp_path / f"model{suffix}"
    if suffix == ".pt2":
        torch.export.save(torch.export.export(mlp, (torch.zeros(2, 4),)), str(source))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(_scripted(mlp), str(source))
    source.write_bytes(source.read_bytes()[:-300])

    with pytest.raises(CorruptModelFileError, match=f"model\\{suffix}"):
        FLAVOR.import_file(source, _package(tmp_path), SaveContext())


def test_export_archive_named_pt_is_explained(tmp_path: Path, mlp: MLP) -> None:
    source = tmp_path / "exported.pt"
    torch.export.save(torch.export.export(mlp, (torch.zeros(2, 4),)), str(source))

    with pytest.raises(CorruptModelFileError, match=r"\.pt2"):
        FLAVOR.import_file(source, _package(tmp_path), SaveContext())
