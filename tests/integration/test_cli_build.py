"""``modelport build``: the build context it writes for a registered version (the
package copied and intact, modelport's wheel, the files the Dockerfile copies), and
what it refuses. Building the image for real is tests/e2e/test_image.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import modelport
from modelport.cli.main import main
from modelport.package.options import PackageOptions
from modelport.package.reader import verify_package
from testing_models import EchoModel

WHEEL = "modelport-0.1.0-py3-none-any.whl"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def registered(isolated_home: Path) -> str:
    options = PackageOptions(sample_input=np.zeros((4, 3)))
    with modelport.connect() as registry:
        version = registry.register(EchoModel(), "echo", options)
        registry.set_alias("echo", "production", version.version)
        return version.manifest_digest


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    path = tmp_path / WHEEL  # only copied into the context here
    path.write_bytes(b"not a real wheel")
    return path


def test_build_writes_a_context_with_the_package_intact(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, registered: str, wheel: Path
) -> None:
    out = tmp_path / "context"
    code, stdout, err = run(
        capsys, "build", "echo@production", "--out", str(out), "--wheel", str(wheel), "--json"
    )

    assert code == 0, err
    answer = json.loads(stdout)
    assert answer["tag"] == "echo:1"
    assert answer["extras"] == []
    assert answer["base"].startswith("docker.io/library/python:3.11.")
    names = {path.name for path in out.iterdir()}
    assert names == {
        "Dockerfile", ".dockerignore", "README.md", "requirements.txt", "check_package.py",
        "package", "wheels",
    }  # fmt: skip
    assert (out / "wheels" / WHEEL).read_bytes() == b"not a real wheel"
    assert verify_package(out / "package", registered).flavor.name == "python"
    assert registered in (out / "Dockerfile").read_text()
    assert "numpy==" in (out / "requirements.txt").read_text()


def test_from_registry_leaves_the_package_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, registered: str, wheel: Path
) -> None:
    out = tmp_path / "context"
    code, _, err = run(
        capsys, "build", "echo@production", "--out", str(out), "--wheel", str(wheel),
        "--from-registry", "--extras", "postgres,s3", "--tag", "registry.example/echo:prod",
    )  # fmt: skip

    assert code == 0, err
    assert not (out / "package").exists()
    dockerfile = (out / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["modelport", "serve", "echo@production"]' in dockerfile
    assert f"{WHEEL}[postgres,s3]" in dockerfile
    assert "registry.example/echo:prod" in (out / "README.md").read_text()


def test_a_used_out_directory_needs_force(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, registered: str, wheel: Path
) -> None:
    out = tmp_path / "context"
    args = ("build", "echo/1", "--out", str(out), "--wheel", str(wheel))
    assert run(capsys, *args)[0] == 0
    (out / "mine.txt").write_text("kept")

    code, _, err = run(capsys, *args)
    assert code == 1
    assert "is not empty" in err
    assert "--force" in err

    assert run(capsys, *args, "--force")[0] == 0
    assert (out / "mine.txt").read_text() == "kept"  # --force replaces only its own files


def test_unknown_extras_and_versions_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, registered: str, wheel: Path
) -> None:
    base = ("--out", str(tmp_path / "c"), "--wheel", str(wheel))
    code, _, err = run(capsys, "build", "echo/1", *base, "--extras", "gpu")
    assert code == 1
    assert "unknown extra 'gpu'" in err
    code, _, err = run(capsys, "build", "echo/7", *base)
    assert code == 1
    assert "echo" in err
    assert not (tmp_path / "c").exists()  # nothing written for a refused command


def test_a_package_directory_is_served_under_its_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, isolated_home: Path, wheel: Path
) -> None:
    package = tmp_path / "fraud"
    modelport.save(EchoModel(), package, sample_input=np.zeros((4, 3)))
    out = tmp_path / "context"

    code, _, err = run(capsys, "build", str(package), "--out", str(out), "--wheel", str(wheel))

    assert code == 0, err
    dockerfile = (out / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["modelport", "serve", "fraud=/opt/modelport/package"]' in dockerfile
    assert "fraud:latest" in (out / "README.md").read_text()
    assert verify_package(out / "package").flavor.name == "python"
