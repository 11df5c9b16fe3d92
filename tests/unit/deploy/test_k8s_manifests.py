"""The Kubernetes and KServe manifests agree with the server they run: probe paths are
the server's own open routes, ports and drain timings come from its settings, the
grace period outlasts the whole drain, the pods run locked down, and credentials are
only ever referenced."""

from __future__ import annotations

from typing import Any

import pytest

from modelport.config import ServeSettings
from modelport.deploy.kserve import KServeModel, deployment_target, render_kserve
from modelport.deploy.kubernetes import render_kubernetes
from modelport.deploy.manifests import (
    SUPERVISOR_KILL_SLACK_S,
    ManifestOptions,
    kubernetes_name,
)
from modelport.domain.deployments import Arm, ArmRole, Deployment
from modelport.errors import InvalidArgumentError
from modelport.server.http.app import ROUTES
from modelport.server.http.openapi_security import OPEN_PATHS
from modelport.server.process.supervisor import KILL_SLACK_S

DEFAULTS = ServeSettings()


def _by_kind(options: ManifestOptions) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for m in render_kubernetes(options) for doc in m.documents}


def _container(options: ManifestOptions) -> dict[str, Any]:
    spec = _by_kind(options)["Deployment"]["spec"]["template"]["spec"]
    assert len(spec["containers"]) == 1
    container: dict[str, Any] = spec["containers"][0]
    return container


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


OPTIONS = ManifestOptions(name="churn", source="churn@production", image="reg/modelport:1")


def test_probes_use_the_servers_open_health_routes_on_the_served_port() -> None:
    container = _container(OPTIONS)
    get_routes = {path for path, methods, _ in ROUTES if "GET" in methods}
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        action = container[probe]["httpGet"]
        assert action["port"] == "http"
        assert action["path"] in get_routes and action["path"] in OPEN_PATHS  # no key needed
        paths[probe] = action["path"]
    assert paths["readinessProbe"] == "/v2/health/ready"
    assert paths["livenessProbe"] == paths["startupProbe"] == "/v2/health/live"
    (port,) = container["ports"]
    assert port == {"name": "http", "containerPort": DEFAULTS.port, "protocol": "TCP"}
    assert _arg(container["args"], "--port") == str(DEFAULTS.port)
    assert _arg(container["args"], "--host") == "0.0.0.0"
    # the startup probe allows far more than the ~2 s cold start before liveness takes over
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def test_the_service_and_service_monitor_reach_the_named_port_and_metrics_route() -> None:
    kinds = _by_kind(OPTIONS)
    (port,) = kinds["Service"]["spec"]["ports"]
    assert port["targetPort"] == "http" and port["port"] == DEFAULTS.port
    (endpoint,) = kinds["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert ("/metrics", ("GET",)) in {(path, methods) for path, methods, _ in ROUTES}
    assert endpoint["path"] == "/metrics"
    # /metrics needs a key with the metrics scope: read from the Secret, by reference
    assert endpoint["authorization"]["credentials"] == {
        "name": "churn-secrets",
        "key": "metrics-key",
    }
    public = _by_kind(ManifestOptions(name="c", source="c", image="i", metrics_public=True))
    assert "authorization" not in public["ServiceMonitor"]["spec"]["endpoints"][0]
    assert public["ConfigMap"]["data"]["MODELPORT_SECURITY__METRICS_PUBLIC"] == "true"


def test_drain_timings_match_the_server_and_the_grace_period_outlasts_them() -> None:
    assert SUPERVISOR_KILL_SLACK_S == KILL_SLACK_S
    container = _container(OPTIONS)
    delay = float(_arg(container["args"], "--drain-delay"))
    timeout = float(_arg(container["args"], "--drain-timeout"))
    assert timeout == DEFAULTS.drain_timeout_s
    assert delay == 5  # docs/production.md: behind a Kubernetes Service
    grace = _by_kind(OPTIONS)["Deployment"]["spec"]["template"]["spec"]
    assert grace["terminationGracePeriodSeconds"] > delay + timeout + KILL_SLACK_S
    assert "lifecycle" not in container  # the server's drain delay does a preStop's job

    slept = ManifestOptions(name="c", source="c", image="i", prestop_sleep_s=3,
                            drain_delay_s=2, drain_timeout_s=10)  # fmt: skip
    pod = _by_kind(slept)["Deployment"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 3}}}
    assert pod["terminationGracePeriodSeconds"] > 3 + 2 + 10 + KILL_SLACK_S


def test_the_pod_runs_as_a_non_root_user_with_a_read_only_root() -> None:
    pod = _by_kind(OPTIONS)["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001 != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = pod["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    config = _by_kind(OPTIONS)["ConfigMap"]["data"]
    assert set(mounts) == {"/tmp", config["MODELPORT_HOME"]}
    assert {v["name"]: "emptyDir" in v for v in pod["volumes"]} == {"tmp": True, "home": True}
    resources = pod["containers"][0]["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_credentials_are_secret_references_and_keys_are_required() -> None:
    options = ManifestOptions(name="churn", source="churn", image="i",
                              artifacts_uri="s3://models/artifacts")  # fmt: skip
    kinds = _by_kind(options)
    env = {item["name"]: item for item in _container(options)["env"]}
    assert set(env) == {"MODELPORT_DATABASE_URL", "MODELPORT_RATE_LIMIT_URL",
                        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # fmt: skip
    assert all("value" not in item for item in env.values())
    database = env["MODELPORT_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert database == {"name": "churn-secrets", "key": "database-url"}  # not optional
    assert kinds["ConfigMap"]["data"]["MODELPORT_SECURITY__AUTH"] == "on"
    assert kinds["ConfigMap"]["data"]["MODELPORT_ARTIFACTS_URI"] == "s3://models/artifacts"
    assert "Secret" not in kinds


def test_autoscaler_and_disruption_budget_select_the_deployments_pods() -> None:
    options = ManifestOptions(name="churn", source="churn", image="i", replicas=3)
    kinds = _by_kind(options)
    pods = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    selector = kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pods.items()
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    assert kinds["Service"]["spec"]["selector"] == selector
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "churn"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 9)
    assert "replicas" not in kinds["Deployment"]["spec"]  # the autoscaler's to set


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Churn_v2"}, "name"),
        ({"replicas": 4, "max_replicas": 2}, "replicas"),
        ({"secret": "x" * 64}, "secret"),
        ({"uid": 0}, "uid"),
    ],
)
def test_bad_options_are_refused_naming_the_option(change: dict[str, Any], field: str) -> None:
    options = ManifestOptions(**{"name": "churn", "source": "churn", "image": "i", **change})
    with pytest.raises(InvalidArgumentError, match=f"--{field}"):
        render_kubernetes(options)


def test_model_names_become_kubernetes_names() -> None:
    assert kubernetes_name("Churn_v2.1") == "churn-v2-1"
    assert kubernetes_name("3d") == "m-3d"
    assert len(kubernetes_name("a" * 200)) == 55


def _deployment(*arms: Arm) -> Deployment:
    return Deployment(name="churn", arms=arms)


CHAMPION = Arm("champion", "churn", 3, ArmRole.CHAMPION, 90.0)


def test_a_canary_becomes_kserves_canary_and_other_arms_are_refused() -> None:
    assert deployment_target(_deployment(Arm("champion", "churn", 3, ArmRole.CHAMPION, 100.0))) == (
        "churn/3", None)  # fmt: skip
    canary = _deployment(CHAMPION, Arm("canary", "churn", 4, ArmRole.CANARY, 10.0))
    assert deployment_target(canary) == ("churn/4", 10)
    challenger = _deployment(CHAMPION, Arm("challenger", "churn", 4, ArmRole.CHALLENGER, 10.0))
    with pytest.raises(InvalidArgumentError, match="without --kserve"):
        deployment_target(challenger)


def test_the_inference_service_speaks_v2_through_the_modelport_runtime() -> None:
    model = KServeModel("churn", storage_uri="s3://models/artifacts/churn/4", canary_percent=10)
    docs = {d["kind"]: d for m in render_kserve(OPTIONS, model) for d in m.documents}
    runtime = docs["ServingRuntime"]["spec"]
    assert runtime["protocolVersions"] == ["v2"]
    assert runtime["supportedModelFormats"][0]["name"] == "modelport"
    (container,) = runtime["containers"]
    assert container["args"][:2] == ["serve", "$(SERVE_MODEL)"]
    assert {"name": "SERVE_MODEL", "value": "{{.Name}}=/mnt/models"} in container["env"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    predictor = docs["InferenceService"]["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["model"]["protocolVersion"] == "v2"
    assert predictor["model"]["runtime"] == docs["ServingRuntime"]["metadata"]["name"]
    assert predictor["model"]["storageUri"] == "s3://models/artifacts/churn/4"
    assert {"name": "SERVE_MODEL", "value": "churn=/mnt/models"} in predictor["model"]["env"]
    registry = KServeModel("churn", ref="churn@production")
    predictor = render_kserve(OPTIONS, registry)[2].documents[0]["spec"]["predictor"]
    assert "storageUri" not in predictor["model"] and "canaryTrafficPercent" not in predictor
    assert {"name": "SERVE_MODEL", "value": "churn=churn@production"} in predictor["model"]["env"]


def test_the_docs_state_the_rendered_defaults() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "kubernetes.md").read_text()
    docs = " ".join(text.split())
    assert f"({OPTIONS.termination_grace_s} s by default)" in docs
    startup = _container(OPTIONS)["startupProbe"]
    times = "\u00d7"
    assert f"({startup['failureThreshold']} {times} {startup['periodSeconds']} s)" in docs
    assert "Kubernetes 1.33" in docs  # the pinned validation version (tests/testing_k8s.py)
