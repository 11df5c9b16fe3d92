"""The one onnxruntime session factory and input cast: the ONNX flavor's sessions run one
thread per call without spinning, like a package's accelerated graph."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelport.errors import InvalidInputError, MissingDependencyError
from modelport.flavors.base import LoadContext, SaveContext
from modelport.flavors.onnx import OnnxFlavor
from modelport.flavors.onnx_runtime import (
    cast_input,
    import_onnxruntime,
    input_dtypes,
    new_session,
    output_names,
)

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

SPINNING = "session.intra_op.allow_spinning"


def linear_graph() -> Any:
    """y = x @ W, float32, written by hand with onnx.helper."""
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 1])],
        initializer=[onnx.numpy_helper.from_array(np.ones((3, 1), np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def assert_single_threaded(session: Any) -> None:
    options = session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry(SPINNING) == "0"
    assert options.log_severity_level == 3


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every onnxruntime session opened while the test runs."""
    sessions: list[Any] = []
    real = ort.InferenceSession

    def spy(*args: Any, **kwargs: Any) -> Any:
        sessions.append(real(*args, **kwargs))
        return sessions[-1]

    monkeypatch.setattr(ort, "InferenceSession", spy)
    return sessions


def test_a_new_session_runs_one_thread_without_spinning() -> None:
    session = new_session(import_onnxruntime("onnx"), linear_graph().SerializeToString())

    assert_single_threaded(session)
    assert input_dtypes(session) == [("x", np.float32)]
    assert output_names(session) == ["y"]


def test_the_onnx_flavor_opens_its_sessions_with_the_factory(
    tmp_path: Path, opened: list[Any]
) -> None:
    flavor = OnnxFlavor()
    saved = flavor.save(linear_graph(), tmp_path, SaveContext())
    predictor = flavor.load(tmp_path, saved.spec, LoadContext())

    (session,) = opened
    assert_single_threaded(session)
    # Same outputs as before: one thread changes how the work is split, not the sums.
    rows = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(predictor.predict(rows), rows.sum(axis=1, keepdims=True))


def test_inputs_are_cast_to_the_graph_types_or_named_when_they_cannot_be() -> None:
    values = cast_input([[1, 2, 3]], np.float32, "x")
    assert values.dtype == np.float32

    with pytest.raises(InvalidInputError, match="input 'x' cannot be converted") as caught:
        cast_input([["a", "b", "c"]], np.float32, "x")
    assert caught.value.field == "x"
    assert caught.value.expected == "float32"


def test_a_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)

    with pytest.raises(MissingDependencyError, match=r"pip install 'modelport\[onnx\]'"):
        import_onnxruntime("onnx")
    with pytest.raises(MissingDependencyError, match=r"pip install 'modelport\[accelerate\]'"):
        import_onnxruntime("accelerate")
