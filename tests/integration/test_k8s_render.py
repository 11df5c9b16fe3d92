"""``modelport k8s render``: every file it writes validates offline, the built-in kinds
with ``kubernetes-validate --strict`` against a pinned Kubernetes, the KServe and
Prometheus Operator resources against their vendored CRD schemas; stdout forms feed
``kubectl apply -f -``; a deployment's canary becomes KServe's canary; and no
credential of the rendering machine appears in any output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import modelport
from modelport.cli.main import main
from modelport.package.options import PackageOptions
from testing_k8s import (
    validate_builtin,
    validate_custom,
    validate_directory,
)
from testing_models import EchoModel


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def _register() -> None:
    with modelport.connect() as registry:
        for _ in range(2):
            registry.register(EchoModel(), "echo", PackageOptions(sample_input=np.zeros((4, 3))))
        registry.promote("echo", 1, "production")
        registry.create_deployment("echo", 1)


@pytest.fixture
def registered(isolated_home: Path) -> Path:
    """``echo`` with versions 1 (production) and 2, and the deployment ``echo``."""
    _register()
    return isolated_home


VARIANTS = {
    "defaults": [],
    "every-option": [
        "--name", "echo-prod", "--replicas", "3", "--max-replicas", "12", "--workers", "4",
        "--port", "9000", "--drain-delay", "7", "--drain-timeout", "20", "--prestop-sleep", "2",
        "--cpu", "2", "--memory", "4Gi", "--cpu-limit", "4", "--memory-limit", "8Gi",
        "--uid", "65532", "--secret", "registry-credentials", "--service-account", "models",
        "--prediction-log", "s3://models/predictions", "--metrics-public",
    ],
}  # fmt: skip


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_kubernetes_files_validate_offline(
    variant: str, registered: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "k8s"
    code, stdout, err = run(
        capsys, "k8s", "render", "echo@production", "--image", "registry.example/modelport:1",
        "--namespace", "ml", "--artifacts-uri", "s3://models/artifacts", "--out", str(out),
        *VARIANTS[variant],
    )  # fmt: skip
    assert code == 0, err
    kinds = {doc["kind"] for doc in validate_directory(out)}
    assert kinds == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget", "ServiceMonitor"}  # fmt: skip
    assert stdout.count("wrote ") == 6
    code, _, err = run(capsys, "k8s", "render", "echo", "--image", "i", "--out", str(out))
    assert code == 1 and "--force" in err  # never overwrites silently
    kserve = tmp_path / "kserve"
    code, _, err = run(
        capsys, "k8s", "render", "echo@production", "--image", "i", "--kserve",
        "--artifacts-uri", "s3://models/artifacts", "--out", str(kserve), *VARIANTS[variant],
    )  # fmt: skip
    assert code == 0, err
    kinds = {doc["kind"] for doc in validate_directory(kserve)}
    assert kinds == {"ConfigMap", "ServingRuntime", "InferenceService"}


def test_the_strict_validator_refuses_an_unknown_field(
    registered: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, _ = run(capsys, "k8s", "render", "echo", "--image", "i", "--json")
    assert code == 0
    items = json.loads(stdout)["items"]
    deployment = next(item for item in items if item["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(deployment))
    with pytest.raises(AssertionError, match="livenessProbes"):
        validate_builtin([path])


def test_a_canary_deployment_renders_a_kserve_canary_that_validates(
    registered: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with modelport.connect() as registry:
        registry.deploy_canary("echo", 2, 20)
    out = tmp_path / "kserve"
    code, _, err = run(
        capsys, "k8s", "render", "echo", "--image", "i", "--kserve",
        "--artifacts-uri", "s3://models/artifacts", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    docs = {doc["kind"]: doc for doc in validate_directory(out)}
    assert set(docs) == {"ConfigMap", "ServingRuntime", "InferenceService"}
    predictor = docs["InferenceService"]["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 20
    with modelport.connect() as registry:
        canary = registry.resolve("echo/2")
    assert predictor["model"]["storageUri"] == f"s3://models/artifacts/{canary.artifact_key}"
    # without an object store the container reads the registry itself
    code, stdout, err = run(capsys, "k8s", "render", "echo", "--image", "i", "--kserve")
    assert code == 0 and "not an object store" in err
    isvc = next(d for d in yaml.safe_load_all(stdout) if d["kind"] == "InferenceService")
    validate_custom(isvc)
    env = {e["name"]: e.get("value") for e in isvc["spec"]["predictor"]["model"]["env"]}
    assert env["SERVE_MODEL"] == "echo=echo/2"


def test_a_deployment_with_a_b_arms_renders_one_deployment_not_a_kserve_split(
    registered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with modelport.connect() as registry:
        registry.deploy_ab("echo", [(1, 50), (2, 50)])
    code, stdout, _ = run(capsys, "k8s", "render", "echo", "--image", "i", "-o", "yaml")
    assert code == 0
    (deployment,) = [d for d in yaml.safe_load_all(stdout) if d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["serve", "echo"]  # the deployment: modelport's router splits it
    code, _, err = run(capsys, "k8s", "render", "echo", "--image", "i", "--kserve")
    assert code == 1 and "challenger" in err and "without --kserve" in err


def test_unknown_references_are_refused(
    registered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "k8s", "render", "nope@production", "--image", "i", "--json")
    assert code == 1
    assert "nope" in json.loads(err)["error"]


def test_no_credential_of_the_rendering_machine_appears_in_any_output(
    isolated_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = f"sqlite:///{tmp_path / 'registry-hunter2-secret.db'}"
    secrets = {
        "MODELPORT_DATABASE_URL": database,
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value-do-not-render",
        "AWS_ACCESS_KEY_ID": "AKIA-DO-NOT-RENDER",
        "MODELPORT_RATE_LIMIT_URL": "redis://:redis-password-value@redis:6379/0",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    _register()  # in the database the URL names: read for the rendering, never written
    outputs = []
    for extra in ([], ["--kserve"]):
        for form in (
            ["-o", "yaml"],
            ["--json"],
            ["--out", str(tmp_path / "-".join(extra or ["k"]))],
        ):
            code, stdout, err = run(
                capsys, "k8s", "render", "echo", "--image", "i", "--artifacts-uri",
                "s3://models/artifacts", *extra, *form,
            )  # fmt: skip
            assert code == 0, err
            outputs.append(stdout + err)
    outputs.extend(path.read_text() for path in tmp_path.rglob("*.yaml"))
    text = "\n".join(outputs)
    for value in [*secrets.values(), "hunter2", "redis-password"]:
        assert value not in text
    assert "secretKeyRef" in text and "kind: Secret\n" not in text


def test_the_crd_validation_refuses_unknown_fields_and_wrong_types(
    registered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import jsonschema

    code, stdout, _ = run(capsys, "k8s", "render", "echo", "--image", "i", "--kserve", "--json")
    assert code == 0
    isvc = next(i for i in json.loads(stdout)["items"] if i["kind"] == "InferenceService")
    validate_custom(isvc)
    isvc["spec"]["predictor"]["model"]["protocolVersions"] = "v2"
    with pytest.raises(jsonschema.ValidationError, match="protocolVersions"):
        validate_custom(isvc)
    del isvc["spec"]["predictor"]["model"]["protocolVersions"]
    isvc["spec"]["predictor"]["minReplicas"] = "two"
    with pytest.raises(jsonschema.ValidationError, match="two"):
        validate_custom(isvc)
