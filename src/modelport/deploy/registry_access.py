"""Pods that follow a control plane by its URL (``modelport k8s render`` with
``MODELPORT_REGISTRY_URL`` set) instead of reading the stores: the URL in the
ConfigMap, the replica's API key read from a Secret (referenced, never rendered), and
the CA bundle that verifies the control plane, mounted from a ConfigMap when there is
one. No database URL and no object-store credentials reach these pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The key of the Secret holding the replica's API key, and of the ConfigMap holding
# the CA bundle (kubectl create secret generic NAME --from-literal=api-key=mp_...).
API_KEY_KEY = "api-key"
CA_KEY = "ca.pem"
CA_VOLUME = "registry-ca"
CA_MOUNT = "/etc/modelport/registry-ca"


@dataclass(frozen=True)
class RegistryAccess:
    """The control plane the pods follow and where their credentials come from."""

    url: str
    key_secret: str
    ca_config_map: str | None = None

    def names(self) -> list[tuple[str, str]]:
        """(option, object name) of every object the pods reference, to check."""
        found = [("registry-key-secret", self.key_secret)]
        if self.ca_config_map is not None:
            found.append(("registry-ca-configmap", self.ca_config_map))
        return found

    def config(self) -> dict[str, str]:
        """The ConfigMap's registry variables."""
        data = {"MODELPORT_REGISTRY_URL": self.url}
        if self.ca_config_map is not None:
            data["MODELPORT_REGISTRY_CA_BUNDLE"] = f"{CA_MOUNT}/{CA_KEY}"
        return data

    def env(self) -> list[dict[str, Any]]:
        """``MODELPORT_API_KEY`` from the Secret (required: the pod cannot follow the
        control plane, nor check its callers' keys, without it)."""
        reference = {"name": self.key_secret, "key": API_KEY_KEY}
        return [{"name": "MODELPORT_API_KEY", "valueFrom": {"secretKeyRef": reference}}]

    def volumes(self) -> list[dict[str, Any]]:
        """The CA bundle's ConfigMap as a read-only volume, when there is one."""
        if self.ca_config_map is None:
            return []
        source = {"name": self.ca_config_map, "items": [{"key": CA_KEY, "path": CA_KEY}]}
        return [{"name": CA_VOLUME, "configMap": source}]

    def volume_mounts(self) -> list[dict[str, Any]]:
        """Where ``volumes()`` are mounted."""
        if self.ca_config_map is None:
            return []
        return [{"name": CA_VOLUME, "mountPath": CA_MOUNT, "readOnly": True}]
