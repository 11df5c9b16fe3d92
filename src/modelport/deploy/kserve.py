"""KServe manifests (``modelport k8s render --kserve``): a ``ServingRuntime`` for
modelport, so that an InferenceService can name ``modelFormat: modelport``, and the
``InferenceService`` of one model, speaking the Open Inference Protocol (V2).

The runtime serves ``$(SERVE_MODEL)``: by default ``{{.Name}}=/mnt/models``, the
package KServe's storage initializer downloaded from ``storageUri``; an
InferenceService overrides the variable to serve a registry reference instead
(KServe concatenates arguments but merges environment variables by name).

KServe splits traffic between revisions of an InferenceService, one version each, so
a registry deployment maps onto it thus: without a canary, the champion's version;
with one, the canary's version and ``canaryTrafficPercent`` = its weight (KServe sends
the rest to the last ready revision: the champion's, applied before). A/B challengers
and shadows have no KServe form: render those without ``--kserve`` (one Deployment,
modelport's router).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelport.deploy.kubernetes import config_map
from modelport.deploy.manifests import (
    LIVE_PATH,
    METRICS_PATH,
    READY_PATH,
    Manifest,
    ManifestOptions,
    config_data,
    container_security,
    metadata,
    pod_security,
    secret_env,
    serve_args,
    volume_mounts,
    volumes,
)
from modelport.domain.deployments import ArmRole, Deployment
from modelport.errors import InvalidArgumentError

MODEL_FORMAT = "modelport"
MODEL_FORMAT_VERSION = "1"  # the package format (modelport.yaml format_version)
RUNTIME_NAME = "modelport"
KSERVE_MODEL_DIR = "/mnt/models"  # where KServe's storage initializer puts storageUri
SOURCE_VARIABLE = "SERVE_MODEL"
KSERVE_CONTAINER = "kserve-container"  # the name KServe merges the model's spec into


@dataclass(frozen=True)
class KServeModel:
    """What the InferenceService serves: the route name, and either a registry
    reference (``ref``) or the package at ``storage_uri``."""

    route: str
    ref: str | None = None
    storage_uri: str | None = None
    canary_percent: int | None = None

    @property
    def source(self) -> str:
        """The ``modelport serve`` argument inside the predictor."""
        target = KSERVE_MODEL_DIR if self.storage_uri else self.ref
        return f"{self.route}={target}"


def deployment_target(deployment: Deployment) -> tuple[str, int | None]:
    """The version reference KServe serves for a registry deployment, and the canary's
    traffic percentage when that version is a canary; refuses what KServe cannot split."""
    extra = [arm for arm in deployment.arms if arm.role not in (ArmRole.CHAMPION, ArmRole.CANARY)]
    if extra:
        roles = ", ".join(sorted({arm.role.value for arm in extra}))
        raise InvalidArgumentError(
            f"deployment {deployment.name!r} has {roles} arm(s), which KServe cannot split: "
            "render it without --kserve (one Deployment whose replicas route between the "
            "arms with modelport's router), or serve one version with --kserve",
            field="kserve",
        )
    canaries = [arm for arm in deployment.arms if arm.role is ArmRole.CANARY]
    if not canaries:
        return deployment.champion.ref, None
    canary = canaries[0]
    return canary.ref, max(1, min(99, round(canary.weight)))


def render_kserve(options: ManifestOptions, model: KServeModel) -> list[Manifest]:
    """The ConfigMap, the ServingRuntime and the InferenceService, in the order to
    apply them."""
    options.check()
    return [
        Manifest("configmap.yaml", (config_map(options),)),
        Manifest("servingruntime.yaml", (serving_runtime(options),)),
        Manifest("inferenceservice.yaml", (inference_service(options, model),)),
    ]


def serving_runtime(options: ManifestOptions) -> dict[str, Any]:
    """The ``modelport`` ServingRuntime: modelport's image serving one package in V2."""
    baseline = {key: value for key, value in config_data(options).items()
                if key in ("MODELPORT_HOME", "MODELPORT_SECURITY__AUTH",
                           "PYTHONDONTWRITEBYTECODE")}  # fmt: skip
    env = [{"name": SOURCE_VARIABLE, "value": "{{.Name}}=" + KSERVE_MODEL_DIR}]
    env.extend({"name": key, "value": value} for key, value in baseline.items())
    container = {
        "name": KSERVE_CONTAINER,
        "image": options.image,
        "command": ["modelport"],
        "args": serve_args(options, source=f"$({SOURCE_VARIABLE})"),
        "env": env,
        # KServe (Knative in serverless mode) takes one unnamed port.
        "ports": [{"containerPort": options.port, "protocol": "TCP"}],
        # Liveness waits out a cold start rather than a startupProbe, which not every
        # KServe deployment mode passes through.
        "readinessProbe": _probe(options, READY_PATH, period=2, failures=2),
        "livenessProbe": {
            **_probe(options, LIVE_PATH, period=10, failures=3),
            "initialDelaySeconds": 60,
        },
        "resources": options.resources.to_dict(),
        # The uid too: a runtime used without the rendered InferenceService (whose pod
        # security context names it) must still run non-root.
        "securityContext": {
            **container_security(),
            "runAsUser": options.uid,
            "runAsGroup": options.uid,
        },
        "volumeMounts": volume_mounts(options),
    }
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": metadata(options, RUNTIME_NAME),
        "spec": {
            "annotations": {
                "prometheus.kserve.io/port": str(options.port),
                "prometheus.kserve.io/path": METRICS_PATH,
            },
            "supportedModelFormats": [
                {
                    "name": MODEL_FORMAT,
                    "version": MODEL_FORMAT_VERSION,
                    "autoSelect": True,
                    "priority": 1,
                }
            ],
            "protocolVersions": ["v2"],
            "containers": [container],
            "volumes": volumes(options),
        },
    }


def inference_service(options: ManifestOptions, model: KServeModel) -> dict[str, Any]:
    """The InferenceService: the ``modelport`` runtime, V2, the model's source, the
    replicas, and the pod's security and grace period."""
    spec_model: dict[str, Any] = {
        "modelFormat": {"name": MODEL_FORMAT, "version": MODEL_FORMAT_VERSION},
        "runtime": RUNTIME_NAME,
        "protocolVersion": "v2",
        "env": [{"name": SOURCE_VARIABLE, "value": model.source}, *secret_env(options)],
        "envFrom": [{"configMapRef": {"name": options.config_map_name}}],
        "resources": options.resources.to_dict(),
    }
    if model.storage_uri:
        spec_model["storageUri"] = model.storage_uri
    predictor: dict[str, Any] = {
        "minReplicas": options.replicas,
        "maxReplicas": options.max_hpa_replicas,
        "terminationGracePeriodSeconds": options.termination_grace_s,
        "automountServiceAccountToken": False,
        "securityContext": pod_security(options),
        "model": spec_model,
    }
    if model.canary_percent is not None:
        predictor["canaryTrafficPercent"] = model.canary_percent
    if options.service_account:
        predictor["serviceAccountName"] = options.service_account
    meta = metadata(options)
    meta["annotations"] = {"modelport/serves": model.source}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": predictor},
    }


def _probe(options: ManifestOptions, path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": options.port},
        "periodSeconds": period,
        "timeoutSeconds": 5 if path == LIVE_PATH else 2,
        "failureThreshold": failures,
    }
