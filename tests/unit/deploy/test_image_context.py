"""The build context ``modelport build`` writes: what its Dockerfile promises (two
stages, a pinned base, only the flavor's extras, the package checked while building, a
non-root user, an exec-form ``modelport serve`` and a readiness HEALTHCHECK)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from modelport.deploy.image import (
    ImageSpec,
    default_base,
    default_tag,
    extras_for,
    render_context,
    requirements_for,
)
from modelport.errors import InvalidArgumentError
from modelport.package.manifest import Manifest

DIGEST = "ab" * 32


def manifest(flavor: str = "sklearn", **extra: Any) -> Manifest:
    return Manifest.model_validate(
        {
            "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            "flavor": {"name": flavor, "spec": extra.pop("spec", {})},
            "environment": {
                "python": "3.11.7",
                "modelport": "0.1.0",
                "requirements": ["scikit-learn==1.5.2", "numpy==2.1.0"],
            },
            **extra,
        }
    )


def spec(**changes: Any) -> ImageSpec:
    values: dict[str, Any] = {
        "model": "churn",
        "version": 3,
        "python": "3.11.7",
        "extras": ("sklearn",),
        "wheel": "modelport-0.1.0-py3-none-any.whl",
        "base": default_base("3.11.7"),
        "tag": "churn:3",
        "requirements": ("scikit-learn==1.5.2",),
        "package_digest": DIGEST,
        "source": "churn@production",
    }
    return ImageSpec(**{**values, **changes})


def stages(dockerfile: str) -> list[str]:
    """The Dockerfile's stages, each from its FROM line."""
    return re.split(r"(?m)^(?=FROM )", dockerfile)[1:]


def instruction(stage: str, name: str) -> list[str]:
    return [line for line in stage.splitlines() if line.startswith(f"{name} ")]


def test_two_stages_on_one_pinned_slim_base() -> None:
    dockerfile = render_context(spec())["Dockerfile"]

    builder, runtime = stages(dockerfile)
    pinned = r"(?m)^ARG BASE=docker\.io/library/python:3\.11\.\d+-slim-bookworm$"
    assert re.search(pinned, dockerfile)
    assert builder.startswith("FROM ${BASE} AS builder")
    assert runtime.startswith("FROM ${BASE}\n")
    assert "pip install" in builder
    assert "pip install" not in runtime  # no pip, compiler or cache in the runtime stage
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    assert "pip uninstall --yes pip" in builder


def test_the_base_follows_the_packages_python_or_base() -> None:
    assert default_base("3.12.1").startswith("docker.io/library/python:3.12.")
    assert default_base("3.13.0").endswith("-slim-bookworm")
    with pytest.raises(InvalidArgumentError, match="--base"):
        default_base("3.9.18")
    own = render_context(spec(base="localhost/debian-python:bookworm"))["Dockerfile"]
    assert "ARG BASE=localhost/debian-python:bookworm\n" in own


def test_the_server_runs_as_a_numeric_non_root_user() -> None:
    runtime = stages(render_context(spec())["Dockerfile"])[-1]

    users = instruction(runtime, "USER")
    assert users == ["USER 10001:10001"]
    # USER comes before the command, and nothing switches back to root after it.
    assert runtime.index("USER ") < runtime.index("ENTRYPOINT ")


def test_the_entrypoint_is_exec_form_modelport_serve_of_the_copied_package() -> None:
    runtime = stages(render_context(spec())["Dockerfile"])[-1]

    (entrypoint,) = instruction(runtime, "ENTRYPOINT")
    command = json.loads(entrypoint.removeprefix("ENTRYPOINT "))  # exec form is JSON
    assert command == ["modelport", "serve", "churn=/opt/modelport/package"]
    assert "MODELPORT_SERVE__HOST=0.0.0.0" in runtime
    assert "STOPSIGNAL SIGTERM" in runtime


def test_the_healthcheck_asks_readiness_with_python() -> None:
    runtime = stages(render_context(spec())["Dockerfile"])[-1]

    start = runtime.index("HEALTHCHECK ")
    probe = json.loads(runtime[start:].split("CMD ", 1)[1].splitlines()[0])
    assert probe[:2] == ["python3", "-c"]  # slim images have no curl
    assert "/v2/health/ready" in probe[2]
    assert "MODELPORT_SERVE__PORT" in probe[2]  # the port the server was told to bind
    compile(probe[2], "<healthcheck>", "exec")


def test_the_package_is_copied_and_checked_against_the_registry_digest() -> None:
    files = render_context(spec())
    builder, runtime = stages(files["Dockerfile"])

    assert "COPY package/ /opt/modelport/package/" in builder
    check = next(line for line in instruction(builder, "RUN") if "check_package.py" in line)
    assert json.loads(check.removeprefix("RUN ")) == [
        "/opt/venv/bin/python",
        "/tmp/check_package.py",
        "/opt/modelport/package",
        DIGEST,
    ]
    assert "COPY --from=builder /opt/modelport/package /opt/modelport/package" in runtime
    assert "verify_package(directory, expected)" in files["check_package.py"]
    compile(files["check_package.py"], "check_package.py", "exec")


def test_from_registry_copies_no_package_and_serves_the_reference() -> None:
    files = render_context(spec(from_registry="churn@production", package_digest=None))
    runtime = stages(files["Dockerfile"])[-1]

    assert "check_package.py" not in files
    assert "/opt/modelport/package" not in files["Dockerfile"]
    (entrypoint,) = instruction(runtime, "ENTRYPOINT")
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == [
        "modelport",
        "serve",
        "churn@production",
    ]
    assert "MODELPORT_DATABASE_URL" in files["README.md"]


def test_extras_follow_the_flavor() -> None:
    assert extras_for(manifest("sklearn")) == ("sklearn",)
    assert extras_for(manifest("python")) == ()
    assert extras_for(manifest("torch")) == ("torch",)
    verified = {"status": "verified", "file": "accelerated/model.onnx"}
    assert extras_for(manifest("xgboost", acceleration=verified)) == ("accelerate", "xgboost")
    assert extras_for(manifest("onnx"), ["postgres", "s3"]) == ("onnx", "postgres", "s3")
    with pytest.raises(InvalidArgumentError, match="accepted: accelerate"):
        extras_for(manifest(), ["sklearn-extra"])


def test_the_wheel_is_installed_with_the_extras_and_the_recorded_versions() -> None:
    files = render_context(spec(extras=("accelerate", "sklearn")))

    assert (
        '"/tmp/wheels/modelport-0.1.0-py3-none-any.whl[accelerate,sklearn]"'
        in (files["Dockerfile"])
    )
    assert "-r /tmp/requirements.txt" in files["Dockerfile"]
    assert files["requirements.txt"] == "scikit-learn==1.5.2\n"
    code = manifest("python", spec={"requirements": ["requests==2.32.3"]})
    assert requirements_for(code) == ("scikit-learn==1.5.2", "numpy==2.1.0", "requests==2.32.3")


def test_offline_installs_from_the_context_alone() -> None:
    dockerfile = render_context(spec(offline=True))["Dockerfile"]
    assert "--find-links /tmp/wheels --no-index" in dockerfile
    assert "--no-index" not in render_context(spec())["Dockerfile"]


def test_dockerignore_sends_only_what_is_copied() -> None:
    ignore = render_context(spec())[".dockerignore"].splitlines()
    assert "*" in ignore
    kept = {line[1:] for line in ignore if line.startswith("!")}
    assert kept == {"Dockerfile", "requirements.txt", "wheels/", "package/", "check_package.py"}


def test_the_readme_names_the_build_and_run_commands() -> None:
    readme = render_context(spec())["README.md"]
    assert "podman build --format docker -t churn:3 ." in readme
    assert "docker build -t churn:3 ." in readme
    assert "--insecure-no-auth" in readme
    assert "modelport key create" in readme


def test_default_tag_is_a_valid_image_name() -> None:
    assert default_tag("churn", 3) == "churn:3"
    assert default_tag("Churn Model", 12) == "churn-model:12"


def test_labels_say_which_version_the_image_serves() -> None:
    runtime = stages(render_context(spec())["Dockerfile"])[-1]

    assert 'io.modelport.version="3"' in runtime
    assert f'io.modelport.manifest-sha256="{DIGEST}"' in runtime
    assert 'io.modelport.source="churn@production"' in runtime
    unversioned = render_context(spec(version=None, source=""))["Dockerfile"]
    assert "io.modelport.version" not in unversioned
    assert default_tag("churn", None) == "churn:latest"
