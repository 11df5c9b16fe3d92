"""The alert rules as Prometheus alerting rules, for teams that alert through Alertmanager.

Each rule becomes one alerting rule over the metrics the servers export. They match
the built-in evaluator's rules with these differences, written into each rule's
``annotations.differences``:

- Prometheus knows versions only by number, so a rule on an alias
  (``churn@production``) watches every version of the model.
- Latency comes from ``modelport_request_duration_seconds``, whose histogram has no
  version label, so latency rules watch every version too.
- Drift gauges describe each server's own live window, not the rule's window.
- Live metrics and label coverage are gauges per ``window`` label: the rule's window
  must be one the servers export (any spelling: ``1d``, ``24h`` and ``1440m`` match).
  ``min_samples`` on them has no metric to check (labeled rows are not exported) and is
  left out.

A rule whose signal has no metric is skipped and listed with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from modelport.config import LIVE_METRICS, AlertRule, format_duration
from modelport.domain.refs import parse_ref_or_name

GROUP = "modelport"
_ALIAS = "a rule on an alias watches every version of the model (Prometheus has no aliases)"


@dataclass(frozen=True)
class Skipped:
    """A rule with no Prometheus equivalent, and why."""

    rule: str
    reason: str


def prometheus_rules(rules: Mapping[str, AlertRule]) -> tuple[dict[str, Any], list[Skipped]]:
    """The rules file (``groups``/``rules``) and the rules left out of it."""
    written: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    for name in sorted(rules):
        rule = rules[name]
        built = _expression(rule)
        if isinstance(built, Skipped):
            skipped.append(Skipped(name, built.reason))
            continue
        expr, differences = built
        written.append(_rule(name, rule, expr, differences))
    return {"groups": [{"name": GROUP, "rules": written}]}, skipped


def alert_name(rule: str) -> str:
    """The rule's name as a Prometheus alert name (letters, digits, ``_`` and ``:``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_:]", "_", rule)
    return cleaned if re.match(r"[A-Za-z_:]", cleaned) else f"_{cleaned}"


def _rule(name: str, rule: AlertRule, expr: str, differences: list[str]) -> dict[str, Any]:
    ref = parse_ref_or_name(rule.model)
    labels = {"severity": "warning", **rule.labels}
    labels.update(model=ref.name, signal=rule.signal, modelport_rule=name)
    annotations = {
        "summary": f"{name}: {rule.signal} {rule.comparison} {rule.threshold:g} on {rule.model}",
        "description": rule.description or describe_condition(rule),
    }
    if differences:
        annotations["differences"] = "; ".join(differences)
    entry: dict[str, Any] = {"alert": alert_name(name), "expr": expr}
    if rule.for_.total_seconds() > 0:
        entry["for"] = format_duration(rule.for_)
    entry.update(labels=labels, annotations=annotations)
    return entry


def describe_condition(rule: AlertRule) -> str:
    """The rule's condition in words, with Prometheus's value templated in."""
    signal = f"{rule.signal}[{rule.feature}]" if rule.feature else rule.signal
    window = format_duration(rule.window)
    return f"{signal} is {{{{ $value }}}} ({rule.comparison} {rule.threshold:g}) over {window}"


def _expression(rule: AlertRule) -> tuple[str, list[str]] | Skipped:
    ref = parse_ref_or_name(rule.model)
    differences = [_ALIAS] if ref.alias is not None else []
    model = f'model="{ref.name}"'
    selector = model + (f',version="{ref.version}"' if ref.version is not None else "")
    window = format_duration(rule.window)
    signal = rule.signal
    requests = f"sum(increase(modelport_requests_total{{{selector}}}[{window}]))"
    if signal == "volume":
        value = f"sum(increase(modelport_predictions_total{{{selector}}}[{window}]))"
        return _compared(value, rule), differences
    if signal == "error_rate":
        errors = f'sum(increase(modelport_requests_total{{{selector},code=~"5.."}}[{window}]))'
        value = f"({errors} / {requests})"
        return _with_minimum(_compared(value, rule), requests, rule), differences
    if signal in ("p50_latency", "p99_latency"):
        quantile = "0.5" if signal == "p50_latency" else "0.99"
        buckets = f"rate(modelport_request_duration_seconds_bucket{{{model}}}[{window}])"
        value = f"histogram_quantile({quantile}, sum by (le) ({buckets}))"
        note = "latency is the server's request duration histogram, which has no version label"
        return _with_minimum(_compared(value, rule), requests, rule), [*differences, note]
    if signal == "prediction_log_drops":
        value = f"sum(increase(modelport_prediction_log_dropped_total{{{model}}}[{window}]))"
        return _compared(value, rule), differences
    return _gauge_expression(rule, selector, differences)


def _gauge_expression(
    rule: AlertRule, selector: str, differences: list[str]
) -> tuple[str, list[str]] | Skipped:
    window = format_duration(rule.window)
    live = f"the servers must export a window of {window} ([live_performance] windows)"
    spelled = _spellings(rule.window)
    if rule.signal == "dataset_drift_share":
        value = f"max(modelport_dataset_drift_share{{{selector}}})"
        return _compared(value, rule), [*differences, "drift is the servers' live window"]
    if rule.signal == "feature_drift":
        value = f'max(modelport_feature_drift{{{selector},feature="{rule.feature}"}})'
        return _compared(value, rule), [*differences, "drift is the servers' live window"]
    if rule.signal == "label_coverage":
        value = f'max(modelport_label_coverage{{{selector},window=~"{spelled}"}})'
        return _compared(value, rule), [*differences, live]
    if rule.signal in LIVE_METRICS:
        metric = f'metric="{rule.signal}",window=~"{spelled}"'
        value = f"max(modelport_live_metric{{{selector},{metric}}})"
        notes = [*differences, live]
        if rule.min_samples > 1:
            notes.append(f"min_samples={rule.min_samples} is not checked (no labeled-rows metric)")
        return _compared(value, rule), notes
    return Skipped("", f"signal {rule.signal} has no Prometheus metric")


def _spellings(window: timedelta) -> str:
    """Every way the servers' ``window`` label may write this duration (``1d|24h|1440m``)."""
    seconds = window.total_seconds()
    units = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    found = [f"{int(seconds // size)}{unit}" for unit, size in units
             if seconds >= size and seconds % size == 0]  # fmt: skip
    return "|".join(found) or format_duration(window)


def _compared(value: str, rule: AlertRule) -> str:
    return f"{value} {rule.comparison} {rule.threshold:g}"


def _with_minimum(condition: str, requests: str, rule: AlertRule) -> str:
    if rule.min_samples <= 1:
        return condition
    return f"({condition}) and on() ({requests} >= {rule.min_samples})"
