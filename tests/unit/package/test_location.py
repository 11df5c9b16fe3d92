"""Reference or path? The one rule behind load, serve and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.domain.refs import ModelRef, parse_ref_or_name
from modelport.errors import InvalidArgumentError, InvalidReferenceError
from modelport.package.location import MANIFEST_FILE, is_package_dir, locate_model


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a package ``pkg``, a plain directory and a model file."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / MANIFEST_FILE).write_text("format_version: 1\n")
    (tmp_path / "plain").mkdir()
    (tmp_path / "model.joblib").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:/churn/3", ModelRef("churn", version=3)),
        ("models:/churn@production", ModelRef("churn", alias="production")),
        ("churn/3", ModelRef("churn", version=3)),
        ("churn@production", ModelRef("churn", alias="production")),
        ("churn/latest", ModelRef("churn")),
        ("churn", ModelRef("churn")),  # a bare name: its latest version
        ("models:/churn", ModelRef("churn")),
        ("models:/pkg", ModelRef("pkg")),  # the scheme means the registry, whatever is on disk
    ],
)
def test_references(workdir: Path, text: str, expected: ModelRef) -> None:
    assert locate_model(text) == expected


@pytest.mark.parametrize("text", ["pkg", "./pkg", "pkg/", "PKG_ABS"])
def test_a_directory_with_a_manifest_is_a_package(workdir: Path, text: str) -> None:
    text = str(workdir / "pkg") if text == "PKG_ABS" else text
    assert locate_model(text) == Path(text)
    assert locate_model(Path(text)) == Path(text)
    assert is_package_dir(Path(text))


def test_a_package_directory_wins_over_a_bare_name(workdir: Path) -> None:
    assert locate_model("pkg") == Path("pkg")
    assert locate_model("models:/pkg") == ModelRef("pkg")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plain", "'plain' is a directory without modelport.yaml.*write models:/plain"),
        ("./plain", "'./plain' is a directory without modelport.yaml"),
        ("model.joblib", "'model.joblib' is a file, not a directory with modelport.yaml"),
    ],
)
def test_an_existing_path_that_is_not_a_package_is_refused(
    workdir: Path, text: str, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as info:
        locate_model(text)
    assert not isinstance(info.value, InvalidReferenceError)
    assert "e.g. ./churn-package" in info.value.message  # both forms, with examples
    assert "churn@production" in info.value.message
    assert info.value.field == "model"


@pytest.mark.parametrize("text", ["churn/zero", "churn@", "/no/such/dir", "a b", "", "../x"])
def test_text_that_is_neither_is_refused_with_both_forms(workdir: Path, text: str) -> None:
    with pytest.raises(InvalidReferenceError, match="invalid model reference") as info:
        locate_model(text)
    assert "a package directory (a folder containing modelport.yaml" in info.value.message
    assert "models:/churn/3, models:/churn@production, churn/3" in info.value.message


def test_a_path_object_is_always_a_path(workdir: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no such package directory: churn"):
        locate_model(Path("churn"))
    with pytest.raises(InvalidArgumentError, match="directory without modelport.yaml"):
        locate_model(Path("plain"))


def test_parse_ref_or_name_takes_bare_names_only_as_the_latest_version() -> None:
    assert parse_ref_or_name("churn") == ModelRef("churn")
    assert parse_ref_or_name("churn/2") == ModelRef("churn", version=2)
    with pytest.raises(InvalidReferenceError, match="or a bare churn for its latest version"):
        parse_ref_or_name("churn/two")
    with pytest.raises(InvalidReferenceError, match="invalid model name"):
        parse_ref_or_name("-churn")
