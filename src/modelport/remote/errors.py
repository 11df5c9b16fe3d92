"""Error answers of a modelport server back to the exception that caused them.

The registry routes answer ``{"error": ..., "code": ..., "kind": ClassName, "fields":
{...}}`` (``server.http.errors.error_document``): the client raises the same class with
the same attributes, as if the registry had raised it in this process. Answers without
``kind`` (older routes, proxies) fall back on ``code``, then on the status.
"""

from __future__ import annotations

from typing import Any

from modelport import errors

_BY_STATUS: dict[int, type[errors.ModelportError]] = {
    400: errors.InvalidArgumentError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    415: errors.UnsupportedMediaTypeError,
    429: errors.RateLimitedError,
    501: errors.UnsupportedOperationError,
    503: errors.UnavailableError,
    504: errors.DeadlineExceededError,
}


def _classes() -> list[type[errors.ModelportError]]:
    found: list[type[errors.ModelportError]] = []
    pending: list[type[errors.ModelportError]] = [errors.ModelportError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__ == errors.__name__]


def error_class(kind: str | None, code: str | None, status: int) -> type[errors.ModelportError]:
    """The class an answer names (by class name, else by code, else by status)."""
    classes = _classes()
    for cls in classes:
        if kind is not None and cls.__name__ == kind:
            return cls
    for cls in classes:
        if code is not None and cls.code == code:
            return cls
    return _BY_STATUS.get(status, errors.StoreUnavailableError if status >= 500 else
                          errors.ModelportError)  # fmt: skip


def error_from_answer(status: int, body: Any, url: str) -> errors.ModelportError:
    """The exception a server's error answer stands for."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        text = f"{body!r}"[:200] if body is not None else "no body"
        return errors.StoreUnavailableError(
            f"the registry at {url} answered {status} without a modelport error ({text})"
        )
    cls = error_class(body.get("kind"), body.get("code"), status)
    fields = body.get("fields")
    if not isinstance(fields, dict):  # no "fields": the to_dict() keys the answer carries
        fields = {k: v for k, v in body.items() if k in ("model", "version", "field")}
    return rebuild(cls, body["error"], fields)


def rebuild(
    cls: type[errors.ModelportError], message: str, fields: dict[str, Any]
) -> errors.ModelportError:
    """An instance of ``cls`` with ``message`` and ``fields`` as its attributes, without
    calling its ``__init__`` (whose keywords differ by class), as unpickling does."""
    error = cls.__new__(cls, message)
    error.args = (message,)
    state: dict[str, Any] = {"model": None, "version": None, "field": None}
    state.update({key: tuple(v) if isinstance(v, list) else v for key, v in fields.items()})
    state["message"] = message
    error.__dict__.update(state)
    return error
