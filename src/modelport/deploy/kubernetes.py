"""Kubernetes manifests for ``modelport serve`` (``modelport k8s render``): a Deployment,
its Service, HorizontalPodAutoscaler, PodDisruptionBudget and ConfigMap, and a
ServiceMonitor for the Prometheus Operator. Secrets are referenced, never rendered.

A registry deployment with canary or A/B arms is one Deployment: every replica serves
the deployment's name and modelport's own router splits the requests between the arms
(``serve churn``); the replicas follow the registry's changes by themselves.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from modelport.deploy.manifests import (
    CONTAINER_NAME,
    HTTP_PORT_NAME,
    METRICS_KEY_KEY,
    METRICS_PATH,
    Manifest,
    ManifestOptions,
    config_data,
    container_security,
    metadata,
    pod_security,
    probes,
    secret_env,
    selector,
    serve_args,
    volume_mounts,
    volumes,
)


def render_kubernetes(options: ManifestOptions) -> list[Manifest]:
    """Every file of a plain Kubernetes rendering, in the order to apply them."""
    options.check()
    return [
        Manifest("configmap.yaml", (config_map(options),)),
        Manifest("deployment.yaml", (deployment(options),)),
        Manifest("service.yaml", (service(options),)),
        Manifest("hpa.yaml", (autoscaler(options),)),
        Manifest("pdb.yaml", (disruption_budget(options),)),
        Manifest("servicemonitor.yaml", (service_monitor(options),)),
    ]


def config_map(options: ManifestOptions) -> dict[str, Any]:
    """The non-secret settings, read by the container as environment variables."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(options, options.config_map_name),
        "data": config_data(options),
    }


def container(options: ManifestOptions) -> dict[str, Any]:
    """The server's container: ``modelport serve`` as PID 1, so SIGTERM reaches it."""
    spec: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": options.image,
        "command": ["modelport"],
        "args": serve_args(options),
        "ports": [{"name": HTTP_PORT_NAME, "containerPort": options.port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": options.config_map_name}}],
        "env": secret_env(options),
        **probes(),
        "resources": options.resources.to_dict(),
        "securityContext": container_security(),
        "volumeMounts": volume_mounts(options),
    }
    if options.prestop_sleep_s:
        spec["lifecycle"] = {"preStop": {"sleep": {"seconds": options.prestop_sleep_s}}}
    return spec


def pod_spec(options: ManifestOptions) -> dict[str, Any]:
    """The pods' spec. The server never calls the Kubernetes API: no token is mounted."""
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": options.termination_grace_s,
        "securityContext": pod_security(options),
        "containers": [container(options)],
        "volumes": volumes(options),
    }
    if options.service_account:
        spec["serviceAccountName"] = options.service_account
    return spec


def deployment(options: ManifestOptions) -> dict[str, Any]:
    """The Deployment. Rolling updates add a pod before removing one, and the pods
    restart when the ConfigMap's content changes (its digest is a pod annotation)."""
    digest = hashlib.sha256(json.dumps(config_data(options), sort_keys=True).encode()).hexdigest()
    template_meta = {
        "labels": metadata(options)["labels"],
        "annotations": {"checksum/config": digest, "modelport/serves": options.source},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(options),
        # No spec.replicas: the autoscaler owns the count (from --replicas up), and a
        # count here would reset it at every kubectl apply.
        "spec": {
            "selector": {"matchLabels": selector(options)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {"metadata": template_meta, "spec": pod_spec(options)},
        },
    }


def service(options: ManifestOptions) -> dict[str, Any]:
    """A ClusterIP Service on the server's port (named, for the ServiceMonitor)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(options),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(options),
            "ports": [
                {
                    "name": HTTP_PORT_NAME,
                    "port": options.port,
                    "targetPort": HTTP_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def autoscaler(options: ManifestOptions) -> dict[str, Any]:
    """An autoscaling/v2 HorizontalPodAutoscaler on CPU, from --replicas up to
    --max-replicas; scaling down waits 5 minutes of lower load."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(options),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": options.name},
            "minReplicas": options.replicas,
            "maxReplicas": options.max_hpa_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": options.target_cpu_percent,
                        },
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def disruption_budget(options: ManifestOptions) -> dict[str, Any]:
    """A policy/v1 PodDisruptionBudget: voluntary evictions (node drains) take one pod
    at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(options),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(options)}},
    }


def service_monitor(options: ManifestOptions) -> dict[str, Any]:
    """A Prometheus Operator ServiceMonitor scraping /metrics through the Service; with
    a key that has the ``metrics`` scope, read from the Secret, unless metrics are
    public."""
    endpoint: dict[str, Any] = {
        "port": HTTP_PORT_NAME,
        "path": METRICS_PATH,
        "interval": "30s",
        "scrapeTimeout": "10s",
    }
    if not options.metrics_public:
        endpoint["authorization"] = {
            "type": "Bearer",
            "credentials": {"name": options.secret_name, "key": METRICS_KEY_KEY},
        }
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(options),
        "spec": {"selector": {"matchLabels": selector(options)}, "endpoints": [endpoint]},
    }
