"""How a batch is laid out: the name of a tabular model's one matrix input, and which
shapes fit a declared one.

A table whose columns are all numeric travels as one 2-D array of shape
``[rows, n_columns]`` (columns in signature order) named ``MATRIX_INPUT``: what V2
clients send and the server binds (``serving.interface``), and the input of the ONNX
graph a package stores for it (``package.acceleration``). One name for both sides, so
that a batch the server binds is what the graph takes.
"""

from __future__ import annotations

MATRIX_INPUT = "input"


def shape_fits(declared: tuple[int, ...], actual: tuple[int, ...]) -> bool:
    """Whether an array of shape ``actual`` fits the ``declared`` one, where -1 is any
    size: same rank, and every fixed dimension equal."""
    return len(declared) == len(actual) and all(
        want in (-1, got) for want, got in zip(declared, actual, strict=True)
    )
