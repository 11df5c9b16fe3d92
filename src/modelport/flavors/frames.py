"""Recognizing pandas objects without importing pandas.

Importing pandas costs ~0.3 s; a server answering with an ONNX graph never needs it.
An object can only be a DataFrame if pandas is already loaded, so a check by module
name is exact.
"""

from __future__ import annotations

from typing import Any


def is_frame(value: Any) -> bool:
    """Whether ``value`` is a pandas DataFrame."""
    kind = type(value)
    return kind.__name__ == "DataFrame" and kind.__module__.startswith("pandas")


def is_pandas(value: Any) -> bool:
    """Whether ``value`` is any pandas object (DataFrame, Series, Index, ...)."""
    return type(value).__module__.startswith("pandas")
