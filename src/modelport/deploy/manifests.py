"""What the Kubernetes and KServe renderers share: the options, the object names, the
server's command line and environment, and the YAML text.

The numbers that must agree with the server are taken from the server's own settings
(``ServeSettings``), never repeated here: the port, the drain timeout, the health
routes. The renderers return data; the CLI writes it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from modelport.config import ServeSettings
from modelport.deploy.registry_access import RegistryAccess
from modelport.errors import InvalidArgumentError

# The server's health routes (docs/serving.md); they never take an API key.
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"

# ``modelport serve``'s supervisor kills workers still running this long after
# drain_delay_s + drain_timeout_s (modelport.server.process.supervisor.KILL_SLACK_S;
# a test keeps the two equal: deploy may not import the server).
SUPERVISOR_KILL_SLACK_S = 5.0
# Behind a Kubernetes Service, how long endpoints take to stop routing to a pod that
# is terminating (docs/production.md: "Kubernetes, behind a Service or an Ingress: 5").
KUBERNETES_DRAIN_DELAY_S = 5.0
# Where the pod's writable MODELPORT_HOME lives (an emptyDir: caches, the default
# prediction log): the root file system is read-only.
HOME_MOUNT = "/var/lib/modelport"
TMP_MOUNT = "/tmp"  # noqa: S108  the emptyDir the server's private directories go to
CONTAINER_NAME = "modelport"
HTTP_PORT_NAME = "http"

# The keys the rendered Secret reference must hold (values are the user's).
DATABASE_URL_KEY = "database-url"
METRICS_KEY_KEY = "metrics-key"
RATE_LIMIT_URL_KEY = "rate-limit-url"
S3_KEYS = (("AWS_ACCESS_KEY_ID", "aws-access-key-id"),
           ("AWS_SECRET_ACCESS_KEY", "aws-secret-access-key"))  # fmt: skip
# Schemes KServe's storage initializer downloads from (storageUri).
OBJECT_STORE_SCHEMES = ("s3", "gs")

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")


def _serve_default(name: str) -> Any:
    return ServeSettings.model_fields[name].default


DEFAULT_PORT: int = _serve_default("port")
DEFAULT_DRAIN_TIMEOUT_S: float = _serve_default("drain_timeout_s")


@dataclass(frozen=True)
class Resources:
    """The container's requests and limits (Kubernetes quantities)."""

    cpu_request: str = "500m"
    memory_request: str = "512Mi"
    cpu_limit: str = "2"
    memory_limit: str = "1Gi"

    def to_dict(self) -> dict[str, Any]:
        """The container's ``resources``."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


@dataclass(frozen=True)
class ManifestOptions:
    """Everything a rendering needs. ``source`` is the ``modelport serve`` argument
    (``churn``, ``churn@production``, ``churn=churn/4``, ``churn=/mnt/models``)."""

    name: str
    source: str
    image: str
    namespace: str | None = None
    replicas: int = 2
    max_replicas: int | None = None
    target_cpu_percent: int = 70
    workers: int = 1
    port: int = DEFAULT_PORT
    drain_delay_s: float = KUBERNETES_DRAIN_DELAY_S
    drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S
    prestop_sleep_s: int = 0
    resources: Resources = field(default_factory=Resources)
    uid: int = 10001
    secret: str | None = None
    artifacts_uri: str | None = None
    prediction_log_uri: str | None = None
    metrics_public: bool = False
    service_account: str | None = None
    # Set: the pods follow this control plane by its URL instead of reading the stores.
    registry: RegistryAccess | None = None

    def check(self) -> None:
        """Refuse what Kubernetes or the server would refuse, naming the option."""
        names = [("name", self.name), ("secret", self.secret_name)]
        names.extend(self.registry.names() if self.registry is not None else [])
        for option, value in names:
            if not _DNS_LABEL.match(value):
                raise InvalidArgumentError(
                    f"--{option} {value!r} is not a Kubernetes name: lower-case letters, "
                    "digits and '-', starting with a letter, at most 63 characters",
                    field=option,
                )
        if self.replicas < 1 or self.max_hpa_replicas < self.replicas:
            raise InvalidArgumentError(
                f"--replicas {self.replicas} and --max-replicas {self.max_hpa_replicas}: "
                "need 1 <= replicas <= max-replicas",
                field="replicas",
            )
        if not 1 <= self.port <= 65535 or not self.image.strip():
            raise InvalidArgumentError("--port must be 1-65535 and --image non-empty")
        if self.uid < 1 or self.workers < 1:
            raise InvalidArgumentError(
                f"--uid {self.uid} and --workers {self.workers}: the pods run as a non-root "
                "user (uid 1 or more) with 1 worker or more",
                field="uid",
            )
        if self.drain_delay_s < 0 or self.drain_timeout_s < 0 or self.prestop_sleep_s < 0:
            raise InvalidArgumentError("drain delay, drain timeout and preStop sleep are >= 0")
        for value in vars(self.resources).values():
            if not _QUANTITY.match(value):
                raise InvalidArgumentError(
                    f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 1Gi)",
                    field="resources",
                )

    @property
    def secret_name(self) -> str:
        """The Secret the pods read their credentials from (never rendered)."""
        return self.secret or f"{self.name}-secrets"

    @property
    def config_map_name(self) -> str:
        """The ConfigMap of non-secret settings."""
        return f"{self.name}-config"

    @property
    def max_hpa_replicas(self) -> int:
        """The autoscaler's ceiling: three times the floor unless given."""
        return self.max_replicas if self.max_replicas is not None else 3 * self.replicas

    @property
    def object_store(self) -> bool:
        """Whether the pods read artifacts from an object store (credentials,
        storageUri); pods following a control plane read none."""
        if self.registry is not None:
            return False
        return artifacts_scheme(self.artifacts_uri) in OBJECT_STORE_SCHEMES

    @property
    def termination_grace_s(self) -> int:
        """Long enough for the preStop sleep, the server's drain delay and timeout, and
        the supervisor's own slack before it kills workers: the kubelet's SIGKILL must
        never come first."""
        total = (
            self.prestop_sleep_s + self.drain_delay_s + self.drain_timeout_s
            + SUPERVISOR_KILL_SLACK_S
        )  # fmt: skip
        return math.ceil(total) + 1


def kubernetes_name(model: str) -> str:
    """A model or deployment name as a Kubernetes object name (``Churn_v2`` ->
    ``churn-v2``), short enough for the ``-config`` and ``-secrets`` suffixes."""
    name = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"m-{name}".rstrip("-")
    return name[:55].rstrip("-")


def artifacts_scheme(uri: str | None) -> str | None:
    """The artifact store's URI scheme (``s3``), or None for a local path."""
    if not uri:
        return None
    scheme = urlsplit(uri).scheme.lower()
    return scheme if len(scheme) > 1 else None  # "C:" is a drive, not a scheme


def labels(options: ManifestOptions) -> dict[str, str]:
    """The labels every object carries; the first two select the pods."""
    return {
        "app.kubernetes.io/name": "modelport",
        "app.kubernetes.io/instance": options.name,
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/managed-by": "modelport",
    }


def selector(options: ManifestOptions) -> dict[str, str]:
    """The pods' selector (stable across renders: a Deployment's selector is immutable)."""
    return {key: labels(options)[key] for key in ("app.kubernetes.io/name",
                                                   "app.kubernetes.io/instance")}  # fmt: skip


def metadata(options: ManifestOptions, name: str | None = None) -> dict[str, Any]:
    """An object's ``metadata``."""
    meta: dict[str, Any] = {"name": name or options.name}
    if options.namespace:
        meta["namespace"] = options.namespace
    meta["labels"] = labels(options)
    return meta


def serve_args(options: ManifestOptions, source: str | None = None) -> list[str]:
    """``modelport serve``'s arguments: every address (the pod's), the port the probes
    and the Service use, and the drain the grace period is sized for."""
    return [
        "serve",
        options.source if source is None else source,
        "--host", "0.0.0.0",  # noqa: S104  the pod's own network namespace
        "--port", str(options.port),
        "--workers", str(options.workers),
        "--drain-delay", _number(options.drain_delay_s),
        "--drain-timeout", _number(options.drain_timeout_s),
    ]  # fmt: skip


def config_data(options: ManifestOptions) -> dict[str, str]:
    """The non-secret settings, as ``MODELPORT_*`` variables (the ConfigMap's data).

    Auth is ``on`` rather than ``auto``: the pod binds every address, so keys are
    required either way, and saying so keeps the requirement when the address changes.
    """
    data = {
        "MODELPORT_HOME": HOME_MOUNT,
        "MODELPORT_SECURITY__AUTH": "on",
        "MODELPORT_SECURITY__METRICS_PUBLIC": "true" if options.metrics_public else "false",
        "MODELPORT_USER": f"k8s:{options.name}",
        "PYTHONDONTWRITEBYTECODE": "1",  # the root file system is read-only
    }
    if options.registry is not None:
        data.update(options.registry.config())
    elif options.artifacts_uri:
        data["MODELPORT_ARTIFACTS_URI"] = options.artifacts_uri
    if options.prediction_log_uri:
        data["MODELPORT_PREDICTION_LOG__URI"] = options.prediction_log_uri
    return data


def secret_env(options: ManifestOptions) -> list[dict[str, Any]]:
    """Variables read from the Secret, by reference. The database URL is required:
    keys live there, and a server that must check keys refuses to start without one.
    Pods following a control plane read its API key instead (they check their callers'
    keys through it) and no database URL."""
    if options.registry is not None:
        env = options.registry.env()
    else:
        env = [_secret_ref("MODELPORT_DATABASE_URL", options.secret_name, DATABASE_URL_KEY)]
    env.append(
        _secret_ref("MODELPORT_RATE_LIMIT_URL", options.secret_name, RATE_LIMIT_URL_KEY, True)
    )
    if options.object_store and artifacts_scheme(options.artifacts_uri) == "s3":
        env.extend(_secret_ref(var, options.secret_name, key, True) for var, key in S3_KEYS)
    return env


def _secret_ref(variable: str, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    reference: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        reference["optional"] = True
    return {"name": variable, "valueFrom": {"secretKeyRef": reference}}


def http_probe(path: str, period: int, failures: int, timeout: int = 2) -> dict[str, Any]:
    """An ``httpGet`` probe on the named container port."""
    return {
        "httpGet": {"path": path, "port": HTTP_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def probes() -> dict[str, dict[str, Any]]:
    """Startup, readiness and liveness. The startup probe allows 5 minutes (150 x 2 s):
    a cold start is about 2 s, but a large model fetched from an object store and
    warmed takes longer, and liveness must not restart it meanwhile. Readiness every
    2 s, so a draining pod (503) leaves the endpoints quickly."""
    return {
        "startupProbe": http_probe(LIVE_PATH, period=2, failures=150),
        "readinessProbe": http_probe(READY_PATH, period=2, failures=2),
        "livenessProbe": http_probe(LIVE_PATH, period=10, failures=3, timeout=5),
    }


def container_security() -> dict[str, Any]:
    """The container's ``securityContext``: nothing to escalate to, nothing to write."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(options: ManifestOptions) -> dict[str, Any]:
    """The pod's ``securityContext``: a fixed non-root user owning the volumes."""
    return {
        "runAsNonRoot": True,
        "runAsUser": options.uid,
        "runAsGroup": options.uid,
        "fsGroup": options.uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def volumes(options: ManifestOptions) -> list[dict[str, Any]]:
    """Writable scratch space: /tmp (the server's private directories, metrics files)
    and MODELPORT_HOME (artifact cache, default prediction log); and the control
    plane's CA bundle when the pods follow one that has it."""
    extra = options.registry.volumes() if options.registry is not None else []
    return [
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "home", "emptyDir": {"sizeLimit": "10Gi"}},
        *extra,
    ]


def volume_mounts(options: ManifestOptions) -> list[dict[str, Any]]:
    """Where ``volumes()`` are mounted."""
    extra = options.registry.volume_mounts() if options.registry is not None else []
    return [
        {"name": "tmp", "mountPath": TMP_MOUNT},
        {"name": "home", "mountPath": HOME_MOUNT},
        *extra,
    ]


@dataclass(frozen=True)
class Manifest:
    """One rendered file: its name under ``--out`` and its documents."""

    filename: str
    documents: tuple[dict[str, Any], ...]

    def text(self) -> str:
        """The file's YAML text."""
        return to_yaml(self.documents)


def to_yaml(documents: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> str:
    """Documents as one YAML stream (``---`` between them), keys in the order given."""
    return "---\n".join(
        yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)
        for document in documents
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
