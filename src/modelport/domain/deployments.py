"""Deployments: a named endpoint and the model versions (arms) that answer it.

A deployment is what clients call (``/v2/models/churn/infer``): one *champion* arm, and
optionally a *canary* or *challengers* sharing the live traffic by weight, and *shadow*
arms that get a copy of some requests and never answer the caller. The weights of the
live arms (every role but shadow) add up to 100; a shadow arm's ``sample`` is the share
of requests it is copied.

Every change makes a new ``Deployment`` value (the functions below are pure) with the
next ``revision``; the registry stores it (refusing a write based on a stale revision)
and every server reconciles to it. ``previous_champion`` is the champion that the last
promotion replaced, where ``rollback`` goes when there is no candidate to drop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from modelport.domain.names import validate_model_name
from modelport.errors import InvalidArgumentError

WEIGHT_TOTAL = 100.0
_TOLERANCE = 1e-6


class ArmRole(StrEnum):
    """What an arm is for."""

    CHAMPION = "champion"  # the version that answers by default; exactly one
    CANARY = "canary"  # a candidate on a small share, to be promoted or rolled back
    CHALLENGER = "challenger"  # an A/B arm compared with the champion
    SHADOW = "shadow"  # gets copies of requests; its answers are logged, never returned


class StickyKind(StrEnum):
    """Where the key that pins a caller to an arm comes from."""

    HEADER = "header"  # an HTTP request header (X-User-ID)
    FIELD = "field"  # an input column of the request (its first row's value)


@dataclass(frozen=True)
class Sticky:
    """The key that keeps a caller on one arm: ``header:X-User-ID`` or ``field:user_id``."""

    kind: StickyKind
    key: str

    def describe(self) -> str:
        """The text form, as the CLI takes it."""
        return f"{self.kind.value}:{self.key}"


def parse_sticky(text: str) -> Sticky:
    """``header:X-User-ID`` or ``field:customer_id``; raises ``InvalidArgumentError``."""
    kind, sep, key = text.partition(":")
    kinds = ", ".join(k.value for k in StickyKind)
    if not sep or not key.strip() or kind.strip().lower() not in {k.value for k in StickyKind}:
        raise InvalidArgumentError(
            f"sticky key {text!r} is not KIND:NAME with KIND one of {kinds} "
            "(e.g. header:X-User-ID or field:customer_id)",
            field="sticky",
        )
    return Sticky(StickyKind(kind.strip().lower()), key.strip())


@dataclass(frozen=True)
class Arm:
    """One model version behind a deployment.

    ``name`` is unique within the deployment and is what ``X-Modelport-Arm``, the
    prediction log and the metrics call it (the role, or ``role-version`` when two arms
    share a role). ``weight`` is the percentage of live traffic (0 for shadows);
    ``sample`` is the share of requests a shadow arm is copied (1 for live arms).
    """

    name: str
    model: str
    version: int
    role: ArmRole
    weight: float
    sample: float = 1.0

    @property
    def live(self) -> bool:
        """Whether the arm answers callers (every role but shadow)."""
        return self.role is not ArmRole.SHADOW

    @property
    def ref(self) -> str:
        """``model/version``."""
        return f"{self.model}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored, and shown by ``--json`` and the REST API)."""
        return {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "role": self.role.value,
            "weight": self.weight,
            "sample": self.sample,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Arm:
        """Inverse of ``to_dict``."""
        return cls(
            name=str(data["name"]),
            model=str(data["model"]),
            version=int(data["version"]),
            role=ArmRole(data["role"]),
            weight=float(data["weight"]),
            sample=float(data.get("sample", 1.0)),
        )


@dataclass(frozen=True)
class Deployment:
    """A named endpoint, its arms and how requests are split between them."""

    name: str
    arms: tuple[Arm, ...]
    sticky: Sticky | None = None
    revision: int = 0  # 0 until stored; every stored change is one higher
    previous_champion: tuple[str, int] | None = None  # (model, version) before the last promote
    created_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def champion(self) -> Arm:
        """The champion arm (there is always exactly one)."""
        return next(arm for arm in self.arms if arm.role is ArmRole.CHAMPION)

    @property
    def live_arms(self) -> tuple[Arm, ...]:
        """The arms that answer callers, champion first."""
        return tuple(arm for arm in self.arms if arm.live)

    @property
    def shadow_arms(self) -> tuple[Arm, ...]:
        """The arms that get copies of requests."""
        return tuple(arm for arm in self.arms if not arm.live)

    @property
    def candidates(self) -> tuple[Arm, ...]:
        """The live arms other than the champion (canary, challengers)."""
        return tuple(arm for arm in self.arms if arm.live and arm.role is not ArmRole.CHAMPION)

    def arm(self, name: str) -> Arm:
        """The arm called ``name``; raises ``InvalidArgumentError`` naming the arms there are."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        names = ", ".join(a.name for a in self.arms)
        raise InvalidArgumentError(
            f"deployment {self.name!r} has no arm {name!r} (its arms: {names})", field="arm"
        )

    def spec_dict(self) -> dict[str, Any]:
        """What defines the routing (stored as JSON): arms, sticky key, previous champion."""
        previous = self.previous_champion
        return {
            "arms": [arm.to_dict() for arm in self.arms],
            "sticky": self.sticky.describe() if self.sticky is not None else None,
            "previous_champion": (
                {"model": previous[0], "version": previous[1]} if previous else None
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` output and the REST API."""
        return {
            "name": self.name,
            "revision": self.revision,
            **self.spec_dict(),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "updated_by": self.updated_by,
        }

    @classmethod
    def from_spec(
        cls,
        name: str,
        spec: Mapping[str, Any],
        *,
        revision: int,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        updated_by: str | None = None,
    ) -> Deployment:
        """Rebuild a stored deployment from ``spec_dict()`` and its row's fields."""
        previous = spec.get("previous_champion")
        sticky = spec.get("sticky")
        return cls(
            name=name,
            arms=tuple(Arm.from_dict(arm) for arm in spec["arms"]),
            sticky=parse_sticky(sticky) if sticky else None,
            revision=revision,
            previous_champion=(
                (str(previous["model"]), int(previous["version"])) if previous else None
            ),
            created_at=created_at,
            updated_at=updated_at,
            updated_by=updated_by,
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class NewDeploymentEvent:
    """One change of a deployment, for its history: what was done (``action``, such as
    ``deployment.canary``), by whom and why, the stored ``revision`` it made and the
    ``spec`` (``Deployment.spec_dict()``) after it (for a deletion, the spec deleted);
    ``details`` holds the numbers behind it (a gate report, a rollout step's figures)."""

    deployment: str
    revision: int
    action: str
    actor: str
    reason: str | None
    timestamp: datetime
    spec: Mapping[str, Any]
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeploymentEvent(NewDeploymentEvent):
    """A recorded change, numbered in the order changes were made."""

    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` output and the REST API."""
        return {
            "id": self.id,
            "deployment": self.deployment,
            "revision": self.revision,
            "action": self.action,
            "actor": self.actor,
            "reason": self.reason,
            "timestamp": self.timestamp.isoformat(),
            "spec": dict(self.spec),
            "details": dict(self.details),
        }


# ---------------------------------------------------------------------------- checks


def validate_deployment(deployment: Deployment) -> Deployment:
    """Raise ``InvalidArgumentError`` (naming the field) unless the deployment is sound:
    one champion, unique arm names, live weights in [0, 100] adding up to 100, shadow
    samples in (0, 1], positive versions. Returns it, for chaining."""
    validate_model_name(deployment.name)
    champions = [arm for arm in deployment.arms if arm.role is ArmRole.CHAMPION]
    if len(champions) != 1:
        raise InvalidArgumentError(
            f"deployment {deployment.name!r} needs exactly one champion arm, not {len(champions)}",
            field="arms",
        )
    names = [arm.name for arm in deployment.arms]
    if len(set(names)) != len(names):
        raise InvalidArgumentError(
            f"deployment {deployment.name!r} has two arms with one name: {names}", field="arms"
        )
    for arm in deployment.arms:
        _check_arm(deployment.name, arm)
    total = sum(arm.weight for arm in deployment.live_arms)
    if not math.isclose(total, WEIGHT_TOTAL, abs_tol=_TOLERANCE):
        weights = ", ".join(f"{a.name}={a.weight:g}" for a in deployment.live_arms)
        raise InvalidArgumentError(
            f"the weights of deployment {deployment.name!r} add up to {total:g}, not 100 "
            f"({weights})",
            field="weight",
        )
    return deployment


def _check_arm(deployment: str, arm: Arm) -> None:
    validate_model_name(arm.model)
    where = f"arm {arm.name!r} of deployment {deployment!r}"
    if arm.version < 1:
        raise InvalidArgumentError(f"{where}: version must be 1 or more", field="version")
    if arm.live and not 0.0 <= arm.weight <= WEIGHT_TOTAL:
        raise InvalidArgumentError(
            f"{where}: weight {arm.weight:g} is not between 0 and 100", field="weight"
        )
    if not arm.live and arm.weight != 0.0:
        raise InvalidArgumentError(
            f"{where}: a shadow arm answers no caller, so its weight must be 0, not {arm.weight:g}",
            field="weight",
        )
    if not arm.live and not 0.0 < arm.sample <= 1.0:
        raise InvalidArgumentError(
            f"{where}: shadow sample {arm.sample:g} is not in (0, 1]", field="sample"
        )


# ---------------------------------------------------------------------------- changes


def new_deployment(name: str, model: str, version: int) -> Deployment:
    """A deployment answered by one champion version."""
    champion = Arm(ArmRole.CHAMPION.value, model, version, ArmRole.CHAMPION, WEIGHT_TOTAL)
    return validate_deployment(Deployment(name, (champion,)))


def with_canary(deployment: Deployment, model: str, version: int, weight: float) -> Deployment:
    """Put ``model/version`` on ``weight`` percent as the canary (replacing any canary or
    challengers); the champion takes the rest."""
    _check_share(weight, "weight")
    if (model, version) == (deployment.champion.model, deployment.champion.version):
        raise InvalidArgumentError(
            f"{model}/{version} is already the champion of deployment {deployment.name!r}",
            field="version",
        )
    champion = replace(deployment.champion, weight=WEIGHT_TOTAL - weight)
    canary = Arm(ArmRole.CANARY.value, model, version, ArmRole.CANARY, weight)
    return _rebuild(deployment, [champion, canary, *deployment.shadow_arms])


def with_ab(
    deployment: Deployment,
    arms: Sequence[tuple[str, int, float]],
    sticky: Sticky | None,
) -> Deployment:
    """Split live traffic between ``(model, version, weight)`` arms: the arm with the
    champion's version stays champion (else the first listed becomes it), the others are
    challengers. Shadows are kept."""
    if len(arms) < 2:
        raise InvalidArgumentError("an A/B split needs at least two arms", field="arms")
    refs = [(model, version) for model, version, _ in arms]
    repeated = sorted({f"{m}/{v}" for m, v in refs if refs.count((m, v)) > 1})
    if repeated:
        raise InvalidArgumentError(
            f"an A/B split lists {', '.join(repeated)} more than once", field="arms"
        )
    current = deployment.champion
    champion_at = next(
        (i for i, (m, v, _) in enumerate(arms) if (m, v) == (current.model, current.version)), 0
    )
    live: list[Arm] = []
    for index, (model, version, weight) in enumerate(arms):
        _check_share(weight, "weight")
        role = ArmRole.CHAMPION if index == champion_at else ArmRole.CHALLENGER
        live.append(Arm(role.value, model, version, role, weight))
    rebuilt = _rebuild(deployment, [*live, *deployment.shadow_arms])
    return validate_deployment(replace(rebuilt, sticky=sticky))


def with_shadow(deployment: Deployment, model: str, version: int, sample: float) -> Deployment:
    """Copy ``sample`` of the requests to ``model/version`` (replacing a shadow of the same
    version, keeping other shadows)."""
    kept = [a for a in deployment.shadow_arms if (a.model, a.version) != (model, version)]
    shadow = Arm(ArmRole.SHADOW.value, model, version, ArmRole.SHADOW, 0.0, sample)
    return _rebuild(deployment, [*deployment.live_arms, *kept, shadow])


def without_arm(deployment: Deployment, name: str) -> Deployment:
    """Remove a candidate or shadow arm; its weight goes back to the champion."""
    arm = deployment.arm(name)
    if arm.role is ArmRole.CHAMPION:
        raise InvalidArgumentError(
            f"the champion of deployment {deployment.name!r} cannot be removed: promote "
            "another arm, or delete the deployment",
            field="arm",
        )
    champion = replace(deployment.champion, weight=deployment.champion.weight + arm.weight)
    rest = [a for a in deployment.arms if a.name not in (name, champion.name)]
    return _rebuild(deployment, [champion, *rest])


def with_weight(deployment: Deployment, name: str, weight: float) -> Deployment:
    """Set a live arm's weight; the champion takes up the difference (or, when the arm is
    the champion and there is one other live arm, that arm does)."""
    _check_share(weight, "weight")
    arm = deployment.arm(name)
    if not arm.live:
        raise InvalidArgumentError(
            f"arm {name!r} is a shadow: it has a sample share, not a weight", field="arm"
        )
    others = [a for a in deployment.live_arms if a.name != name]
    if arm.role is ArmRole.CHAMPION:
        if not others:
            raise InvalidArgumentError(
                f"the champion is the only live arm of deployment {deployment.name!r}: it "
                "takes all the traffic (add a canary or an A/B split first)",
                field="arm",
            )
        if len(others) != 1:
            raise InvalidArgumentError(
                "set the weights of the other arms instead: the champion takes the rest",
                field="arm",
            )
        balance = others[0]
    else:
        balance = deployment.champion
    rest = sum(a.weight for a in others if a.name != balance.name)
    remainder = WEIGHT_TOTAL - weight - rest
    if remainder < -_TOLERANCE:
        raise InvalidArgumentError(
            f"weight {weight:g} for {name!r} leaves {remainder:g} for {balance.name!r}: "
            "the live weights must add up to 100",
            field="weight",
        )
    weights = {name: weight, balance.name: max(remainder, 0.0)}
    arms = [replace(a, weight=weights[a.name]) if a.name in weights else a for a in deployment.arms]
    return _rebuild(deployment, arms)


def promoted(deployment: Deployment, name: str | None = None) -> Deployment:
    """The candidate (the only one, or ``name``) becomes the champion on 100% and the other
    candidates leave; the old champion is remembered for ``rolled_back``."""
    candidates = deployment.candidates
    if name is not None:
        chosen = deployment.arm(name)
        if chosen.role is ArmRole.CHAMPION:
            raise InvalidArgumentError(f"arm {name!r} is already the champion", field="arm")
    elif len(candidates) == 1:
        chosen = candidates[0]
    elif not candidates:
        raise InvalidArgumentError(
            f"deployment {deployment.name!r} has no candidate to promote (add one with "
            "`deploy canary` or `deploy ab`)",
            field="arm",
        )
    else:
        names = ", ".join(a.name for a in candidates)
        raise InvalidArgumentError(
            f"deployment {deployment.name!r} has several candidates ({names}): name one",
            field="arm",
        )
    old = deployment.champion
    champion = Arm(ArmRole.CHAMPION.value, chosen.model, chosen.version, ArmRole.CHAMPION, 100.0)
    shadows = [
        a for a in deployment.shadow_arms if (a.model, a.version) != (chosen.model, chosen.version)
    ]
    rebuilt = _rebuild(deployment, [champion, *shadows])
    return replace(rebuilt, previous_champion=(old.model, old.version), sticky=None)


def rolled_back(deployment: Deployment) -> Deployment:
    """Back to the last good champion: drop the candidates when there are any (the
    champion was never replaced), else restore the champion the last promotion replaced."""
    if deployment.candidates:
        champion = replace(deployment.champion, weight=WEIGHT_TOTAL)
        rebuilt = _rebuild(deployment, [champion, *deployment.shadow_arms])
        return replace(rebuilt, sticky=None)
    if deployment.previous_champion is None:
        raise InvalidArgumentError(
            f"deployment {deployment.name!r} has nothing to roll back to: no candidate arm "
            "and no earlier champion",
            field="deployment",
        )
    model, version = deployment.previous_champion
    champion = Arm(ArmRole.CHAMPION.value, model, version, ArmRole.CHAMPION, WEIGHT_TOTAL)
    rebuilt = _rebuild(deployment, [champion, *deployment.shadow_arms])
    return replace(rebuilt, previous_champion=None)


def _check_share(weight: float, field: str) -> None:
    valid = isinstance(weight, int | float) and not isinstance(weight, bool)
    if not (valid and 0.0 <= weight <= WEIGHT_TOTAL):
        raise InvalidArgumentError(f"{field} {weight!r} is not between 0 and 100", field=field)


def _rebuild(deployment: Deployment, arms: Iterable[Arm]) -> Deployment:
    """The deployment with these arms, named uniquely, validated."""
    return validate_deployment(replace(deployment, arms=_named(list(arms))))


def _named(arms: list[Arm]) -> tuple[Arm, ...]:
    """Name each arm by its role, or ``role-version`` where a role has several arms."""
    counts: dict[ArmRole, int] = {}
    for arm in arms:
        counts[arm.role] = counts.get(arm.role, 0) + 1
    named = []
    for arm in arms:
        name = arm.role.value if counts[arm.role] == 1 else f"{arm.role.value}-{arm.version}"
        named.append(replace(arm, name=name, weight=float(arm.weight), sample=float(arm.sample)))
    return tuple(named)
