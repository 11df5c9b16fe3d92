"""Scoring one chunk of rows with a loaded model: the piece every batch engine shares
(one process, Dask partitions, Ray Data batches, Spark's pandas UDF).

A chunk is a pandas DataFrame read from a file. It is checked against the signature by
the same rules as the server's requests (``package.batch_validation``), scored, and
turned into an output table: the kept columns, then the predictions (and the class
probabilities when asked), then the model's name and version.

A chunk that fails (its validation or the model) is split in halves until the rows
that fail are found, so one bad row costs ``O(log n)`` extra model calls, not a call per
row. What happens to them is ``on_error``: ``fail`` raises ``BatchRowError`` naming the
file, row and column; ``skip`` leaves them out of the output; ``null`` keeps them with
empty predictions. Either way they are listed, with their reasons, in ``errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from modelport.domain.signature import NUMERIC_DTYPES, ColumnSchema
from modelport.errors import InvalidArgumentError, InvalidInputError, ModelportError

if TYPE_CHECKING:
    from modelport.package.loaded import LoadedModel

OnError = Literal["fail", "skip", "null"]
ON_ERROR_CHOICES: tuple[OnError, ...] = ("fail", "skip", "null")

PREDICTION = "prediction"
PROBABILITIES = "probabilities"
OUTPUT_CHOICES = (PREDICTION, PROBABILITIES)
MODEL_COLUMN = "model"
VERSION_COLUMN = "model_version"
ERROR_COLUMNS = ("file", "row", "column", "error")


class BatchRowError(InvalidInputError):
    """A row of a batch input the model cannot score (``on_error = "fail"``): names the
    file, the row (counted from 0, in the file) and the column when one is to blame."""

    def __init__(self, message: str, *, file: str, row: int, column: str | None) -> None:
        super().__init__(message, field=column)
        self.file = file
        self.row = row
        self.column = column


@dataclass(frozen=True)
class ScoringOptions:
    """What to put in the output, and what to do with rows that cannot be scored."""

    outputs: tuple[str, ...] = (PREDICTION,)
    keep: tuple[str, ...] | None = None  # None: the signature's id columns
    on_error: OnError = "fail"

    def __post_init__(self) -> None:
        unknown = [o for o in self.outputs if o not in OUTPUT_CHOICES]
        if unknown or not self.outputs:
            said = f"unknown output {unknown[0]!r}" if unknown else "no output asked for"
            raise InvalidArgumentError(
                f"{said}; the outputs are {', '.join(OUTPUT_CHOICES)}", field="outputs"
            )
        if self.on_error not in ON_ERROR_CHOICES:
            raise InvalidArgumentError(
                f"unknown on_error {self.on_error!r}; choose {', '.join(ON_ERROR_CHOICES)}",
                field="on_error",
            )


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk's output rows, and the rows that could not be scored (``ERROR_COLUMNS``)."""

    table: pd.DataFrame
    errors: pd.DataFrame
    rows_in: int

    @property
    def rows_failed(self) -> int:
        return len(self.errors)


@dataclass(frozen=True)
class _Failure:
    position: int  # in the chunk
    column: str | None
    reason: str


class ChunkScorer:
    """Scores chunks with ``model`` (loaded once, reused for every chunk)."""

    def __init__(self, model: LoadedModel, options: ScoringOptions) -> None:
        self.model = model
        self.options = options
        signature = model.signature
        ids = tuple(signature.id_columns) if signature is not None else ()
        self.keep: tuple[str, ...] = ids if options.keep is None else options.keep
        self._proba = PROBABILITIES in options.outputs
        if self._proba and not model.supports_proba:
            raise InvalidArgumentError(
                f"{model.source} gives no class probabilities; ask for the predictions only",
                field="outputs",
            )
        self._classes = getattr(model.predictor, "classes", None)
        version = model.version
        self.model_name = version.name if version is not None else model.source
        self.model_version = version.version if version is not None else None

    def score(
        self, frame: pd.DataFrame, *, file: str = "", first_row: int = 0, from_text: bool = False
    ) -> ScoredChunk:
        """Score ``frame`` (rows ``first_row ...`` of ``file``, for error messages).
        ``from_text``: the frame was read from text (CSV), where one cell that is not a
        number makes the reader take its whole column as text: the numbers in such a
        column are read as numbers again, so that only the rows of the bad cells fail."""
        self._check_kept(frame, file)
        if from_text:
            frame = self._numbers_from_text(frame)
        failures: list[_Failure] = []
        outputs = self._score_rows(frame, np.arange(len(frame)), failures)
        failures.sort(key=lambda failure: failure.position)
        if failures and self.options.on_error == "fail":
            first = failures[0]
            raise BatchRowError(
                f"{file or 'the input'}, row {first_row + first.position}"
                + (f", column {first.column!r}" if first.column else "")
                + f": {first.reason}",
                file=file,
                row=first_row + first.position,
                column=first.column,
            )
        table = self._table(frame, outputs, failures)
        errors = pd.DataFrame(
            {
                "file": [file] * len(failures),
                "row": np.array([first_row + f.position for f in failures], dtype=np.int64),
                "column": [f.column for f in failures],
                "error": [f.reason for f in failures],
            },
            columns=list(ERROR_COLUMNS),
        )
        return ScoredChunk(table=table, errors=errors, rows_in=len(frame))

    def _numbers_from_text(self, frame: pd.DataFrame) -> pd.DataFrame:
        signature = self.model.signature
        inputs = signature.inputs if signature is not None else None
        if not isinstance(inputs, ColumnSchema):
            return frame
        texts = [
            c.name
            for c in inputs.columns
            if c.dtype in NUMERIC_DTYPES
            and c.name in frame.columns
            and not pd.api.types.is_numeric_dtype(frame[c.name].dtype)
            and not pd.api.types.is_bool_dtype(frame[c.name].dtype)
        ]
        if not texts:
            return frame
        frame = frame.copy(deep=False)
        for name in texts:
            given = frame[name]
            numbers = pd.to_numeric(given, errors="coerce")
            if numbers.notna().sum() == given.notna().sum():
                frame[name] = numbers
            else:  # the cells that are not numbers stay as they were: their rows fail
                bad = numbers.isna() & given.notna()
                frame[name] = given.astype(object).where(bad, numbers.astype(object))
        return frame

    def _check_kept(self, frame: pd.DataFrame, file: str) -> None:
        missing = [name for name in self.keep if name not in frame.columns]
        if missing:
            raise InvalidArgumentError(
                f"{file or 'the input'} has no column {missing[0]!r} to keep in the output; "
                f"its columns are {', '.join(map(str, frame.columns))}",
                field="keep",
            )

    def _score_rows(
        self, frame: pd.DataFrame, positions: np.ndarray, failures: list[_Failure]
    ) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Predictions for ``positions`` of ``frame``, as (positions, outputs) pieces;
        failing rows are found by halving and recorded in ``failures``."""
        if not len(positions):  # an empty chunk (a Dask partition may be): nothing to halve
            return []
        try:
            return [(positions, self._predict(frame.iloc[positions]))]
        except ModelportError as exc:
            column, reason = _column_of(exc), str(exc)
        except (ValueError, TypeError, ArithmeticError) as exc:  # the model's own refusal
            column, reason = None, f"the model cannot score this row: {type(exc).__name__}: {exc}"
        if len(positions) == 1:
            failures.append(_Failure(int(positions[0]), column, reason))
            return []
        if self.options.on_error == "fail" and failures:
            return []  # the first failing row is known: no need to look further
        half = len(positions) // 2
        return self._score_rows(frame, positions[:half], failures) + self._score_rows(
            frame, positions[half:], failures
        )

    def _predict(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        if self.model.signature is not None:
            from modelport.package.batch_validation import validate_batch

            checked = validate_batch(self.model.signature.inputs, rows)
        else:
            checked = rows
        result = {PREDICTION: np.asarray(self.model.predict(checked, validate=False))}
        if self._proba:
            result[PROBABILITIES] = np.asarray(self.model.predict_proba(checked, validate=False))
        for name, values in result.items():
            if len(values) != len(rows):
                raise InvalidInputError(
                    f"the model answered {len(values)} {name} for {len(rows)} rows",
                    expected=f"{len(rows)} rows",
                    received=f"{len(values)} rows",
                )
        return result

    def _table(
        self,
        frame: pd.DataFrame,
        pieces: list[tuple[np.ndarray, dict[str, np.ndarray]]],
        failures: list[_Failure],
    ) -> pd.DataFrame:
        if self.options.on_error == "null":
            order = np.arange(len(frame))
        else:
            order = np.sort(np.concatenate([p for p, _ in pieces])) if pieces else np.arange(0)
        kept = frame.iloc[order][list(self.keep)].reset_index(drop=True)
        columns: dict[str, Any] = {name: kept[name] for name in self.keep}
        columns.update(self._output_columns(pieces, order))
        rows = len(order)
        # One value repeated: a one-category column costs nothing to build (a Python
        # string per row cost ~1% of a forest's scoring) and Parquet stores it once.
        columns[MODEL_COLUMN] = pd.Categorical.from_codes(
            np.zeros(rows, dtype=np.int8), [self.model_name]
        )
        columns[VERSION_COLUMN] = (
            np.full(rows, self.model_version, dtype=np.int64)
            if self.model_version is not None
            else pd.array([None] * rows, dtype="Int64")
        )
        return pd.DataFrame(columns)

    def _output_columns(
        self,
        pieces: list[tuple[np.ndarray, dict[str, np.ndarray]]],
        order: np.ndarray,
    ) -> dict[str, pd.Series]:
        """The output columns for the rows in ``order``: a piece's values go to its
        positions; rows no piece scored (``null``) stay empty."""
        if not pieces:
            return {PREDICTION: pd.Series([None] * len(order), dtype="object")}
        named: list[dict[str, pd.Series]] = []
        for positions, values in pieces:
            columns = _named_columns(PREDICTION, values[PREDICTION], None, positions)
            if PROBABILITIES in values:
                columns.update(
                    _named_columns("probability", values[PROBABILITIES], self._classes, positions)
                )
            named.append(columns)
        gaps = sum(len(p) for p, _ in pieces) < len(order)
        merged: dict[str, pd.Series] = {}
        for name in named[0]:
            series = (
                pd.concat([columns[name] for columns in named])
                if len(named) > 1
                else named[0][name]
            )
            if gaps and series.dtype.kind in "iub":
                series = series.astype(
                    pd.api.types.pandas_dtype("boolean" if series.dtype.kind == "b" else "Int64")
                )
            merged[name] = series.reindex(order).reset_index(drop=True)
        return merged


def _named_columns(
    stem: str, values: np.ndarray, labels: Sequence[Any] | None, positions: np.ndarray
) -> dict[str, pd.Series]:
    """One column for 1-D values; ``stem_<label or index>`` for each column of 2-D ones;
    indexed by the rows' positions in the chunk."""
    if values.ndim == 1:
        return {stem: pd.Series(values, index=positions)}
    flat = values.reshape(len(values), -1)
    names = labels if labels is not None and len(labels) == flat.shape[1] else range(flat.shape[1])
    return {
        f"{stem}_{name}": pd.Series(flat[:, i], index=positions) for i, name in enumerate(names)
    }


def _column_of(exc: ModelportError) -> str | None:
    field = getattr(exc, "field", None)
    return str(field) if field else None
