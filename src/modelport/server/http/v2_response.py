"""Open Inference Protocol (KServe V2) REST: the inference response, in JSON or with the
binary tensor extension, as each output asks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
import orjson

from modelport.server.http.v2_binary import datatype_of_dtype, encode_output


@dataclass(slots=True)  # not frozen: see serving.target
class EncodedOutput:
    """One output to send: ``binary`` picks the binary extension over JSON ``data``."""

    name: str
    datatype: str
    array: npt.NDArray[Any]
    binary: bool


def encode_response(
    *,
    model_name: str,
    model_version: str | None,
    request_id: str | None,
    outputs: Sequence[EncodedOutput],
    parameters: Mapping[str, str | int | float | bool] | None = None,
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when any output is binary.

    The server sends that length as ``Inference-Header-Content-Length``; None means the
    body is all JSON. ``v2_binary.encode_output`` says how each output is written
    (non-finite floats in JSON, BYTES that are not UTF-8).
    """
    document: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        document["model_version"] = model_version
    if request_id is not None:
        document["id"] = request_id
    if parameters:
        document["parameters"] = parameters
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for output in outputs:
        entry, chunk = encode_output(output.name, output.datatype, output.array, output.binary)
        entries.append(entry)
        if chunk is not None:
            chunks.append(chunk)
    document["outputs"] = entries
    header = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    # An empty binary output still has a (zero-length) chunk: count entries, not bytes.
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def datatype_of(array: npt.NDArray[Any]) -> str:
    """The V2 datatype of a numpy array: object, str and bytes arrays are BYTES."""
    return datatype_of_dtype(array.dtype)
