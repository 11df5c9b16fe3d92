"""The bodies of modelport's REST answers, as pydantic models: the OpenAPI document is
generated from them (``server.http.openapi``) and the tests validate answers with it.

Responses never carry storage locations or other internal fields (OWASP API3): only
what a client needs to call the model and to know what it is calling.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class TensorInfo(BaseModel):
    """One input or output as V2 clients see it."""

    name: str
    datatype: str
    shape: list[int]


class Staleness(BaseModel):
    """Why a model serves another version than the one its reference points at."""

    reason: Literal["swap_refused", "load_failed", "registry_unreachable", "reference_missing"]
    detail: str = Field(description="What happened, in words (the refused change, the error).")
    version: int | None = Field(description="The version wanted and not served (null: unknown).")
    since: str = Field(description="When it began (ISO 8601, UTC).")


class Acceleration(BaseModel):
    """What registration found when it tried to accelerate the served version."""

    status: Literal["verified", "unavailable"] = Field(
        description="verified: an ONNX graph matched the model on the sample and may serve "
        "it; unavailable: the native model serves, and reason says why."
    )
    reason: str | None = Field(description="Why no graph was kept (null when verified).")
    rows_checked: int = Field(description="Sample rows the graph was checked on.")
    max_abs_diff: float | None = Field(description="Largest difference from the native model.")
    tolerance: float | None = Field(description="The largest difference allowed.")


class ServedArm(BaseModel):
    """One arm of a served deployment."""

    name: str = Field(description="The arm's name (X-Modelport-Arm): its role, or role-version.")
    model: str
    version: int
    role: Literal["champion", "canary", "challenger", "shadow"]
    weight: float = Field(description="Percentage of live traffic (0 for a shadow).")
    sample: float = Field(description="Share of requests copied to a shadow (1 for live arms).")


class ServedDeployment(BaseModel):
    """The revision of a registry deployment a server answers with."""

    name: str
    revision: int
    sticky: str | None = Field(description="header:NAME or field:NAME (null: split by weight).")
    arms: list[ServedArm]


class ModelSummary(BaseModel):
    """A served model: where it comes from, what is served and whether that is current.
    For a deployment, version and runtime are the champion's."""

    name: str
    source: str = Field(description="Registry reference, 'deployment NAME' or 'package'.")
    version: int | None = Field(description="Registry version being served (null: package).")
    wanted_version: int | None = Field(
        description="The version the reference pointed at when last checked (null: package, "
        "or not known yet)."
    )
    stale: Staleness | None = Field(
        description="Why the served version is not the wanted one (null: it is)."
    )
    state: Literal["ready", "loading", "failed"]
    runtime: str | None = Field(description="What runs the model: onnxruntime, sklearn, ...")
    acceleration: Acceleration | None = Field(
        description="What registration found when it tried to accelerate the served version "
        "(null: not tried: registered without it, or a flavor without an ONNX conversion)."
    )
    error: str | None = Field(description="Why the model is not ready, when it is not.")
    deployment: ServedDeployment | None = Field(
        default=None, description="The deployment served under this name (null: one model)."
    )


class ModelDetail(ModelSummary):
    """A served model with its inputs, outputs and signature."""

    flavor: str | None
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    signature: dict[str, Any] | None


class RegistryState(BaseModel):
    """Whether the server can follow the registry."""

    followed: bool = Field(description="Whether any served model follows an alias or latest.")
    reachable: bool | None = Field(description="The last check reached it (null: not followed).")
    unreachable_since: str | None = Field(description="Since when it cannot be reached.")
    error: str | None = Field(description="Why it cannot be reached.")


class ModelsResponse(BaseModel):
    """Every served model, and the registry they follow."""

    models: list[ModelSummary]
    registry: RegistryState


class ColumnDriftInfo(BaseModel):
    """One column's drift test over the window."""

    column: str = Field(description="A feature, prediction or probability.CLASS.")
    method: Literal["ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"]
    score: float = Field(description="A p-value (ks, chisquare, z) or a distance.")
    threshold: float
    drifted: bool


class DriftResponse(BaseModel):
    """Drift of a served version over a window of the prediction log."""

    model: str
    version: str | None
    since: str | None = Field(description="Window start (ISO 8601, UTC).")
    until: str | None = Field(description="Window end (ISO 8601, UTC; null: now).")
    rows: int = Field(description="Logged rows in the window.")
    sampled_rows: int = Field(description="Rows the raw-value tests (ks, wasserstein) read.")
    dataset_drift: bool
    share_drifted: float
    drift_share: float = Field(
        description="The share of drifted columns that makes the dataset drift."
    )
    drifted_columns: int
    columns: list[ColumnDriftInfo]
    untested: list[str] = Field(description="Reference columns the log does not hold.")
    notes: list[str]


class AlertStateBody(BaseModel):
    """A rule's state as of its latest evaluation."""

    rule: str
    model: str
    status: Literal["inactive", "pending", "firing", "resolved"]
    since: str = Field(description="When it entered this status (ISO 8601, UTC).")
    evaluated_at: str
    value: float | None = Field(description="The signal's value (null: nothing to judge).")
    samples: int = Field(description="Rows behind the value.")
    notified_at: str | None = Field(description="When its actions last ran.")


class AlertRuleBody(BaseModel):
    """A rule with its state (null: never evaluated)."""

    name: str
    model: str = Field(description="The model reference the rule watches.")
    configured: bool = Field(description="False for a stored state whose rule was removed.")
    signal: str | None = None
    feature: str | None = None
    comparison: str | None = None
    threshold: float | None = None
    window: str | None = None
    state: AlertStateBody | None


class AlertEventBody(BaseModel):
    """One change of a rule's status."""

    id: int
    rule: str
    model: str
    time: str
    from_: str = Field(alias="from")
    to: str
    value: float | None
    samples: int
    message: str
    details: dict[str, Any]


class AlertDeliveryBody(BaseModel):
    """One attempt of one action (a webhook call, a command run, a retraining hand-off)."""

    id: int
    event_id: int
    rule: str
    time: str
    action: Literal["webhook", "command", "retrain"]
    target: str = Field(description="The URL (without credentials or query) or program.")
    attempt: int
    ok: bool
    code: int | None = Field(description="HTTP status or exit code.")
    error: str | None
    duration_s: float


class AlertsResponse(BaseModel):
    """A model's alert rules, newest transitions and delivery attempts first."""

    model: str | None
    rules: list[AlertRuleBody]
    events: list[AlertEventBody]
    deliveries: list[AlertDeliveryBody]
