"""Progressive rollouts: what the rollout controller keeps in the registry.

The controller's state (the step it is on, when the step started, the failures so far)
is its own JSON document; the registry stores it per deployment with a revision, so a
restarted controller resumes where it was and two controllers cannot both act on one
step (``MetadataSession.save_rollout`` is a compare-and-set on the revision).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RolloutRecord:
    """The stored state of one deployment's rollout; ``revision`` counts its writes
    (0 until stored)."""

    deployment: str
    state: Mapping[str, Any]
    revision: int
    updated_at: datetime
