"""Signatures as pure data: round trips, tensor schemas of arrays, the numeric rules."""

import subprocess
import sys

import numpy as np
import pytest

from modelport.domain.signature import (
    ColumnSchema,
    ColumnSpec,
    Signature,
    TensorSchema,
    TensorSpec,
    cast_numeric,
    schema_from_dict,
    tensor_schema_of,
)
from modelport.errors import InvalidInputError, InvalidSampleError


def test_signature_round_trips_through_dict() -> None:
    signature = Signature(
        inputs=ColumnSchema(
            (
                ColumnSpec("age", "int64"),
                ColumnSpec("income", "float64", nullable=True, required=False),
                ColumnSpec("plan", "category", categories=("a", "b")),
            )
        ),
        outputs=TensorSchema((TensorSpec("predictions", "int64", (-1,)),)),
    )
    assert Signature.from_dict(signature.to_dict()) == signature


def test_unknown_kinds_and_dtypes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown schema kind"):
        schema_from_dict({"kind": "graph"})
    with pytest.raises(ValueError, match="unknown dtype 'complex128'"):
        schema_from_dict({"kind": "tensors", "tensors": [{"name": "x", "dtype": "complex128"}]})


def test_tensor_schema_of_an_array_has_a_variable_batch_dimension() -> None:
    schema = tensor_schema_of(np.zeros((4, 3, 2), dtype="float32"))
    assert schema == TensorSchema((TensorSpec("input", "float32", (-1, 3, 2)),))
    named = tensor_schema_of({"ids": np.zeros((2, 5), "int64"), "text": np.array([["a"]] * 2)})
    assert named.tensors == (
        TensorSpec("ids", "int64", (-1, 5)),
        TensorSpec("text", "string", (-1, 1)),
    )
    with pytest.raises(InvalidSampleError, match="unsupported tensor dtype complex128"):
        tensor_schema_of(np.zeros((2, 2), dtype="complex128"))


def test_cast_numeric_follows_the_conversion_table() -> None:
    assert cast_numeric(np.array([1, 2]), "float32", "x").dtype == np.float32
    assert cast_numeric(np.array([1.0, 2.0]), "int8", "x").dtype == np.int8
    with pytest.raises(InvalidInputError, match="lose precision"):
        cast_numeric(np.array([2**30]), "float32", "x")
    with pytest.raises(InvalidInputError, match="not whole numbers"):
        cast_numeric(np.array([1.5]), "int64", "x")
    with pytest.raises(InvalidInputError, match="got bool"):
        cast_numeric(np.array([True]), "float64", "x")


def test_the_domain_imports_no_pandas() -> None:
    code = (
        "import sys, pkgutil, importlib, modelport.domain as d;"
        "[importlib.import_module(f'modelport.domain.{m.name}') "
        " for m in pkgutil.iter_modules(d.__path__)];"
        "print('pandas' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
