"""Keeping a caller on one arm: weighted rendezvous hashing of a key from the request.

The key is a request header (``header:X-User-ID``) or the first row's value of an input
column (``field:customer_id``). Every arm scores the key, ``weight / -ln(u)`` with ``u``
a hash of key and arm name in (0, 1), and the highest score wins: the same key always
gets the same arm (in every worker and replica: the hash is not Python's salted one),
each arm gets its weight's share of the keys, and changing weights moves only the keys
the change requires: when an arm's weight grows, keys move to it and to no other arm;
when it shrinks, only keys it had move away. A re-shuffle (``hash % n``) would move
most keys at any change.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from modelport.domain.deployments import Sticky, StickyKind
from modelport.serving.binding import NamedInputs, TableInputs
from modelport.serving.target import InferenceRequest

_SCALE = float(2**64)


def unit_hash(key: str, arm: str) -> float:
    """A stable hash of ``key`` and ``arm`` in the open interval (0, 1)."""
    digest = hashlib.blake2b(f"{arm}\x00{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / _SCALE


def rendezvous(key: str, arms: Sequence[tuple[str, float]]) -> int:
    """The index of the ``(name, weight)`` arm that ``key`` belongs to (weight 0: never,
    unless every weight is 0)."""
    best, best_score = 0, -1.0
    for index, (name, weight) in enumerate(arms):
        if weight <= 0:
            continue
        score = weight / -math.log(unit_hash(key, name))
        if score > best_score:
            best, best_score = index, score
    return best


def sticky_key(sticky: Sticky, request: InferenceRequest) -> str | None:
    """The request's value of the sticky key (None: the request does not carry it)."""
    if sticky.kind is StickyKind.HEADER:
        return _header(request.headers, sticky.key.lower().encode("latin-1"))
    return _field(request, sticky.key)


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _field(request: InferenceRequest, name: str) -> str | None:
    inputs = request.inputs
    value: object = None
    if isinstance(inputs, TableInputs):
        columns = list(inputs.columns or ())
        if name not in columns or inputs.values.size == 0:
            return None
        values = inputs.values
        value = values[0, columns.index(name)] if values.ndim == 2 else values[0]
    elif isinstance(inputs, NamedInputs):
        tensor = inputs.tensors.get(name)
        if tensor is None or tensor.array.size == 0:
            return None
        value = tensor.array.reshape(-1)[0]
    else:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)
