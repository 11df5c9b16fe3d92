"""Error -> HTTP status, and the error bodies each dialect's clients parse.

This is the only place statuses are decided. V2 and modelport routes answer
``{"error": "..."}`` (tritonclient and the KServe SDK read exactly that key); MLflow's
routes answer ``{"error_code": ..., "message": ...}`` with MLflow's codes. No body
ever carries a stack trace.

On MLflow's routes a message also starts as MLflow 3's scoring server starts it for the
same failure (``mlflow/pyfunc/scoring_server/__init__.py``, ``mlflow/pyfunc/
__init__.py``), so that clients matching MLflow's text keep working. Where our status
differs from MLflow's, ours is kept on purpose: a fault in the model's own code is 500
(MLflow answers 400 and blames the input), and the wrong content type is 415 with a
JSON body (MLflow's is text/plain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from modelport import errors

# Most specific class first: the first match decides.
_STATUS: tuple[tuple[type[errors.ModelportError], int, str], ...] = (
    (errors.PayloadTooLargeError, 413, "RESOURCE_EXHAUSTED"),
    (errors.UnsupportedMediaTypeError, 415, "BAD_REQUEST"),
    # MLflow answers schema enforcement and params failures with INVALID_PARAMETER_VALUE.
    (errors.InvalidInputError, 400, "INVALID_PARAMETER_VALUE"),
    (errors.InvalidArgumentError, 400, "BAD_REQUEST"),
    (errors.NotFoundError, 404, "RESOURCE_DOES_NOT_EXIST"),
    (errors.ConflictError, 409, "RESOURCE_CONFLICT"),
    # The request is fine; the version's state is not (its package predates the drift
    # statistics): 409 like other state conflicts, resolved by `modelport version stats`
    # and then the same request again. 422 would blame the request's content.
    (errors.MissingStatisticsError, 409, "RESOURCE_CONFLICT"),
    # A package the registry cannot take as sent (an upload whose files do not match their
    # digests, a malformed manifest, a pickle outside the allow-list), or a stored one
    # changed behind its back: 422, the request was understood and the package is unusable.
    (errors.IntegrityError, 422, "INVALID_PARAMETER_VALUE"),
    (errors.CorruptPackageError, 422, "INVALID_PARAMETER_VALUE"),
    (errors.UnsafeModelError, 422, "INVALID_PARAMETER_VALUE"),
    (errors.UnavailableError, 503, "TEMPORARILY_UNAVAILABLE"),
    (errors.AuthenticationError, 401, "UNAUTHENTICATED"),
    (errors.PermissionDeniedError, 403, "PERMISSION_DENIED"),
    # 429 is for quotas only; an overloaded server answers 503 (reliability reference A5).
    (errors.RateLimitedError, 429, "REQUEST_LIMIT_EXCEEDED"),
    (errors.DeadlineExceededError, 504, "DEADLINE_EXCEEDED"),
    (errors.UnsupportedOperationError, 501, "NOT_IMPLEMENTED"),
    (errors.ModelExecutionError, 500, "INTERNAL_ERROR"),
)
INTERNAL = 500
# How MLflow 3 begins its message for these failures (most specific class first). It
# echoes the data and the schema after "schema of data"; we do not (size, and reflection).
_MLFLOW_PREFIX: tuple[tuple[type[errors.ModelportError], str], ...] = (
    (errors.InvalidParameterError, ""),
    (errors.InvalidInputError, "Failed to enforce schema of data. Error: "),
    (
        errors.ModelExecutionError,
        "Encountered an unexpected error while evaluating the model. Verify that the "
        "serialized input Dataframe is compatible with the model for inference. Error: ",
    ),
    (errors.DeadlineExceededError, "Request processing time exceeded limit. "),
)


@dataclass(frozen=True)
class ErrorAnswer:
    """What to send for an error: status, JSON body and extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


def status_of(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and MLflow error code for an exception."""
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            return status, code
    return INTERNAL, "INTERNAL_ERROR"


def _message(exc: BaseException) -> str:
    if isinstance(exc, errors.ModelportError):
        return exc.message
    return "internal server error"  # details go to the log, never to the client


def error_headers(exc: BaseException) -> tuple[tuple[bytes, bytes], ...]:
    """The headers an error's answer carries: ``Retry-After`` (503, 429) and
    ``WWW-Authenticate`` (401)."""
    if isinstance(exc, errors.UnavailableError | errors.RateLimitedError):
        return ((b"retry-after", str(exc.retry_after).encode()),)
    if isinstance(exc, errors.AuthenticationError):
        return ((b"www-authenticate", b'Bearer realm="modelport"'),)
    return ()


def v2_error(exc: BaseException) -> ErrorAnswer:
    """``{"error": message}``, for V2 and modelport routes."""
    status, _ = status_of(exc)
    return ErrorAnswer(status, orjson.dumps({"error": _message(exc)}), error_headers(exc))


def mlflow_error(exc: BaseException) -> ErrorAnswer:
    """``{"error_code": CODE, "message": message}``, for MLflow's routes."""
    status, code = status_of(exc)
    body = orjson.dumps({"error_code": code, "message": _mlflow_message(exc)})
    return ErrorAnswer(status, body, error_headers(exc))


def _mlflow_message(exc: BaseException) -> str:
    message = _message(exc)
    prefix = next((text for cls, text in _MLFLOW_PREFIX if isinstance(exc, cls)), "")
    return prefix + message


def error_document(exc: errors.ModelportError) -> dict[str, Any]:
    """The registry routes' error body: ``{"error": message, "code": CODE, "kind":
    ClassName, ...to_dict() fields, "fields": {every attribute}}``. ``kind`` and
    ``fields`` let the HTTP client raise the same class with the same attributes."""
    details = exc.to_dict()
    document: dict[str, Any] = {"error": details.pop("message"), **details}
    document["kind"] = type(exc).__name__
    document["fields"] = {
        key: value for key, value in vars(exc).items() if key != "message" and value is not None
    }
    return document
