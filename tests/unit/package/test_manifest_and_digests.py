from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelport.errors import CorruptPackageError, IntegrityError
from modelport.package.digests import compute_digests, verify_digests
from modelport.package.location import MANIFEST_FILE
from modelport.package.manifest import (
    EnvironmentSection,
    FlavorSection,
    Manifest,
    read_manifest,
    write_manifest,
)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.bin").write_bytes(b"weights")
    (root / "notes.json").write_text("{}")
    manifest = Manifest(
        created_at=datetime(2026, 11, 21, tzinfo=UTC),
        flavor=FlavorSection(name="sklearn", spec={"file": "model.bin"}),
        environment=EnvironmentSection(python="3.11.7", modelport="0.1.0"),
        files=compute_digests(root),
    )
    write_manifest(root, manifest)
    return root


def test_manifest_round_trips(package: Path) -> None:
    manifest = read_manifest(package)
    assert manifest.flavor.spec == {"file": "model.bin"}
    assert sorted(manifest.files) == ["model/model.bin", "notes.json"]
    verify_digests(package, manifest.files)


def test_a_changed_byte_is_caught_and_the_file_named(package: Path) -> None:
    (package / "model" / "model.bin").write_bytes(b"weightS")
    with pytest.raises(IntegrityError, match="'model/model.bin' does not match") as info:
        verify_digests(package, read_manifest(package).files)
    assert info.value.field == "model/model.bin"


def test_a_missing_file_is_caught(package: Path) -> None:
    (package / "notes.json").unlink()
    with pytest.raises(IntegrityError, match="'notes.json' is missing"):
        verify_digests(package, read_manifest(package).files)


def test_an_added_file_is_caught(package: Path) -> None:
    (package / "model" / "extra.py").write_text("import os")
    with pytest.raises(IntegrityError, match="'model/extra.py' is not listed"):
        verify_digests(package, read_manifest(package).files)


def test_bytecode_caches_are_ignored(package: Path) -> None:
    (package / "model" / "__pycache__").mkdir()
    (package / "model" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    verify_digests(package, read_manifest(package).files)


def test_symlinks_are_refused(package: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    (package / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(IntegrityError, match="symbolic link"):
        verify_digests(package, read_manifest(package).files)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("flavor: [", "not valid YAML"),
        ("- a list", "must hold a mapping"),
        ("format_version: 1\ncreated_at: 2026-01-01\n", "malformed: flavor"),
        ("format_version: 99\n", "newer modelport"),
    ],
)
def test_a_broken_manifest_is_reported(package: Path, content: str, message: str) -> None:
    (package / MANIFEST_FILE).write_text(content)
    with pytest.raises(CorruptPackageError, match=message):
        read_manifest(package)


def test_a_directory_without_manifest_is_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(CorruptPackageError, match="not a modelport package"):
        read_manifest(tmp_path)
