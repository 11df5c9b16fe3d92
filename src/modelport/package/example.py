"""The input example stored in a package: a few rows of the sample, as JSON.

The server uses it to warm a model before it takes traffic, and users see in it
what the model expects. Tables use pandas' "split" layout (the shape of MLflow's
``dataframe_split``); tensors keep their dtype and shape.

A package is written only if its model predicts on the example as stored
(``check_input_example``): read back from JSON and checked against the signature, as
``LoadedModel.predict`` and the server's warm-up read it. So a version that registers
always answers its own example, and a signature that does not fit the sample is
refused when the package is written, not when it is served.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelport.domain.predictor import ModelPredictor
from modelport.domain.signature import Signature
from modelport.errors import CorruptPackageError, InvalidInputError, PackageError
from modelport.package.batch_validation import validate_batch

EXAMPLE_ROWS = 5


def input_example(sample: Any, rows: int = EXAMPLE_ROWS) -> dict[str, Any]:
    """The first ``rows`` rows of a sample as JSON-ready data."""
    if isinstance(sample, pd.DataFrame):
        split = json.loads(
            sample.head(rows).to_json(orient="split", index=False, date_format="iso")
        )
        return {"format": "dataframe_split", "columns": split["columns"], "data": split["data"]}
    tensors = sample if isinstance(sample, dict) else {"input": sample}
    return {
        "format": "tensors",
        "tensors": {
            name: {
                "dtype": str(np.asarray(array).dtype),
                "shape": [min(rows, len(array)), *np.asarray(array).shape[1:]],
                "data": _json_ready(np.asarray(array)[:rows]),
            }
            for name, array in tensors.items()
        },
    }


def _json_ready(array: np.ndarray) -> Any:
    if array.dtype.kind == "f":  # JSON has no NaN: missing values become null
        values = array.astype(object)
        values[~np.isfinite(array)] = None
        return values.tolist()
    return array.tolist()


def write_input_example(sample: Any, path: Path) -> None:
    """Write the input example file."""
    path.write_text(json.dumps(input_example(sample), allow_nan=False), encoding="utf-8")


def read_input_example(path: Path, signature: Signature | None) -> Any:
    """The stored example as a batch the model accepts (validated when a signature exists)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["format"] == "dataframe_split":
            batch: Any = pd.DataFrame(data["data"], columns=data["columns"])
        else:
            arrays = {name: _array(t["data"], t["dtype"]) for name, t in data["tensors"].items()}
            batch = arrays if len(arrays) > 1 else next(iter(arrays.values()))
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptPackageError(f"{path.name} is malformed: {exc}", field=path.name) from None
    return validate_batch(signature.inputs, batch) if signature is not None else batch


def _array(data: Any, dtype: str) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return np.array(data, dtype="float64").astype(dtype)  # None -> NaN
    if np.dtype(dtype).kind in "OUS":
        return np.array(data, dtype=object)
    return np.array(data, dtype=dtype)


def check_input_example(
    predictor: ModelPredictor,
    path: Path,
    signature: Signature | None,
    params: Mapping[str, Any] | None = None,
) -> None:
    """Predict on the stored example as a loaded package would (a model that takes
    inference params gets ``params``, their defaults); ``PackageError`` naming the cause
    and the fix when that fails."""
    try:
        batch = read_input_example(path, signature)
    except InvalidInputError as exc:
        raise PackageError(
            f"the model's signature does not accept its own input example ({exc}); pass a "
            "signature that matches the sample input, or leave it out to infer it from the "
            "sample",
            field=exc.field,
        ) from exc
    try:
        model: Any = predictor  # with params, predict takes them (domain.predictor)
        model.predict(batch, *(() if params is None else (dict(params),)))
    except Exception as exc:  # the model's own code may raise anything
        raise PackageError(
            f"the model fails on its own input example as a loaded package reads it "
            f"({type(exc).__name__}: {exc}); the example is the first rows of the sample "
            "input, read back from JSON and converted to the signature's types: pass a "
            "sample input whose columns and types the model was trained on"
        ) from exc
