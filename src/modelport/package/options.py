"""What a package records besides the model: options of ``build_package`` and the
checks of user-given metrics, parameters and tags. (No heavy imports: the registry
uses these on every change.)"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelport.domain.params import ParamSchema
from modelport.domain.signature import Signature
from modelport.errors import InvalidArgumentError


@dataclass(frozen=True)
class PackageOptions:
    """Everything about a package that does not come from the model itself."""

    sample_input: Any = None
    signature: Signature | None = None
    flavor: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    trust: Sequence[str] = ()
    flavor_options: Mapping[str, Any] = field(default_factory=dict)
    # Store (and later serve) an ONNX graph of the model when it converts and verifies.
    accelerate: bool = True
    # Inference parameters to declare in the signature (not the lineage ``params``).
    inference_params: ParamSchema | None = None
    # Columns that identify rows (``customer_id``): logged and returned, never model inputs.
    id_columns: Sequence[str] = ()


def clean_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metrics as finite floats, or ``InvalidArgumentError`` naming the bad one."""
    cleaned = {}
    for key, value in metrics.items():
        _check_key("metric", key)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"metric {key!r} must be a number, got {value!r}", field=f"metrics.{key}"
            ) from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise InvalidArgumentError(
                f"metric {key!r} must be a finite number, got {value!r}", field=f"metrics.{key}"
            )
        cleaned[key] = number
    return cleaned


def clean_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Parameters as text (numbers and other values are stored as their ``str``)."""
    for key in params:
        _check_key("param", key)
    return {key: str(value) for key, value in params.items()}


def clean_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """Tags as text, or ``InvalidArgumentError`` naming the bad one."""
    for key, value in tags.items():
        _check_key("tag", key)
        if not isinstance(value, str) or len(value) > 5000:
            raise InvalidArgumentError(
                f"tag {key!r} must be text of at most 5000 characters, got {value!r:.40}",
                field=f"tags.{key}",
            )
    return dict(tags)


def _check_key(kind: str, key: Any) -> None:
    if not isinstance(key, str) or not key or len(key) > 250 or not key.isprintable():
        raise InvalidArgumentError(
            f"{kind} names must be printable text of 1-250 characters, got {key!r:.40}",
            field=f"{kind}s",
        )
