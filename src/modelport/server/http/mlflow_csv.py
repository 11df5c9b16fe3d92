"""MLflow's ``text/csv`` scoring bodies: a header row naming the columns, then the rows.

Each column is int64, float64 or bool when every non-empty cell reads as one, else text
(an empty cell is missing). A leading byte-order mark and blank lines are skipped, and a
column of ``True``/``False`` cells becomes bool, as ``pandas.read_csv`` does. Stricter
than pandas: rows must all have the header's width, and a header with no rows is refused.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from modelport.errors import InvalidRequestError, PayloadTooLargeError

_CSV_ERROR = (
    "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
    "CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method"
)
_CSV_INT = re.compile(r"[+-]?[0-9]+")
_CSV_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE
)
_CSV_BOOL = re.compile(r"True|TRUE|true|False|FALSE|false")
_INT64 = np.iinfo(np.int64)


def utf8_text(body: bytes, encoding: str) -> str:
    """The body as text; a 400 in MLflow's words that says where it is not ``encoding``."""
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as error:
        raise InvalidRequestError(
            "Invalid input. Ensure that input is a valid UTF-8 encoded string. "
            f"Error: '{error.reason} at byte {error.start}'"
        ) from None


def decode_csv(body: bytes, max_elements: int) -> tuple[tuple[str, ...], np.ndarray]:
    """The column names and the values (rows x columns) of a CSV body."""
    text = utf8_text(body, "utf-8-sig")  # also drops a leading byte-order mark
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as error:
        raise InvalidRequestError(f"{_CSV_ERROR}. Error: '{error}'") from None
    if len(rows) < 2:
        problem = "No columns to parse from file" if not rows else "no data rows after the header"
        raise InvalidRequestError(f"{_CSV_ERROR}. Error: '{problem}'")
    header, data = rows[0], rows[1:]
    bad = next((i for i, row in enumerate(data, 2) if len(row) != len(header)), None)
    if bad is not None:
        raise InvalidRequestError(
            f"{_CSV_ERROR}. Error: 'row {bad} has {len(rows[bad - 1])} fields, "
            f"the header has {len(header)}'"
        )
    if len(data) * len(header) > max_elements:
        raise PayloadTooLargeError(
            f"the request holds {len(data) * len(header)} values; the limit is {max_elements}"
        )
    columns = [_csv_column(cells) for cells in zip(*data, strict=True)]
    return tuple(header), _csv_values(columns, len(data))


def _csv_column(cells: Iterable[str]) -> tuple[str, list[Any]]:
    """A column's kind and its values, None where a cell is empty."""
    cells = list(cells)
    present = [cell for cell in cells if cell]
    if all(map(_CSV_INT.fullmatch, present)):
        ints = [int(cell) if cell else None for cell in cells]
        numbers = [v for v in ints if v is not None]
        if not numbers or (_INT64.min <= min(numbers) and max(numbers) <= _INT64.max):
            return "int", ints
    if all(map(_CSV_FLOAT.fullmatch, present)):
        return "float", [float(cell) if cell else None for cell in cells]
    if all(map(_CSV_BOOL.fullmatch, present)):
        return "bool", [cell.lower() == "true" if cell else None for cell in cells]
    return "str", [cell or None for cell in cells]


def _csv_values(columns: list[tuple[str, list[Any]]], rows: int) -> np.ndarray:
    """One 2-D array: numeric when every column is (missing -> NaN), bool when every column
    is and none is missing, else object holding Python values (missing -> None)."""
    kinds = {kind for kind, _ in columns}
    missing = any(None in values for _, values in columns)
    if kinds <= {"int", "float"}:
        dtype = np.int64 if kinds == {"int"} and not missing else np.float64
        parts = [[np.nan if v is None else v for v in values] for _, values in columns]
        return np.array(parts, dtype=dtype).T.copy()
    if kinds == {"bool"} and not missing:
        return np.array([values for _, values in columns], dtype=np.bool_).T.copy()
    table = np.empty((rows, len(columns)), dtype=object)
    for j, (_, values) in enumerate(columns):
        table[:, j] = values
    return table
