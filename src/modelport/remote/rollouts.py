"""The rollout calls of ``RegistryClient``: the control plane's rollout routes, with the
signatures of ``rollout.commands`` (less the controller, which runs on the server).

``tick_rollout`` and ``tick_rollouts`` ask the control plane for one controller tick
under ``owner`` (the caller's lease name, see ``server.http.rollouts``); the caller
keeps the clock, ticking every poll, and ``release_rollouts`` gives the leases back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from modelport.domain.rollout_plan import RolloutPlan, RolloutState


@dataclass(frozen=True)
class RemoteOutcome:
    """One tick on the control plane: what ``StepOutcome`` says, as it said it."""

    deployment: str
    state: RolloutState | None
    decision: dict[str, Any] | None
    note: str
    line: dict[str, Any]

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> RemoteOutcome:
        """The outcome from its answer (``server.http.rollouts.outcome_document``)."""
        line, state = document["outcome"], document.get("state")
        return cls(
            deployment=str(line["deployment"]),
            state=RolloutState.from_dict(state) if state is not None else None,
            decision=line.get("decision"),
            note=str(line.get("note", "")),
            line=line,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON line ``StepOutcome.to_dict`` gave on the server."""
        return dict(self.line)


class RolloutCalls:
    """Rollouts over HTTP; the client supplies ``_json``."""

    _json: Callable[..., Any]

    def start_rollout(
        self, name: str, version: int, plan: RolloutPlan, *, model: str | None = None,
        reason: str | None = None,
    ) -> RolloutState:  # fmt: skip
        """Start rolling ``model/version`` out on deployment ``name`` along ``plan``."""
        body = _present(version=version, plan=plan.to_dict(), model=model, reason=reason)
        return RolloutState.from_dict(self._json("POST", _rollout(name), json=body))

    def pause_rollout(self, name: str, *, reason: str | None = None) -> RolloutState:
        """Hold a running rollout at its step."""
        return self._command(name, "pause", reason)

    def resume_rollout(self, name: str, *, reason: str | None = None) -> RolloutState:
        """Turn a paused rollout back on."""
        return self._command(name, "resume", reason)

    def abort_rollout(self, name: str, *, reason: str | None = None) -> RolloutState:
        """Stop a rollout and give all traffic back to the champion."""
        return self._command(name, "abort", reason)

    def rollout_status(self, name: str) -> RolloutState:
        """The rollout of deployment ``name`` (``NotFoundError`` when it has none)."""
        return RolloutState.from_dict(self._json("GET", _rollout(name)))

    def tick_rollout(self, name: str, *, owner: str) -> RemoteOutcome:
        """One controller tick of ``name``'s rollout, under ``owner``'s lease."""
        found = self._json("POST", f"{_rollout(name)}/tick", json={"owner": owner})
        return RemoteOutcome.from_document(found["outcomes"][0])

    def tick_rollouts(self, *, owner: str) -> list[RemoteOutcome]:
        """One controller tick of every rollout, under ``owner``'s leases."""
        found = self._json("POST", "/api/rollouts/tick", json={"owner": owner})
        return [RemoteOutcome.from_document(d) for d in found["outcomes"]]

    def release_rollouts(self, *, owner: str, name: str | None = None) -> None:
        """Give up ``owner``'s lease on ``name``'s rollout (None: on every rollout)."""
        path = f"{_rollout(name)}/release" if name is not None else "/api/rollouts/release"
        self._json("POST", path, json={"owner": owner})

    def _command(self, name: str, verb: str, reason: str | None) -> RolloutState:
        found = self._json("POST", f"{_rollout(name)}/{verb}", json=_present(reason=reason))
        return RolloutState.from_dict(found)


def _rollout(name: str) -> str:
    return f"/api/deployments/{quote(name, safe='')}/rollout"


def _present(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}
