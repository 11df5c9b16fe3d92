"""Settings, from ``MODELPORT_*`` environment variables and an optional TOML file.

This is the only module that reads the environment. Everything else receives a
``Settings`` (or values taken from it) from ``bootstrap``.

Precedence, highest first: values passed in code (and CLI options), environment
variables, the config file (``MODELPORT_CONFIG`` or ``--config``), defaults. Nested
settings use ``__`` in variable names (``MODELPORT_SERVE__PORT=9000``) and tables in
the file::

    [serve]
    port = 9000
    workers = 2

    [serve.connections]
    header_timeout_s = 5

    [serve.tls]               # HTTPS; see TlsSettings
    cert = "/etc/modelport/server.pem"
    key = "/etc/modelport/server.key"

    [serve.batching]
    max_batch_size = 32

    [serve.models.churn]      # per served model, overriding serve.batching
    max_wait_ms = 5

    [prediction_log]
    uri = "s3://bucket/predictions"
    retention_days = 14

    [monitor]
    drift_window_s = 3600     # the live drift gauges' window

    [monitor.alerts.churn_accuracy]   # an alert rule; see AlertRule
    model = "churn@production"
    signal = "accuracy"
    comparison = "<"
    threshold = 0.8

    [live_performance]        # the modelport_live_metric gauges
    interval_s = 60
    windows = ["1h", "24h"]

    [rollout]                 # progressive rollouts; see RolloutSettings
    steps = [5, 25, 50, 100]
    interval = "60s"

    [webhooks.ci]             # registry events to a receiver; see WebhookSettings
    url = "https://ci.example.com/hooks/modelport"
    secret_env = "MODELPORT_CI_HOOK_SECRET"
    events = ["model_version.created", "model_version_alias.created"]

    [gates]                   # what a promotion to production must pass
    targets = ["production"]
    latency_budget_ms = 50

    [signing]                 # signed models; see SigningSettings
    trusted_keys = ["signing.pub"]
    require_signed = ["production"]

    [outgoing]                # which hosts webhooks and scrapes may call
    allowed_hosts = ["ci.example.com"]

    [security]                # API keys; see SecuritySettings
    auth = "auto"             # on when the server binds a non-loopback address

    [security.rate_limits]    # token buckets and daily quotas; see RateLimitSettings
    per_key = "100/s"         # counted in Redis when rate_limit_url is set

    [security.rate_limits.models.churn]
    rate = "500/s"
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from modelport.outgoing import SCHEMES, OutgoingPolicy, UrlRefusedError, parse_allowed_host

VersionCheck = Literal["strict", "warn"]


class BatchingSettings(BaseModel):
    """How a served model merges concurrent requests into one call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # 256, not 64: concurrent 64-row requests then share a call, and a tree ensemble
    # answers 128-256 rows for ~25% less per row than 64 (its nodes stay in the cache
    # from one row to the next); a lone request is never held back for company.
    max_batch_size: int = Field(default=256, ge=1, le=65536, description="Rows per model call.")
    max_wait_ms: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="Longest a request waits for others to join its batch (only under load).",
    )
    max_queue: int = Field(
        default=1024, ge=1, description="Requests waiting per model; more get 503 at once."
    )


class ModelServeSettings(BaseModel):
    """Settings of one served model (``[serve.models.NAME]``); unset fields come from
    ``serve`` and ``serve.batching``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_batch_size: int | None = Field(default=None, ge=1, le=65536)
    max_wait_ms: float | None = Field(default=None, ge=0, le=1000)
    max_queue: int | None = Field(default=None, ge=1)
    allow_signature_change: bool | None = Field(
        default=None, description="Switch to new versions that would break current clients."
    )

    def batching(self, defaults: BatchingSettings) -> BatchingSettings:
        """``defaults`` with this model's batching fields applied."""
        fields = self.model_dump(exclude_none=True, exclude={"allow_signature_change"})
        return defaults.model_copy(update=fields)


class ConnectionSettings(BaseModel):
    """Timeouts and limits of each client connection (``[serve.connections]``): a
    client that sends nothing, half a request, or too much cannot hold a connection."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_alive_s: float = Field(
        default=5.0, gt=0, le=3600, description="A kept-alive connection with no request closes."
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Longest a request's header block may take to arrive (from the "
        "connection's opening for its first request); then 408 and the connection closes.",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Longest a request body may stop arriving while the server waits for "
        "it; then 408 and the connection closes.",
    )
    max_headers: int = Field(
        default=100, ge=1, le=10_000, description="Most header fields in a request; more: 431."
    )
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest request line and headers, in bytes; more: 431 (414 for the URL).",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Open connections per worker; beyond, the longest-idle one is closed "
        "(or, when all have requests under way, the new one is answered 503).",
    )


class TlsSettings(BaseModel):
    """TLS on the server's port (``[serve.tls]``): HTTPS with this certificate, and with
    ``client_ca`` client certificates required (mutual TLS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert: Path | None = Field(
        default=None,
        description="PEM certificate chain the server presents (--tls-cert); TLS is on "
        "when it is set.",
    )
    key: Path | None = Field(
        default=None,
        description="PEM private key of the certificate (--tls-key); default: the key is "
        "in the certificate file.",
    )
    client_ca: Path | None = Field(
        default=None,
        description="PEM CA certificate(s) (--tls-client-ca): every client must present a "
        "certificate they signed (mutual TLS).",
    )
    min_version: Literal["1.2", "1.3"] = Field(
        default="1.2", description="Oldest TLS version accepted."
    )

    @model_validator(mode="after")
    def _needs_cert(self) -> TlsSettings:
        if self.cert is None and (self.key is not None or self.client_ca is not None):
            raise ValueError("tls.key and tls.client_ca need tls.cert (--tls-cert)")
        return self

    @property
    def enabled(self) -> bool:
        """Whether the server speaks HTTPS."""
        return self.cert is not None


def _proxy_address(value: str) -> str:
    """An address or network a trusted proxy connects from, or ``*``."""
    text = value.strip()
    if text == "*":
        return text
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address or network (10.0.0.5, 10.0.0.0/8, ::1) or '*'"
        ) from None


def _comma_separated(value: Any) -> Any:
    return [part for part in value.split(",") if part.strip()] if isinstance(value, str) else value


class ServeSettings(BaseModel):
    """The inference server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="Address to bind.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port to bind (0: any free one).")
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes sharing the port.")
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    models: dict[str, ModelServeSettings] = Field(
        default_factory=dict, description="Settings per served model name."
    )
    accelerate: bool = Field(
        default=True, description="Serve a package's verified ONNX graph when it has one."
    )
    request_timeout_s: float = Field(
        default=60.0, gt=0, description="Deadline of each request; clients may only shorten it."
    )
    drain_timeout_s: float = Field(
        default=30.0, ge=0, description="On SIGTERM, how long in-flight requests may finish."
    )
    drain_delay_s: float = Field(
        default=0.0,
        ge=0,
        le=300,
        description="On SIGTERM, keep accepting and serving this long after readiness turns "
        "503, so that load balancers stop routing here first (a few seconds behind a "
        "Kubernetes Service).",
    )
    poll_interval_s: float = Field(
        default=2.0,
        gt=0,
        description="How often served aliases (for a new version) and deployments (for a new "
        "revision) are checked.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest request body, decompressed."
    )
    max_upload_bytes: int = Field(
        default=8 * 1024 * 1024 * 1024,
        ge=1024,
        description="Largest package the control plane accepts in one registration upload.",
    )
    max_elements: int = Field(
        default=16 * 1024 * 1024, ge=1, description="Most tensor elements in one request."
    )
    allow_non_finite: bool = Field(
        default=False, description="Accept NaN/Inf in float inputs not declared nullable."
    )
    allow_signature_change: bool = Field(
        default=False,
        description="Switch to a new version of a followed alias even when its inputs, "
        "outputs or their types would break current clients (refused by default).",
    )
    access_log: bool = Field(default=False, description="Log every request (JSON, one line).")
    connections: ConnectionSettings = Field(default_factory=ConnectionSettings)
    spare_worker: bool = Field(
        default=True,
        description="Keep one worker process started ahead (about 35 MB), so that a worker "
        "that dies is replaced without a process start.",
    )
    shadow_process: bool = Field(
        default=True,
        description="Answer shadow arms' copies in a process of each worker's own, at idle "
        "priority, so that a shadow only ever uses CPU the live arms leave free (copies "
        "beyond what it keeps up with are dropped and counted); false answers them in the "
        "worker's event loop, beside the caller's requests.",
    )
    shadow_busy_limit: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="The shadow process pauses (its copies wait, then are dropped and "
        "counted) while the rest of the machine keeps more than this share of all cores "
        "busy (from /proc/stat); 1 lets it use every idle moment.",
    )
    max_requests_per_connection: int = Field(
        default=100,
        ge=1,
        description="With several workers, close a keep-alive connection after this many "
        "requests so that the next one may land on another worker.",
    )
    tls: TlsSettings = Field(default_factory=TlsSettings)
    behind_proxy: bool = Field(
        default=False,
        description="A TLS-terminating proxy forwards the requests: take the client's "
        "address and scheme from X-Forwarded-For and X-Forwarded-Proto when they come from "
        "forwarded_allow_ips.",
    )
    forwarded_allow_ips: Annotated[
        list[Annotated[str, AfterValidator(_proxy_address)]],
        BeforeValidator(_comma_separated),
    ] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="With behind_proxy, the proxies' addresses or networks whose "
        "X-Forwarded-* headers are trusted ('*': any; only when nothing else can reach "
        "the port).",
    )

    def batching_for(self, model: str) -> BatchingSettings:
        """The batching settings of one served model."""
        override = self.models.get(model)
        return self.batching if override is None else override.batching(self.batching)

    def allows_signature_change(self, model: str) -> bool:
        """Whether a swap of ``model`` may break current clients."""
        override = self.models.get(model)
        if override is None or override.allow_signature_change is None:
            return self.allow_signature_change
        return override.allow_signature_change


class PredictionLogSettings(BaseModel):
    """The prediction log: where rows go, how often they are flushed, how long they stay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True, description="Log every answered request of the serving server."
    )
    uri: str | None = Field(
        default=None,
        description=(
            "A path or fsspec URI (s3://...) that all replicas share; default home/predictions."
        ),
    )
    flush_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds between writes; a killed process loses at most this much.",
    )
    flush_rows: int = Field(
        default=10_000, ge=1, description="Write as soon as this many rows are waiting."
    )
    max_queue_rows: int = Field(
        default=100_000,
        ge=1,
        description="Rows waiting to be written beyond which new ones are dropped and counted.",
    )
    retention_days: int = Field(
        default=30, ge=1, description="Days of rows kept; older days are deleted."
    )
    sample_rate: float = Field(
        default=1.0, ge=0, le=1, description="Share of rows logged (1: every row)."
    )
    columns: list[str] | None = Field(
        default=None, description="Input columns logged; default all of them."
    )
    maintenance_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds between the server's compaction and retention passes.",
    )
    spool: bool = Field(
        default=True,
        description=(
            "Serving workers spool rows to local files that a converter process writes at "
            "idle priority (false: each worker converts and writes in a thread of its own)."
        ),
    )
    spool_dir: str | None = Field(
        default=None,
        description="A local directory for the spool files; default home/spool/predictions.",
    )
    spool_busy_limit: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description=(
            "The converter pauses while the rest of the machine keeps more than this share "
            "of all cores busy (from /proc/stat), up to spool_max_lag_s; 1: never pauses."
        ),
    )
    spool_max_lag_s: float = Field(
        default=30.0,
        gt=0,
        description="Seconds the converter pauses at most: then it converts, busy or not.",
    )
    spool_max_mb: float = Field(
        default=1024.0,
        gt=0,
        description=(
            "Megabytes of spooled, not yet converted rows per worker beyond which new rows "
            "are dropped and counted."
        ),
    )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """``30s``, ``5m``, ``1h``, ``7d``, ``2w`` (or a number of seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"{value!r} is not a duration: write a number and a unit (ms, s, m, h, d, w), "
            "e.g. '30s', '15m', '1h', '7d'"
        )
    return timedelta(seconds=float(match[1]) * _DURATION_UNITS[match[2]])


def format_duration(value: timedelta) -> str:
    """A duration the way the config writes it: ``1h``, ``90s``, ``7d``."""
    seconds = value.total_seconds()
    if seconds == 0:
        return "0s"
    for unit in ("w", "d", "h", "m", "s"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    milliseconds = seconds * 1000
    if milliseconds == int(milliseconds):
        return f"{int(milliseconds)}ms"
    return f"{seconds:.6f}".rstrip("0") + "s"


# Written back the way it is read ("1h", not "PT1H"): workers receive the settings as JSON.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]

# What an alert rule can watch. Log signals come from the prediction log's status and
# latency columns; drift from the package's reference statistics; live metrics and
# label coverage from the labels joined to the log; drops from the servers' counter.
LOG_SIGNALS = ("volume", "error_rate", "p50_latency", "p99_latency")
DRIFT_SIGNALS = ("dataset_drift_share", "feature_drift")
LIVE_METRICS = (
    "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "mae", "rmse", "r2",
)  # fmt: skip
ALERT_SIGNALS = (*LOG_SIGNALS, *DRIFT_SIGNALS, *LIVE_METRICS, "label_coverage",
                 "prediction_log_drops")  # fmt: skip
AlertSignal = Literal[
    "volume", "error_rate", "p50_latency", "p99_latency", "dataset_drift_share",
    "feature_drift", "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "mae",
    "rmse", "r2", "label_coverage", "prediction_log_drops",
]  # fmt: skip
Comparison = Literal[">", ">=", "<", "<="]
_RULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_LITERAL_KEY_REFUSED = (
    "a literal secret is not accepted in the config file: put it in an environment "
    'variable and name that variable with secret_env = "NAME"'
)


def _http_url(url: str) -> str:
    if not re.match(r"^https?://[^\s/]+", url):
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return url


class _SignedDelivery(BaseModel):
    """An HTTP delivery: the body is signed with the secret named by ``secret_env``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: None = Field(default=None, exclude=True, description="Refused: use secret_env.")
    secret_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding the HMAC-SHA256 key of the signature header.",
    )
    timeout: Duration = Field(default=timedelta(seconds=10), description="Per attempt.")
    retries: int = Field(default=3, ge=0, le=10, description="Attempts after the first.")
    backoff: Duration = Field(
        default=timedelta(seconds=1), description="Wait before the first retry; doubles after."
    )

    @model_validator(mode="before")
    @classmethod
    def _hide_literal_secret(cls, data: Any) -> Any:
        # The value is replaced before validation so that no error message shows it.
        if isinstance(data, dict) and data.get("secret") is not None:
            return {**data, "secret": "<hidden>"}
        return data

    @field_validator("secret", mode="before")
    @classmethod
    def _refuse_literal_secret(cls, value: Any) -> None:
        if value is not None:
            raise ValueError(_LITERAL_KEY_REFUSED)

    def secret_value(self) -> str | None:
        """The key from the environment; None when ``secret_env`` is unset or empty."""
        return os.environ.get(self.secret_env) or None if self.secret_env else None


class WebhookAction(_SignedDelivery):
    """POST the alert as JSON to ``url``, signed, with retries and back-off."""

    type: Literal["webhook"]
    url: Annotated[str, BeforeValidator(_http_url)]
    send_resolved: bool = Field(default=True, description="Also post when the alert resolves.")


class CommandAction(BaseModel):
    """Run a program with the alert in MODELPORT_ALERT_* variables and as JSON on stdin."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["command"]
    run: list[str] = Field(min_length=1, description="The program and its arguments (no shell).")
    timeout: Duration = Field(default=timedelta(seconds=60))
    send_resolved: bool = Field(default=False, description="Also run when the alert resolves.")


class RetrainAction(_SignedDelivery):
    """Export the window's inputs and labels to Parquet and hand the file to a program
    (``run``) or a webhook (``url``)."""

    type: Literal["retrain"]
    run: list[str] | None = Field(default=None, min_length=1)
    url: Annotated[str, BeforeValidator(_http_url)] | None = None
    run_timeout: Duration = Field(default=timedelta(hours=1), description="For ``run``.")

    @model_validator(mode="after")
    def _one_target(self) -> RetrainAction:
        if (self.run is None) == (self.url is None):
            raise ValueError('a retrain action needs exactly one of run = [...] or url = "..."')
        return self


AlertAction = Annotated[WebhookAction | CommandAction | RetrainAction, Field(discriminator="type")]


class AlertRule(BaseModel):
    """One alert rule (``[monitor.alerts.NAME]``): fire when ``signal`` over the last
    ``window`` compares to ``threshold`` for ``for`` in a row, with at least
    ``min_samples`` rows behind the value."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )

    model: str = Field(min_length=1, description="churn@production, churn/3 or churn (all).")
    signal: AlertSignal
    feature: str | None = Field(default=None, description="The feature of feature_drift.")
    comparison: Comparison
    threshold: float
    window: Duration = Field(default=timedelta(hours=1), description="Rows of this long ago.")
    min_samples: int = Field(default=1, ge=0, description="Fewer rows: no decision.")
    for_: Duration = Field(
        default=timedelta(0), alias="for", description="How long the condition holds first."
    )
    cooldown: Duration = Field(
        default=timedelta(hours=1), description="Least time between two notifications."
    )
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels (severity).")
    actions: list[AlertAction] = Field(default_factory=list)

    @model_validator(mode="after")
    def _feature_for_feature_drift(self) -> AlertRule:
        if self.signal == "feature_drift" and not self.feature:
            raise ValueError('signal feature_drift needs feature = "<input column>"')
        if self.signal != "feature_drift" and self.feature is not None:
            raise ValueError(f"feature is only for signal feature_drift, not {self.signal}")
        if self.window <= timedelta(0):
            raise ValueError("window must be longer than 0")
        return self


class MonitorSettings(BaseModel):
    """Monitoring of served models (``[monitor]``): live drift gauges, and the alert
    rules with who evaluates them and how often."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    live_drift: bool = Field(
        default=True,
        description="Keep streaming histograms per served version and export drift gauges.",
    )
    drift_window_s: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds of traffic the live drift gauges cover (sliding by a tenth).",
    )
    drift_min_rows: int = Field(
        default=100, ge=1, description="Rows a window needs before its drift is exported."
    )

    interval: Duration = Field(
        default=timedelta(seconds=30), description="Time between two evaluations of every rule."
    )
    metrics_urls: list[Annotated[str, BeforeValidator(_http_url)]] = Field(
        default_factory=list,
        description="/metrics URLs of the serving replicas, for prediction_log_drops.",
    )
    retrain_dir: str | None = Field(
        default=None, description="Where retraining exports go; default home/retrain."
    )
    alerts: dict[str, AlertRule] = Field(default_factory=dict, description="Rules by name.")

    @model_validator(mode="after")
    def _rule_names(self) -> MonitorSettings:
        for name in self.alerts:
            if not _RULE_NAME.match(name):
                raise ValueError(
                    f"alert rule name {name!r}: use letters, digits, '_', '.' or '-', "
                    "starting with a letter or '_' (at most 128 characters)"
                )
        return self


# The registry's events (MLflow 3's webhook names where they overlap; a stage move is an
# alias move) and modelport's own; ``[webhooks.NAME] events`` picks from these.
RegistryEvent = Literal[
    "registered_model.created", "model_version.created", "model_version_tag.set",
    "model_version_tag.deleted", "model_version_alias.created", "model_version_alias.deleted",
    "deployment.changed", "rollout.step_decided",
]  # fmt: skip
REGISTRY_EVENTS: tuple[RegistryEvent, ...] = get_args(RegistryEvent)


class WebhookSettings(_SignedDelivery):
    """A receiver of registry events (``[webhooks.NAME]``): each event it subscribes to is
    POSTed to ``url`` as signed JSON, with retries and back-off."""

    url: Annotated[str, BeforeValidator(_http_url)]
    events: list[RegistryEvent] = Field(
        default_factory=lambda: list(REGISTRY_EVENTS),
        min_length=1,
        description="The events to send; default all of them.",
    )

    def wants(self, event: str) -> bool:
        """Whether this receiver subscribes to ``event``."""
        return event in self.events


class LivePerformanceSettings(BaseModel):
    """The live performance gauges the server exports (``[live_performance]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        description="Compute modelport_live_metric and modelport_label_coverage in the "
        "background of one worker.",
    )
    interval_s: float = Field(
        default=60.0, ge=1, le=86400, description="Seconds between two computations."
    )
    windows: list[Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*[smhdwSMHDW]\s*$")]] = Field(
        default_factory=lambda: ["1h", "24h"],
        min_length=1,
        description="Windows back from now, as durations (30m, 1h, 24h, 7d).",
    )


class RolloutWebhook(_SignedDelivery):
    """Where each rollout decision is POSTed (``[[rollout.webhooks]]``): signed, retried,
    like an alert rule's webhook action."""

    url: Annotated[str, BeforeValidator(_http_url)]


class RolloutSettings(BaseModel):
    """Progressive rollouts (``[rollout]``): the plan ``deploy rollout`` uses for what its
    options leave out, and the controller's own settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[float] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0],
        min_length=1,
        description="The canary's weight at each step; reaching 100 is the promotion.",
    )
    interval: Duration = Field(
        default=timedelta(seconds=60), description="Time between two checks of the canary."
    )
    bake: Duration | None = Field(
        default=None, description="Least time a step runs before it may advance; default interval."
    )
    min_requests: int = Field(
        default=100, ge=1, description="Requests each arm needs in a step before it is judged."
    )
    max_failures: int = Field(
        default=2, ge=1, description="Failed checks that roll the canary back."
    )
    max_wait: Duration | None = Field(
        default=None,
        description="Longest a step waits for enough data; then the rollout stops as "
        "inconclusive for a person to resume or abort. Default: the bake time and ten "
        "intervals, at least 30m.",
    )
    max_error_rate_increase: float = Field(
        default=0.01, ge=0, le=1, description="Error-rate points the canary may add (0.01: 1)."
    )
    max_latency_increase: float = Field(
        default=0.2, ge=0, description="Share by which the canary's p99 may exceed the champion's."
    )
    latency_slack_ms: float = Field(
        default=5.0, ge=0, description="p99 differences below this many ms never fail."
    )
    max_accuracy_drop: float = Field(
        default=0.02, ge=0, le=1, description="Live-accuracy points the canary may lose."
    )
    min_labels: int = Field(
        default=50, ge=1, description="Labelled rows per arm before accuracy is judged."
    )
    require_accuracy: bool = Field(
        default=False, description="Advance only once accuracy can be judged (labels arrived)."
    )
    max_drift_share_increase: float = Field(
        default=0.2, ge=0, le=1, description="Share of drifted columns the canary may add."
    )
    lease_ttl: Duration = Field(
        default=timedelta(seconds=30),
        description="How long a controller's lease on a rollout lasts unless renewed; "
        "another controller takes over after it lapses.",
    )
    poll_interval: Duration = Field(
        default=timedelta(seconds=2), description="How often the controller looks for work."
    )
    webhooks: list[RolloutWebhook] = Field(
        default_factory=list, description="Where every rollout decision is POSTed."
    )


GateName = Literal["artifacts", "signature", "holdout", "latency", "shadow"]
_DEFAULT_GATES: tuple[GateName, ...] = ("artifacts", "signature", "holdout", "latency", "shadow")
HoldoutMetric = Literal["auto", "accuracy", "precision", "recall", "f1", "mae", "rmse", "r2"]


class GatesSettings(BaseModel):
    """The promotion gates (``[gates]``): which stages or aliases they guard, which gates
    run, and their thresholds (``modelport.rollout.gates``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: list[str] = Field(
        default_factory=lambda: ["production"],
        description="Stages or aliases whose promotions run the gates (empty: none).",
    )
    checks: list[GateName] = Field(
        default_factory=lambda: list(_DEFAULT_GATES),
        description="The gates that run, in order.",
    )
    holdout: str | None = Field(
        default=None,
        description="A labelled CSV or Parquet file the holdout gate scores both versions on "
        "when a promotion gives none (--holdout); without one that gate is skipped.",
    )
    label: str | None = Field(default=None, description="The label column of the holdout file.")
    metric: HoldoutMetric = Field(
        default="auto",
        description="The holdout metric: auto is accuracy for classifiers, rmse for regressors.",
    )
    max_metric_loss: float = Field(
        default=0.0,
        ge=0,
        description="How much worse than production the candidate's holdout metric may be "
        "(in the metric's units: 0.01 is one point of accuracy).",
    )
    latency_budget_ms: float | None = Field(
        default=None,
        gt=0,
        description="The candidate's p99 latency budget on the replay; unset: the latency "
        "gate is skipped.",
    )
    latency_replay: Literal["example", "log"] = Field(
        default="example",
        description="What the latency gate replays: the package's input example, or the "
        "requests logged for the production version (the example when none were logged).",
    )
    latency_repeats: int = Field(
        default=200, ge=10, le=100_000, description="Calls timed by the latency gate."
    )
    min_shadow_agreement: float = Field(
        default=0.95,
        ge=0,
        le=1,
        description="The least agreement between a shadow and the champion to promote it.",
    )
    shadow_window: str = Field(
        default="7d",
        pattern=r"^\s*\d+(\.\d+)?\s*[smhdwSMHDW]\s*$",
        description="How far back the shadow gate reads the shadow's rows (30m, 24h, 7d).",
    )
    shadow_min_rows: int = Field(
        default=100,
        ge=1,
        description="Rows both the shadow and the champion answered that the shadow gate "
        "needs to judge (fewer: skipped).",
    )


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h|d)\s*$")
_RATE_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_rate(value: Any) -> tuple[float, float]:
    """``100/s``, ``6000/m``, ``1000/h``, ``50000/d`` as (requests, period in seconds)."""
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None or float(match[1]) <= 0:
        raise ValueError(
            f"{value!r} is not a rate: write a number of requests above 0, '/', and a "
            "unit (s, m, h, d), e.g. '100/s', '6000/m', '1000/h'"
        )
    return float(match[1]), _RATE_PERIODS[match[2]]


def _rate_text(value: Any) -> str:
    parse_rate(value)
    return str(value).replace(" ", "")


RateText = Annotated[str, BeforeValidator(_rate_text)]
"""A rate as the config writes it (``"100/s"``), checked when the settings load."""


class ModelRateLimit(BaseModel):
    """The rate limit of one model (``[security.rate_limits.models.NAME]``): a token
    bucket every request naming the model takes from, whoever sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: RateText = Field(description="Requests per period: '500/s', '30000/m'.")
    burst: int | None = Field(
        default=None, ge=1, description="Bucket size; default the rate's count (500 for 500/s)."
    )


RedisFailure = Literal["local", "open", "closed"]


class RateLimitSettings(BaseModel):
    """Rate limits and quotas (``[security.rate_limits]``): token buckets per API key and
    per model, and a request quota per key per UTC day. A key's own ``rate_limit`` and
    ``daily_quota`` (``modelport key create``) override ``per_key`` and ``daily_quota``.

    Counted per server process unless ``rate_limit_url`` names a Redis server shared by
    every worker and replica."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_key: RateText | None = Field(
        default=None, description="Default rate of each API key: '100/s'; unset: none."
    )
    burst: int | None = Field(
        default=None, ge=1, description="Bucket size of per_key; default the rate's count."
    )
    daily_quota: int | None = Field(
        default=None, ge=1, description="Default requests per key per UTC day; unset: none."
    )
    models: dict[str, ModelRateLimit] = Field(
        default_factory=dict, description="Rate limits per model name."
    )
    redis_failure: RedisFailure = Field(
        default="local",
        description="When the Redis server cannot be reached: 'local' counts in this "
        "process meanwhile, 'open' admits every request, 'closed' answers 503.",
    )
    redis_timeout_ms: float = Field(
        default=100.0, gt=0, le=10_000, description="Longest wait for Redis per request."
    )
    redis_retry_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="After a Redis failure, how long redis_failure applies before Redis is "
        "tried again (requests meanwhile do not wait for it).",
    )
    redis_prefix: str = Field(
        default="modelport:rl:", min_length=1, description="Prefix of the Redis keys."
    )

    @property
    def enabled(self) -> bool:
        """Whether any default limit is set (keys may still carry their own)."""
        return bool(self.per_key or self.daily_quota or self.models)


class SigningSettings(BaseModel):
    """Signed models (``[signing]``): the public keys trusted to sign versions, and the
    stages or aliases that take signed versions only (``modelport.package.signing``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trusted_keys: list[Path] = Field(
        default_factory=list,
        description="PEM public keys (EC P-256/384/521) whose signatures are trusted.",
    )
    require_signed: list[str] = Field(
        default_factory=list,
        description="Stages or aliases (e.g. production) that take only versions signed by a "
        "trusted key, on promotion and when a server loads them; '*' means every version "
        "and package a server loads.",
    )

    @model_validator(mode="after")
    def _keys_for_policy(self) -> SigningSettings:
        if self.require_signed and not self.trusted_keys:
            raise ValueError(
                "[signing] require_signed needs trusted_keys: list the public keys whose "
                "signatures count (modelport keys generate --out signing writes signing.pub)"
            )
        return self


class OutgoingSettings(BaseModel):
    """Which hosts modelport may call (``[outgoing]``): webhooks, alert and retrain
    webhooks, rollout webhooks, ``monitor.metrics_urls`` and http(s) artifact stores
    (the server-side request forgery guard, ``modelport.outgoing``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="When set, the only hosts called: names, *.suffix wildcards, addresses or "
        "networks; a listed entry may be internal.",
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Allow loopback and private-network addresses (not link-local ones).",
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _entries(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            parse_allowed_host(entry)
        return entries

    def policy(self) -> OutgoingPolicy:
        """The policy these settings describe."""
        return OutgoingPolicy(tuple(self.allowed_hosts), self.allow_private_networks)


AuthMode = Literal["auto", "on", "off"]


class SecuritySettings(BaseModel):
    """API keys on the server (``[security]``): when they are required and how often
    the workers re-read them, and the rate limits (``[security.rate_limits]``)
    (``modelport.security``, docs/security.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auth: AuthMode = Field(
        default="auto",
        description="Require API keys: 'auto' when the server binds a non-loopback "
        "address, 'on' always, 'off' never.",
    )
    metrics_public: bool = Field(
        default=False, description="Serve /metrics without a key (else it needs 'metrics')."
    )
    keys_refresh_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Seconds between the workers' re-reads of the keys: a revoked key "
        "stops working within this.",
    )
    insecure_no_auth: bool = Field(
        default=False,
        description="Serve without keys even on a non-loopback address (--insecure-no-auth); "
        "logged loudly and shown in GET /api.",
    )
    rate_limits: RateLimitSettings = Field(
        default_factory=RateLimitSettings,
        description="Rate limits per key and per model, daily quotas per key.",
    )

    def auth_required(self, host: str) -> bool:
        """Whether a server binding ``host`` requires API keys."""
        if self.insecure_no_auth or self.auth == "off":
            return False
        return self.auth == "on" or not is_loopback(host)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address ("localhost" included; "" and names are not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, or "" for every address: reachable from elsewhere
        return False


class _TomlFileSource(PydanticBaseSettingsSource):
    """Settings from the TOML file named by ``config_file`` (init or environment)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns the whole file

    def __call__(self) -> dict[str, Any]:
        if self._path is None:
            return {}
        try:
            data = tomllib.loads(self._path.expanduser().read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read the config file {self._path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"the config file {self._path} is not valid TOML: {exc}") from None
        unknown = sorted(set(data) - set(self.settings_cls.model_fields))
        if unknown:
            raise ValueError(f"unknown settings in {self._path}: {', '.join(unknown)}")
        return data


def _default_home() -> Path:
    return Path("~/.modelport").expanduser()


class Settings(BaseSettings):
    """modelport's configuration.

    Every field can be set with an environment variable of the same name in upper
    case with the ``MODELPORT_`` prefix, e.g. ``MODELPORT_DATABASE_URL``.
    """

    model_config = SettingsConfigDict(
        env_prefix="MODELPORT_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    config: Path | None = Field(
        default=None, description="A TOML file with settings (MODELPORT_CONFIG or --config)."
    )

    home: Path = Field(
        default_factory=_default_home,
        description="Directory for the embedded defaults: SQLite database, artifacts, cache.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the metadata database; default sqlite under home. "
            "PostgreSQL: postgresql+psycopg://user@host/db. 'memory://' keeps it in process."
        ),
    )
    artifacts_uri: str | None = Field(
        default=None,
        description=(
            "Where artifacts live: a path, file://, s3://..., or memory://; default home/artifacts."
        ),
    )
    user: str | None = Field(
        default=None, description="Name recorded in the audit trail; default the login name."
    )
    version_check: VersionCheck = Field(
        default="strict",
        description=(
            "At load, a different major or minor version of the model's framework is an error "
            "('strict') or a warning ('warn')."
        ),
    )

    registry_url: str | None = Field(
        default=None,
        description=(
            "A control plane (modelport ui) to use instead of opening the database: "
            "https://host:port. The SDK and the CLI then talk to it over HTTP."
        ),
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="The API key sent to registry_url as 'Authorization: Bearer <key>'.",
    )
    registry_ca_bundle: Path | None = Field(
        default=None,
        description="PEM CA certificates that verify registry_url's TLS certificate "
        "(default: the system's).",
    )
    registry_timeout_s: float = Field(
        default=300.0, gt=0, description="Seconds to wait for one answer from registry_url."
    )

    @field_validator("registry_url")
    @classmethod
    def _registry_url(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                "registry_url must be an http:// or https:// URL such as "
                "https://registry.example.com:5000"
            )
        return url.strip().rstrip("/")

    debug: bool = Field(
        default=False, description="Show full tracebacks for unexpected errors in the CLI."
    )
    serve: ServeSettings = Field(default_factory=ServeSettings)
    prediction_log: PredictionLogSettings = Field(default_factory=PredictionLogSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    live_performance: LivePerformanceSettings = Field(default_factory=LivePerformanceSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    webhooks: dict[str, WebhookSettings] = Field(
        default_factory=dict, description="Receivers of registry events, by name."
    )

    @field_validator("webhooks")
    @classmethod
    def _webhook_names(cls, hooks: dict[str, WebhookSettings]) -> dict[str, WebhookSettings]:
        for name in hooks:
            if not _RULE_NAME.match(name):
                raise ValueError(
                    f"webhook name {name!r}: use letters, digits, '_', '.' or '-', "
                    "starting with a letter or '_' (at most 128 characters)"
                )
        return hooks

    gates: GatesSettings = Field(default_factory=GatesSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    rate_limit_url: str | None = Field(
        default=None,
        description="A Redis server (redis://host:6379/0, rediss://, unix://) that keeps the "
        "rate limits and quotas of every worker and replica, exactly; default: each server "
        "process counts its own (approximate).",
    )

    @field_validator("rate_limit_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                "rate_limit_url must be a Redis URL: redis://host:6379/0, rediss://... or "
                "unix:///path/redis.sock"
            )
        return url

    signing: SigningSettings = Field(default_factory=SigningSettings)
    outgoing: OutgoingSettings = Field(default_factory=OutgoingSettings)

    @model_validator(mode="after")
    def _outgoing_urls(self) -> Settings:
        policy = self.outgoing.policy()
        for where, url in configured_urls(self):
            try:
                policy.check_url(url)
            except UrlRefusedError as exc:
                raise ValueError(f"{where}: {exc}") from None
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Code and CLI values, then the environment, then the config file."""
        config = _config_path(init_settings, env_settings)
        return init_settings, env_settings, _TomlFileSource(settings_cls, config)

    @property
    def resolved_home(self) -> Path:
        """``home`` with ``~`` expanded."""
        return self.home.expanduser()

    @property
    def resolved_database_url(self) -> str:
        """The metadata database URL, defaulting to SQLite under ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_home / 'modelport.db'}"

    @property
    def resolved_artifacts_uri(self) -> str:
        """The artifact store location, defaulting to ``home/artifacts``."""
        if self.artifacts_uri:
            return self.artifacts_uri
        return str(self.resolved_home / "artifacts")

    @property
    def resolved_prediction_log_uri(self) -> str:
        """Where the prediction log lives, defaulting to ``home/predictions``."""
        if self.prediction_log.uri:
            return self.prediction_log.uri
        return str(self.resolved_home / "predictions")

    @property
    def resolved_prediction_spool_dir(self) -> Path:
        """Where serving workers spool their rows, defaulting to ``home/spool/predictions``."""
        if self.prediction_log.spool_dir:
            return Path(self.prediction_log.spool_dir).expanduser()
        return self.resolved_home / "spool" / "predictions"

    @property
    def resolved_retrain_dir(self) -> str:
        """Where retraining exports go, defaulting to ``home/retrain``."""
        return self.monitor.retrain_dir or str(self.resolved_home / "retrain")

    @property
    def cache_dir(self) -> Path:
        """Local cache of artifacts fetched from remote stores."""
        return self.resolved_home / "cache"

    @property
    def actor(self) -> str:
        """Who the audit trail records for changes made with these settings."""
        if self.user:
            return self.user
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary container uid
            return "unknown"


def configured_urls(settings: Settings) -> list[tuple[str, str]]:
    """Every URL ``settings`` make modelport call, with the setting it comes from."""
    urls = [(f"webhooks.{name}.url", hook.url) for name, hook in settings.webhooks.items()]
    for name, rule in settings.monitor.alerts.items():
        for index, action in enumerate(rule.actions):
            if isinstance(action, WebhookAction | RetrainAction) and action.url is not None:
                urls.append((f"monitor.alerts.{name}.actions[{index}].url", action.url))
    urls.extend(("monitor.metrics_urls", url) for url in settings.monitor.metrics_urls)
    urls.extend(
        (f"rollout.webhooks[{index}].url", hook.url)
        for index, hook in enumerate(settings.rollout.webhooks)
    )
    for where, uri in (("artifacts_uri", settings.artifacts_uri),
                       ("prediction_log.uri", settings.prediction_log.uri)):  # fmt: skip
        if uri and urlsplit(uri).scheme.lower() in SCHEMES:
            urls.append((where, uri))
    return urls


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment with ``extra`` on top: for the programs alert
    actions run (this module is the only reader of the environment)."""
    return {**os.environ, **extra}


def prometheus_multiprocess_dir() -> str | None:
    """Where prometheus_client keeps per-process metric files (set for server workers)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _config_path(
    init_settings: PydanticBaseSettingsSource, env_settings: PydanticBaseSettingsSource
) -> Path | None:
    if isinstance(init_settings, InitSettingsSource) and init_settings.init_kwargs.get("config"):
        return Path(init_settings.init_kwargs["config"])
    value = env_settings().get("config")
    return Path(value) if value else None
