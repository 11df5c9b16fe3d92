"""JSON logs: one object per line, for the server's stderr.

Every line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and
``message``, then the fields bound to the handler (``pid``, ``worker``), then the
record's ``extra`` fields (``request_id``, ``model``, ...), then ``exception`` with the
traceback when there is one. Values JSON cannot encode are written with ``str()``.
The output is ASCII, so a line never contains a character a log shipper would read as
a line break.

Nothing is configured at import; ``install_json_logging`` is called by the worker's
``main`` and ``json_handler`` by the supervisor.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has, and what formatting adds; everything else is `extra`.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName", "color_message"}  # uvicorn adds color_message


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object on one line."""
        data: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in self._fields.items():
            data.setdefault(key, value)
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                data.setdefault(key, value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str)


def _timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def json_handler(
    stream: TextIO | None = None, fields: Mapping[str, Any] | None = None
) -> logging.Handler:
    """A handler writing JSON lines to ``stream`` (default: stderr at the time of the call)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(fields))
    return handler


def install_json_logging(
    level: int = logging.INFO,
    *,
    stream: TextIO | None = None,
    fields: Mapping[str, Any] | None = None,
) -> logging.Handler:
    """Make the root logger write JSON lines to ``stream``; for a process of our own.

    Replaces the root logger's handlers, so call it only where the process is ours
    (the server worker), never from a library function.
    """
    handler = json_handler(stream, fields)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler
