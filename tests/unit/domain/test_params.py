"""Inference parameter declarations and the conversion of a request's values (MLflow's
``ParamSchema`` and ``_enforce_params_schema`` rules)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from modelport.domain.params import ParamSchema, ParamSpec, ignored_warning, param_schema_of
from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature
from modelport.errors import InvalidParameterError


@pytest.mark.parametrize(
    ("dtype", "value", "expected"),
    [
        ("boolean", True, True),
        ("boolean", np.bool_(False), False),
        ("integer", 7, 7),
        ("long", np.int64(2**40), 2**40),
        ("float", 3, 3.0),
        ("double", 2.5, 2.5),
        ("double", np.float32(0.5), 0.5),
        ("string", "abc", "abc"),
        ("datetime", "2024-05-01", dt.date(2024, 5, 1)),
        ("datetime", "2024-05-01T10:30:00", dt.datetime(2024, 5, 1, 10, 30)),
        ("datetime", dt.datetime(2024, 5, 1, 8), dt.datetime(2024, 5, 1, 8)),
        ("long", None, None),  # a present null stays None, as in MLflow
    ],
)
def test_accepted_values_convert_to_the_declared_python_type(
    dtype: str, value: Any, expected: Any
) -> None:
    converted = ParamSpec("p", dtype).convert(value)
    assert converted == expected
    assert type(converted) is type(expected)


@pytest.mark.parametrize(
    ("dtype", "value", "received"),
    [
        ("boolean", 1, "number 1"),
        ("boolean", "true", "string 'true'"),
        ("long", True, "boolean True"),
        ("long", 1.5, "number 1.5"),
        ("long", "3", "string '3'"),
        ("integer", 2**31, f"number {2**31}"),
        ("double", False, "boolean False"),
        ("double", "0.5", "string '0.5'"),
        ("string", 5, "number 5"),
        ("datetime", "not a date", "string 'not a date'"),
        ("datetime", 20240501, "number 20240501"),
        ("datetime", "20240501", "string '20240501'"),  # numpy reads a year 20240501
        ("double", [1.0], "list [1.0]"),
        ("string", {"a": 1}, "object {'a': 1}"),
    ],
)
def test_refused_values_name_the_param_its_type_and_the_value(
    dtype: str, value: Any, received: str
) -> None:
    spec = ParamSpec("p", dtype)
    with pytest.raises(InvalidParameterError) as caught:
        spec.convert(value)
    error = caught.value
    assert error.message.startswith(f"'p' expects {dtype} (default: None), got {received}")
    assert (error.field, error.expected, error.received) == ("p", spec.describe(), received)


def test_a_list_param_converts_each_item_and_needs_a_flat_list() -> None:
    spec = ParamSpec("ids", "long", [1, 2], shape=(-1,))
    assert spec.convert([3, np.int64(4)]) == [3, 4]
    assert spec.convert(()) == []
    for bad in (3, [[1]], [1, None], [1, "2"]):
        with pytest.raises(InvalidParameterError, match="'ids' expects list of long"):
            spec.convert(bad)


def test_declarations_are_checked_when_made() -> None:
    for dtype, message in [
        ("binary", "binary is not supported for parameters"),
        ("int64", "unsupported type 'int64'; expected one of string, integer, long"),
    ]:
        with pytest.raises(InvalidParameterError, match=message):
            ParamSpec("p", dtype)
    with pytest.raises(InvalidParameterError, match="the shape must be None"):
        ParamSpec("p", "long", shape=(2,))
    with pytest.raises(InvalidParameterError, match="'p' expects long"):
        ParamSpec("p", "long", "five")
    with pytest.raises(InvalidParameterError, match="non-empty text"):
        ParamSpec("", "long")
    with pytest.raises(InvalidParameterError, match=r"Duplicated parameters .*\['a'\]"):
        ParamSchema((ParamSpec("a", "long"), ParamSpec("a", "double")))


SCHEMA = ParamSchema(
    (
        ParamSpec("temperature", "double", 0.7),
        ParamSpec("top_k", "long", 5),
        ParamSpec("stop", "string", ["\n"], shape=(-1,)),
    )
)


def test_resolving_fills_defaults_converts_given_values_and_names_undeclared_ones() -> None:
    resolved = SCHEMA.resolve({"top_k": 3, "seed": 1, "temperature": 1})
    assert dict(resolved.values) == {"temperature": 1.0, "top_k": 3, "stop": ["\n"]}
    assert resolved.ignored == ("seed",)
    assert SCHEMA.resolve(None).values is SCHEMA.defaults
    assert SCHEMA.resolve({}).values is SCHEMA.defaults


def test_every_bad_param_is_reported_in_declaration_order() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        SCHEMA.resolve({"stop": "x", "top_k": "many", "temperature": 1})
    assert caught.value.message == (
        "Invalid parameters found: 'top_k' expects long (default: 5), got string 'many'; "
        "'stop' expects list of string (default: ['\\n']), got string 'x'; it needs a list "
        "of values (shape (-1,))"
    )
    assert caught.value.field == "top_k"


def test_types_are_inferred_from_default_values_as_mlflow_does() -> None:
    schema = ParamSchema.infer(
        {
            "flag": True,
            "k": 3,
            "t": 0.5,
            "name": "x",
            "day": dt.date(2024, 1, 2),
            "ws": [0.5, 1],
            "ids": np.array([1, 2]),
        }
    )
    assert [(s.name, s.dtype, s.shape) for s in schema.params] == [
        ("flag", "boolean", None),
        ("k", "long", None),
        ("t", "double", None),
        ("name", "string", None),
        ("day", "datetime", None),
        ("ws", "double", (-1,)),
        ("ids", "long", (-1,)),
    ]
    for bad, message in [
        ({"n": None}, "cannot infer the type of parameter 'n'"),
        ({"m": [[1]]}, "must be flat and non-empty"),
        ({"m": []}, "must be flat and non-empty"),
        ({"m": [1, "a"]}, "mixes"),
    ]:
        with pytest.raises(InvalidParameterError, match=message):
            ParamSchema.infer(bad)


def test_the_json_form_is_mlflows_and_round_trips() -> None:
    schema = ParamSchema(
        (ParamSpec("day", "datetime", "2024-01-02"), ParamSpec("ids", "long", [1], (-1,)))
    )
    assert schema.to_dict() == [
        {"name": "day", "type": "datetime", "default": "2024-01-02", "shape": None},
        {"name": "ids", "type": "long", "default": [1], "shape": [-1]},
    ]
    assert ParamSchema.from_dict(schema.to_dict()) == schema
    mlflow_style = [{"name": "k", "dtype": "long", "default": 1}]  # MLflow reads dtype too
    assert ParamSchema.from_dict(mlflow_style) == ParamSchema((ParamSpec("k", "long", 1),))


def test_a_signature_stores_params_only_when_it_declares_some() -> None:
    inputs = ColumnSchema((ColumnSpec("a", "float64"),))
    plain = Signature(inputs)
    assert "params" not in plain.to_dict()
    assert Signature.from_dict(plain.to_dict()) == plain
    with_params = Signature(inputs, params=SCHEMA)
    assert Signature.from_dict(with_params.to_dict()) == with_params


def test_what_users_pass_becomes_a_schema() -> None:
    assert param_schema_of(SCHEMA) is SCHEMA
    assert param_schema_of(list(SCHEMA.params)) == SCHEMA
    assert param_schema_of({"top_k": 5}).params == (ParamSpec("top_k", "long", 5),)
    with pytest.raises(InvalidParameterError, match="must be a ParamSchema"):
        param_schema_of(["top_k"])  # type: ignore[list-item]


def test_warnings_use_mlflows_words_and_stay_ascii() -> None:
    assert ignored_warning(["seed"], SCHEMA) == (
        "Unrecognized params ['seed'] are ignored for inference. "
        "Supported params are: ['temperature', 'top_k', 'stop']."
    )
    text = ignored_warning(["caf\u00e9\r\n", *map(str, range(12))], None)
    assert text.isascii() and "\r" not in text
    assert text.endswith(
        "Ignoring provided params: ['caf\\xe9\\r\\n', '0', '1', '2', '3', "
        "'4', '5', '6', '7', '8', ... and 3 more]"
    )
