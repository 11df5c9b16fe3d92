"""Which interface changes would break a current client, and which would not."""

from __future__ import annotations

import pytest

from modelport.domain.signature import ColumnSchema, ColumnSpec, Signature, TensorSchema, TensorSpec
from modelport.serving.compatibility import compare_interfaces
from modelport.serving.interface import ModelIO


def columns(*specs: ColumnSpec) -> Signature:
    return Signature(ColumnSchema(tuple(specs)))


def tensor(dtype: str = "float64", shape: tuple[int, ...] = (-1, 3), name: str = "x") -> Signature:
    return Signature(TensorSchema((TensorSpec(name, dtype, shape),)))


def io(signature: Signature | None, *, proba: bool = False, classes: int | None = None) -> ModelIO:
    return ModelIO.from_signature(signature, supports_proba=proba, n_classes=classes)


A, B, C = (ColumnSpec(n, "float64") for n in "abc")
TEXT = ColumnSpec("city", "string")


def breaking(old: Signature | None, new: Signature | None, **kw: object) -> tuple[str, ...]:
    return compare_interfaces(
        io(old), io(new), old_signed=old is not None, new_signed=new is not None, **kw
    ).breaking


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (columns(A, B, C), None, "no signature"),
        (columns(A, B, C), columns(A, B), "matrix's columns change"),
        (columns(A, B, C), columns(A, C, B), "matrix's columns change"),  # V2 sends positions
        (columns(A, B, TEXT), columns(A, B), "column 'city' is removed"),
        (
            columns(A, TEXT),
            columns(A, TEXT, ColumnSpec("zip", "string")),
            "'zip' is new and required",
        ),
        (
            columns(A, TEXT),
            columns(ColumnSpec("a", "int64"), TEXT),
            "changes type from float64 to int64",
        ),
        (
            columns(ColumnSpec("a", "float64", nullable=True), TEXT),
            columns(A, TEXT),
            "missing values",
        ),
        (
            columns(ColumnSpec("k", "category", categories=("x", "y")), A),
            columns(ColumnSpec("k", "category", categories=("x",)), A),
            "no longer accepts the categories ['y']",
        ),
        (columns(A, B), columns(A, TEXT), "input 'input' is removed"),  # matrix -> columns
        (columns(A, B), tensor(shape=(-1, 2), name="input"), "no longer taken by name"),
        (tensor(), tensor(dtype="float32"), "changes datatype from FP64 to FP32"),
        (tensor(), tensor(shape=(-1, 4)), "changes shape from [-1, 3] to [-1, 4]"),
        (tensor(), tensor(name="y"), "input 'x' is removed"),
    ],
)
def test_changes_that_break_clients(old: Signature, new: Signature | None, expected: str) -> None:
    found = breaking(old, new)
    assert any(expected in change for change in found), found


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (columns(A, B, C), columns(A, B, C)),
        (columns(A, TEXT), columns(A, TEXT, ColumnSpec("zip", "string", required=False))),
        (columns(ColumnSpec("a", "int64"), TEXT), columns(A, TEXT)),  # int -> float widens
        (columns(ColumnSpec("a", "int64"), ColumnSpec("b", "int64")), columns(A, B)),  # matrix
        (columns(A, TEXT), columns(ColumnSpec("a", "float64", nullable=True), TEXT)),
        (tensor(dtype="float32"), tensor()),  # FP32 clients still fit an FP64 input
        (tensor(shape=(-1, 3)), tensor(shape=(-1, -1))),
        (None, tensor()),  # nothing was promised
        (None, None),
    ],
)
def test_changes_that_keep_clients_working(old: Signature | None, new: Signature | None) -> None:
    assert breaking(old, new) == ()


def test_outputs_keep_their_datatype_and_width() -> None:
    old = io(tensor(), proba=True, classes=2)
    fewer = io(tensor(), proba=False)
    wider = io(tensor(), proba=True, classes=3)
    labels = ModelIO.from_signature(
        Signature(tensor().inputs, TensorSchema((TensorSpec("y", "int64", (-1,)),))),
        supports_proba=True,
        n_classes=2,
    )
    compare = lambda a, b: compare_interfaces(a, b, old_signed=True, new_signed=True)  # noqa: E731
    assert "output 'probabilities' is removed" in compare(old, fewer).breaking
    assert any("'probabilities' changes shape" in c for c in compare(old, wider).breaking)
    assert any(
        "'predictions' changes datatype from FP64 to INT64" in c
        for c in compare(old, labels).breaking
    )
    assert compare(fewer, old).breaking == ()  # a new output is fine
    assert "output 'probabilities' is new" in compare(fewer, old).compatible


def test_params_a_client_sends_today_must_keep_working() -> None:
    from modelport.domain.params import ParamSchema, ParamSpec

    def params(*specs: ParamSpec) -> ParamSchema:
        return ParamSchema(specs)

    k, t = ParamSpec("k", "long", 5), ParamSpec("t", "double", 0.5)
    old = tensor()

    def change(
        before: ParamSchema | None, after: ParamSchema | None
    ) -> tuple[tuple[str, ...], ...]:
        found = compare_interfaces(
            io(old), io(old), old_signed=True, new_signed=True, old_params=before, new_params=after
        )
        return found.breaking, found.compatible

    assert change(params(k, t), params(k)) == (
        ("param 't' is removed (clients' values would be ignored)",),
        (),
    )
    assert change(params(k), params(ParamSpec("k", "double", 5.0)))[0] == ()  # widened
    assert change(params(t), params(ParamSpec("t", "long", 0)))[0] == (
        "param 't' changes type from double to long",
    )
    assert change(params(k), params(ParamSpec("k", "long", [5], (-1,))))[0] == (
        "param 'k' changes shape from None to (-1,)",
    )
    assert change(None, params(k)) == ((), ("param 'k' is new",))
    assert change(params(k), params(ParamSpec("k", "long", 3))) == (
        (),
        ("param 'k' changes its default from 5 to 3",),
    )
