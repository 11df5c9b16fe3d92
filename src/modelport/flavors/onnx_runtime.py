"""Running ONNX graphs with onnxruntime: the one session factory and input cast shared by
the ONNX flavor (users' ``.onnx`` models) and by a package's accelerated graph
(``package.onnx_predictor``, ``package.acceleration``).

onnxruntime is imported inside the functions that open a session (``import_onnxruntime``),
never when this module is: a server that never opens a session does not pay for it.

Every session runs a call on one thread, without spinning (``new_session`` says why). For
users' models this changes how long one large call takes, not what it computes:

* the thread count decides how an operator's work is split, not which operators run, so
  matrix products and element-wise operators give the same bits; tree ensembles add up
  their trees in another order and may differ in the last float32 bits (measured on a
  200-tree forest: 1.8e-7 on probabilities, 8e-3 on predictions near 1,000; labels the
  same). The default pool is sized by the machine's cores, so those bits already varied
  between machines; one thread gives the same on every machine;
* one large call uses one core instead of all of them (a 200-tree forest on 5,000 rows:
  42 ms instead of 22 ms on two cores); the server's workers run calls side by side
  instead, which is what serves more requests (see ``new_session``);
* onnxruntime logs errors only: the warnings it printed when opening some graphs are gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from modelport.errors import InvalidInputError
from modelport.flavors.dependencies import require

# onnxruntime type strings -> numpy dtypes the session expects.
_RUNTIME_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
    "tensor(string)": object,
}  # fmt: skip


def import_onnxruntime(extra: str) -> ModuleType:
    """onnxruntime, or ``MissingDependencyError`` naming the modelport ``extra`` that
    installs it (``onnx`` for the flavor, ``accelerate`` for accelerated graphs)."""
    return require("onnxruntime", extra=extra)


def new_session(ort: ModuleType, model: bytes | str) -> Any:
    """An onnxruntime CPU session on a serialized graph or a file; ``ort`` is the module
    ``import_onnxruntime`` returned. onnxruntime's own (untyped) errors propagate."""
    options = ort.SessionOptions()
    # Errors only: LightGBM graphs declare a label shape onnxruntime warns about per run.
    options.log_severity_level = 3
    # One thread per call, and no spinning: these graphs answer a batch in microseconds,
    # and the server already runs calls side by side in its worker processes. A pool per
    # session spinning on every core made two workers fight over two cores (measured on
    # the 100-tree forest, 2 workers: 64-row requests 650 -> 1,000 per second, p99
    # 135 -> 25 ms).
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def input_dtypes(session: Any) -> list[tuple[str, Any]]:
    """The session's inputs, in order, with the numpy dtype each takes (None when the
    type has no numpy equivalent: the values are then passed as they are)."""
    return [(i.name, _RUNTIME_DTYPES.get(i.type)) for i in session.get_inputs()]


def cast_input(values: Any, dtype: Any, name: str) -> np.ndarray:
    """``values`` as an array of ``dtype`` for the input ``name``; ``InvalidInputError``
    naming the input when they do not convert."""
    try:
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"input {name!r} cannot be converted to the type the model takes: {exc}",
            field=name,
            expected=str(np.dtype(dtype)) if dtype is not None else None,
        ) from None


def output_names(session: Any) -> Sequence[str]:
    """The session's output names, in order."""
    return [output.name for output in session.get_outputs()]
