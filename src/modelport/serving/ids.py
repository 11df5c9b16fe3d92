"""Id columns (``Signature.id_columns``): taken out of a request before it is bound.

A request may carry columns that identify its rows (``customer_id``) beside the model's
inputs; they are split off here, so the binder and the model never see them, and travel
with the result to the prediction log and back to the client.
"""

from __future__ import annotations

import numpy as np

from modelport.serving.binding import NamedInputs, RequestInputs, TableInputs


def split_ids(
    inputs: RequestInputs, names: frozenset[str]
) -> tuple[RequestInputs, dict[str, np.ndarray]]:
    """The request's inputs without its id columns (``Signature.id_columns``), and the id
    columns it sent, as 1-D arrays (text for BYTES). Unnamed inputs carry no ids."""
    if isinstance(inputs, NamedInputs):
        found = [name for name in inputs.tensors if name in names]
        if not found:
            return inputs, {}
        ids = {name: _id_values(inputs.tensors[name].array) for name in found}
        rest = {k: v for k, v in inputs.tensors.items() if k not in names}
        return NamedInputs(rest), ids
    if isinstance(inputs, TableInputs) and inputs.columns is not None:
        columns = list(inputs.columns)
        positions = [i for i, column in enumerate(columns) if column in names]
        if not positions:
            return inputs, {}
        keep = [i for i in range(len(columns)) if i not in positions]
        values = np.asarray(inputs.values)
        ids = {columns[i]: _id_values(values[:, i]) for i in positions}
        return TableInputs([columns[i] for i in keep], values[:, keep]), ids
    return inputs, {}


def _id_values(array: np.ndarray) -> np.ndarray:
    flat = np.asarray(array).reshape(-1)
    if flat.dtype.kind == "S" or (
        flat.dtype == object and flat.size and isinstance(flat[0], bytes)
    ):
        return np.array([v.decode("utf-8", "replace") for v in flat], dtype=object)
    return flat
