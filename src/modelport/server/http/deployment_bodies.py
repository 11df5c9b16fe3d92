"""The JSON bodies of the deployment routes: read, checked field by field, each error
naming the field, what was sent and what is accepted.

Each body mirrors the options of the ``modelport deploy`` command of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelport.errors import InvalidRequestError, UnsupportedMediaTypeError
from modelport.server.http.asgi import Receive, Scope, header, read_body

# route verb -> (required fields, optional fields); every body may carry "reason".
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "create": (("version",), ("model",)),
    "canary": (("version", "weight"), ("model",)),
    "ab": (("arms",), ("sticky", "model")),
    "shadow": (("version", "sample"), ("model",)),
    "weights": (("arm", "weight"), ()),
    "promote": ((), ("arm", "skip_gates")),
    "rollback": ((), ()),
}


async def read_json_body(scope: Scope, receive: Receive, limit: int, verb: str) -> dict[str, Any]:
    """The request's JSON object (``{}`` when the body is empty), with exactly the fields
    ``verb`` takes."""
    content_type = header(scope, b"content-type")
    if content_type is not None and not content_type.lower().startswith("application/json"):
        raise UnsupportedMediaTypeError(
            f"{scope['method']} {scope['path']} takes application/json, not {content_type}"
        )
    raw = await read_body(scope, receive, limit)
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequestError(f"the body is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidRequestError(f"the body must be a JSON object, not {type(data).__name__}")
    _check_fields(data, verb)
    return data


def _check_fields(data: Mapping[str, Any], verb: str) -> None:
    required, optional = FIELDS[verb]
    accepted = (*required, *optional, "reason")
    unknown = sorted(set(data) - set(accepted))
    if unknown:
        raise InvalidRequestError(
            f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}",
            field=unknown[0],
        )
    missing = [name for name in required if data.get(name) is None]
    if missing:
        raise InvalidRequestError(
            f"missing field(s) {', '.join(missing)}; accepted: {', '.join(accepted)}",
            field=missing[0],
        )


def integer(data: Mapping[str, Any], name: str) -> int:
    """A positive whole number (a version)."""
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(
            f"field {name!r} must be a whole number of 1 or more, not {value!r}", field=name
        )
    return value


def number(data: Mapping[str, Any], name: str) -> float:
    """A JSON number (a weight or a sample share; its range is checked by the change)."""
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"field {name!r} must be a number, not {value!r}", field=name)
    return float(value)


def text(data: Mapping[str, Any], name: str) -> str | None:
    """An optional non-empty string."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(
            f"field {name!r} must be a non-empty string, not {value!r}", field=name
        )
    return value


def arms(data: Mapping[str, Any]) -> list[tuple[int, float]]:
    """``[{"version": 3, "weight": 50}, ...]`` or the CLI's ``"3:50,4:50"``."""
    value = data["arms"]
    if isinstance(value, str):
        items: list[Any] = []
        for part in value.split(","):
            version, sep, weight = part.strip().partition(":")
            items.append(
                {"version": _int_or(version), "weight": _float_or(weight)} if sep else part
            )
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    parsed = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"version", "weight"}:
            raise InvalidRequestError(
                f"field 'arms' must list {{'version': N, 'weight': W}} objects (or be "
                f"'3:50,4:50'), not {item!r}",
                field="arms",
            )
        parsed.append((integer(item, "version"), number(item, "weight")))
    return parsed


def _int_or(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def _float_or(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text
