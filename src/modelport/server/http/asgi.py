"""Small raw-ASGI helpers for the hot routes: headers, bounded bodies, responses.

The inference routes are plain ASGI callables rather than framework endpoints: on
a path that runs thousands of times a second, building request objects costs more
than the model call of a fast model.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from modelport.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = Iterable[tuple[bytes, bytes]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON = b"application/json"
OCTET_STREAM = b"application/octet-stream"
REQUEST_ID_KEY = "modelport.request_id"


def header(scope: Scope, name: bytes) -> str | None:
    """The value of request header ``name`` (lower case), decoded as latin-1."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, decompressed per Content-Encoding, refusing more than ``limit``
    bytes before or after decompression (413)."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequestError("the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return _decompressed(body, header(scope, b"content-encoding"), limit)


def _decompressed(body: bytes, encoding: str | None, limit: int) -> bytes:
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return body
    kind = encoding.strip().lower()
    if kind not in ("gzip", "deflate"):
        raise UnsupportedMediaTypeError(
            f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none"
        )
    decompressor = zlib.decompressobj(wbits=31 if kind == "gzip" else 15)
    try:
        data = decompressor.decompress(body, limit + 1)  # stops early: a bomb costs nothing
    except zlib.error as exc:
        raise InvalidRequestError(f"the body is not valid {kind} data: {exc}") from None
    if len(data) > limit or decompressor.unconsumed_tail:
        raise _too_large(limit, decompressed=True)
    return data


def _too_large(limit: int, *, decompressed: bool = False) -> PayloadTooLargeError:
    what = "decompressed body" if decompressed else "body"
    return PayloadTooLargeError(f"the request {what} is larger than the limit of {limit} bytes")


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    headers: Headers = (),
) -> None:
    """Send a complete response."""
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
