"""The deployment calls of ``RegistryClient``: the ``/api/deployments`` routes
``modelport deploy`` uses, with ``RegistryService``'s signatures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from modelport.domain import wire
from modelport.domain.deployments import Deployment, DeploymentEvent
from modelport.errors import DeploymentNotFoundError


class DeploymentCalls:
    """Deployments over HTTP; the client supplies ``_json`` and ``_send`` (one request,
    its JSON answer or the error it stands for)."""

    _json: Callable[..., Any]
    _send: Callable[..., Any]

    def find_deployment(self, name: str) -> Deployment | None:
        """The deployment called ``name``, or None."""
        try:
            return self.get_deployment(name)
        except DeploymentNotFoundError:
            return None

    def get_deployment(self, name: str) -> Deployment:
        """The deployment called ``name``."""
        return wire.deployment_from_wire(self._json("GET", _deployment(name)))

    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""
        found = self._json("GET", "/api/deployments")["deployments"]
        return [wire.deployment_from_wire(d) for d in found]

    def deployment_history(self, name: str, limit: int = 50) -> list[DeploymentEvent]:
        """A deployment's changes, newest first."""
        found = self._json("GET", f"{_deployment(name)}/history", params={"limit": str(limit)})
        return [wire.event_from_wire(e) for e in found["events"]]

    def create_deployment(
        self, name: str, version: int, *, model: str | None = None, reason: str | None = None
    ) -> Deployment:
        """A new deployment ``name`` answered by ``model/version``."""
        body = _present(version=version, model=model, reason=reason)
        return wire.deployment_from_wire(self._json("PUT", _deployment(name), json=body))

    def deploy_canary(
        self, name: str, version: int, weight: float, *, model: str | None = None,
        reason: str | None = None,
    ) -> Deployment:  # fmt: skip
        """Put ``version`` on ``weight`` percent of the traffic as the canary."""
        return self._change(name, "canary", version=version, weight=weight, model=model,
                            reason=reason)  # fmt: skip

    def deploy_ab(
        self, name: str, arms: Sequence[tuple[int, float]], *, sticky: str | None = None,
        model: str | None = None, reason: str | None = None,
    ) -> Deployment:  # fmt: skip
        """Split the traffic between ``(version, weight)`` arms."""
        listed = [{"version": v, "weight": w} for v, w in arms]
        return self._change(name, "ab", arms=listed, sticky=sticky, model=model, reason=reason)

    def deploy_shadow(
        self, name: str, version: int, sample: float, *, model: str | None = None,
        reason: str | None = None,
    ) -> Deployment:  # fmt: skip
        """Copy ``sample`` of the requests to ``version``."""
        return self._change(name, "shadow", version=version, sample=sample, model=model,
                            reason=reason)  # fmt: skip

    def set_arm_weight(
        self, name: str, arm: str, weight: float, *, reason: str | None = None
    ) -> Deployment:
        """Set a live arm's weight."""
        return self._change(name, "weights", arm=arm, weight=weight, reason=reason)

    def remove_arm(self, name: str, arm: str, *, reason: str | None = None) -> Deployment:
        """Remove a candidate or shadow arm."""
        params = _present(reason=reason)
        found = self._json("DELETE", f"{_deployment(name)}/arms/{_part(arm)}", params=params)
        return wire.deployment_from_wire(found)

    def promote_deployment(
        self, name: str, arm: str | None = None, *, skip_gates: str | None = None,
        reason: str | None = None,
    ) -> Deployment:  # fmt: skip
        """The candidate becomes the champion (the gates run on the server)."""
        return self._change(name, "promote", arm=arm, skip_gates=skip_gates, reason=reason)

    def rollback_deployment(self, name: str, *, reason: str | None = None) -> Deployment:
        """Back to the last good champion."""
        return self._change(name, "rollback", reason=reason)

    def delete_deployment(self, name: str, *, reason: str | None = None) -> None:
        """Delete a deployment (its history stays)."""
        self._send("DELETE", _deployment(name), params=_present(reason=reason))

    def _change(self, name: str, verb: str, **fields: Any) -> Deployment:
        found = self._json("POST", f"{_deployment(name)}/{verb}", json=_present(**fields))
        return wire.deployment_from_wire(found)


def _part(text: str) -> str:
    return quote(text, safe="")


def _deployment(name: str) -> str:
    return f"/api/deployments/{_part(name)}"


def _present(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}
