from pathlib import Path

import numpy as np
import pandas as pd

from modelport.package.example import read_input_example, write_input_example
from modelport.package.sample_schema import infer_signature


def test_table_example_round_trips_with_types(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"a": [1.5, np.nan] * 4, "b": ["x", "y"] * 4, "t": pd.date_range("2020", periods=8)}
    )
    write_input_example(frame, tmp_path / "ex.json")
    example = read_input_example(tmp_path / "ex.json", infer_signature(frame))
    pd.testing.assert_frame_equal(example, frame.head(5))


def test_tensor_example_keeps_dtype_and_shape(tmp_path: Path) -> None:
    array = np.arange(24, dtype="float32").reshape(8, 3)
    write_input_example(array, tmp_path / "ex.json")
    example = read_input_example(tmp_path / "ex.json", infer_signature(array))
    np.testing.assert_array_equal(example, array[:5])
    assert example.dtype == np.float32


def test_a_frame_with_integer_labels_reads_back_as_its_signature_names(tmp_path: Path) -> None:
    frame = pd.DataFrame(np.arange(12.0).reshape(4, 3))
    write_input_example(frame, tmp_path / "ex.json")
    example = read_input_example(tmp_path / "ex.json", infer_signature(frame))
    assert list(example.columns) == ["0", "1", "2"]
    np.testing.assert_array_equal(example.to_numpy(), frame.to_numpy())
