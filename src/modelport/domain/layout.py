"""How a batch of a tabular model is laid out: the name of its one matrix input.

A table whose columns are all numeric travels as one 2-D array of shape
``[rows, n_columns]`` (columns in signature order) named ``MATRIX_INPUT``: what V2
clients send and the server binds (``serving.interface``), and the input of the ONNX
graph a package stores for it (``package.acceleration``). One name for both sides, so
that a batch the server binds is what the graph takes.
"""

from __future__ import annotations

MATRIX_INPUT = "input"
