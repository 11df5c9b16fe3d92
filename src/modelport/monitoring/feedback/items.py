"""The JSON forms of feedback, as ``POST /api/feedback`` takes them.

A body is one item, a list of items, or ``{"model": ..., "labels": [items]}`` (whose
items may leave out ``model``). An item names its model, its label, and its key in one
of three ways::

    {"model": "churn", "prediction_id": "4f1c...-0", "label": 1}
    {"model": "churn", "customer_id": "c1", "label": 1}        # an id column, by name
    {"model": "churn", "id": {"customer_id": "c1"}, "label": 1}

A malformed item is reported by its index and skipped; the others are still taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelport.errors import InvalidArgumentError, InvalidRequestError
from modelport.monitoring.feedback.store import PREDICTION_ID, Label, check_key_kind

ACCEPTED = (
    'a JSON object {"model": NAME, "prediction_id": ID, "label": VALUE} (or an id column '
    'instead of prediction_id: {"model": NAME, "customer_id": ID, "label": VALUE}, or '
    '{"model": NAME, "id": {"customer_id": ID}, "label": VALUE}), a JSON array of them, '
    'or {"model": NAME, "labels": [items without model]}; a label is a string, number or '
    "boolean"
)
_RESERVED = {"model", "label", "id", PREDICTION_ID}


@dataclass
class ParsedFeedback:
    """The well-formed items, by model, and the errors of the others."""

    labels: dict[str, list[Label]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0


def parse_feedback(body: Any, check_model: Callable[[str], str | None]) -> ParsedFeedback:
    """Sort ``body``'s items into labels per model and per-item errors.

    ``check_model(name)`` returns why a model cannot take labels here, or None.
    A body that is none of the accepted forms raises InvalidRequestError.
    """
    default_model: Any = None
    if isinstance(body, dict) and "labels" in body:
        extra = sorted(set(body) - {"model", "labels"})
        if extra or not isinstance(body["labels"], list):
            raise InvalidRequestError(
                f'a body with \'labels\' must be {{"model": NAME, "labels": [...]}}'
                f"{'; unexpected keys: ' + ', '.join(extra) if extra else ''}; accepted: {ACCEPTED}"
            )
        default_model, items = body.get("model"), body["labels"]
    elif isinstance(body, dict):
        items = [body]
    elif isinstance(body, list):
        items = body
    else:
        raise InvalidRequestError(f"the body is a JSON {type(body).__name__}; accepted: {ACCEPTED}")
    if not items:
        raise InvalidRequestError(f"the body has no labels; accepted: {ACCEPTED}")
    parsed = ParsedFeedback(count=len(items))
    for index, item in enumerate(items):
        try:
            model, label = _item(item, default_model)
            why = check_model(model)
            if why is not None:
                raise InvalidArgumentError(why)
        except InvalidArgumentError as exc:
            parsed.errors.append({"index": index, "error": exc.message})
            continue
        parsed.labels.setdefault(model, []).append(label)
    return parsed


def _item(item: Any, default_model: Any) -> tuple[str, Label]:
    if not isinstance(item, dict):
        raise InvalidArgumentError(f"an item must be a JSON object, got {_kind(item)}")
    model = item.get("model", default_model)
    if not isinstance(model, str) or not model:
        raise InvalidArgumentError("'model' is missing or not a non-empty string")
    if "label" not in item:
        raise InvalidArgumentError("'label' is missing")
    kind, key = _key(item)
    try:
        return model, Label.of(kind, key, item["label"])
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{exc.message} (for {kind}={key!r})") from None


def _key(item: dict[str, Any]) -> tuple[str, Any]:
    columns = sorted(set(item) - _RESERVED)
    given = [name for name in (PREDICTION_ID, "id") if name in item]
    if len(given) + len(columns) != 1:
        found = given + columns
        raise InvalidArgumentError(
            "an item needs exactly one key: prediction_id, an id column (customer_id: ...) "
            f"or id: {{column: value}}; found {', '.join(found) if found else 'none'}"
        )
    if PREDICTION_ID in item:
        return PREDICTION_ID, item[PREDICTION_ID]
    if "id" in item:
        value = item["id"]
        if not isinstance(value, dict) or len(value) != 1:
            raise InvalidArgumentError(
                'id must be an object with one column, e.g. {"customer_id": "c1"}'
            )
        ((column, key),) = value.items()
        return check_key_kind(str(column)), key
    return check_key_kind(columns[0]), item[columns[0]]


def _kind(value: Any) -> str:
    names = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
