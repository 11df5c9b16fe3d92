"""Whether a new version's interface keeps every request that works today working.

The server compares the version it serves with the one an alias moved to before it
switches (``serving.runtime``). A change is *breaking* when a request a client sends
today could fail or mean something else afterwards:

* the new version has no signature (the old one had);
* an input (V2 tensor, or table column) is removed, or a new one is required;
* an input's datatype no longer accepts what the old one did (FP32 -> FP64 still
  accepts FP32; FP64 -> INT64 does not accept 1.5), its shape no longer fits the old
  one's, it no longer accepts missing values, or a category column loses categories;
* the one-matrix input of an all-numeric model changes its columns (V2 clients send
  them by position);
* an output is removed, or changes datatype or a fixed dimension (a classifier with a
  new class changes its probabilities' width);
* a declared inference parameter is removed (clients' values would be ignored), changes
  shape, or changes to a type that refuses values the old one took (``long`` ->
  ``double`` still takes every integer; ``double`` -> ``long`` does not take 0.5).

Anything else is compatible: a new optional column, a widened type, a new output, a new
parameter (it has a default), a changed default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelport.domain.layout import shape_fits
from modelport.domain.params import ParamSchema
from modelport.domain.signature import ColumnSpec
from modelport.serving.conversion import LOSSLESS
from modelport.serving.interface import IOSpec, Layout, ModelIO

# Integers convert to FP64 when their values are exact (the binder checks each request).
_EXACT_WHEN_CHECKED = {"FP64": ("INT64", "UINT64")}
# Parameter types and the types whose values they also take (domain.params' conversions).
_PARAM_WIDER = {
    "long": {"integer"},
    "float": {"integer", "long"},
    "double": {"integer", "long", "float"},
}


@dataclass(frozen=True)
class InterfaceChange:
    """What changes for clients between two versions."""

    breaking: tuple[str, ...] = ()
    compatible: tuple[str, ...] = ()

    def describe(self) -> str:
        """The breaking changes in one line."""
        return "; ".join(self.breaking)


def compare_interfaces(
    old: ModelIO,
    new: ModelIO,
    *,
    old_signed: bool,
    new_signed: bool,
    old_params: ParamSchema | None = None,
    new_params: ParamSchema | None = None,
) -> InterfaceChange:
    """How ``new`` differs from ``old`` for the clients of ``old`` (the params are the
    inference parameters each signature declares)."""
    if not old_signed:
        return InterfaceChange(compatible=("the served version has no signature to keep",))
    if not new_signed:
        return InterfaceChange(breaking=("the new version has no signature",))
    breaking: list[str] = []
    compatible: list[str] = []
    _compare_inputs(old, new, breaking, compatible)
    _compare_outputs(old.outputs, new.outputs, breaking, compatible)
    _compare_params(old_params, new_params, breaking, compatible)
    return InterfaceChange(tuple(breaking), tuple(compatible))


def _compare_params(
    old: ParamSchema | None,
    new: ParamSchema | None,
    breaking: list[str],
    compatible: list[str],
) -> None:
    before = {spec.name: spec for spec in old.params} if old else {}
    after = {spec.name: spec for spec in new.params} if new else {}
    for name, spec in before.items():
        changed = after.get(name)
        if changed is None:
            breaking.append(f"param {name!r} is removed (clients' values would be ignored)")
            continue
        if changed.dtype != spec.dtype and spec.dtype not in _PARAM_WIDER.get(changed.dtype, ()):
            breaking.append(f"param {name!r} changes type from {spec.dtype} to {changed.dtype}")
        if changed.shape != spec.shape:
            breaking.append(f"param {name!r} changes shape from {spec.shape} to {changed.shape}")
        if changed.default != spec.default:
            compatible.append(
                f"param {name!r} changes its default from {spec.default!r} to {changed.default!r}"
            )
    compatible.extend(f"param {name!r} is new" for name in after if name not in before)


def _compare_inputs(old: ModelIO, new: ModelIO, breaking: list[str], compatible: list[str]) -> None:
    if old.columns and new.columns:
        _compare_columns(old.columns, new.columns, breaking, compatible)
    elif old.columns:
        breaking.append(f"the columns {old.column_names} are no longer taken by name")
    old_columns = set(old.column_names)
    after = {spec.name: spec for spec in new.inputs}
    for spec in old.inputs:
        if spec.name in old_columns:
            continue  # one input per column: compared as a column above
        changed = after.get(spec.name)
        if changed is None:
            breaking.append(f"input {spec.name!r} is removed")
        elif new.layout is Layout.MATRIX and old.column_names != new.column_names:
            breaking.append(
                f"the input matrix's columns change from {old.column_names} to "
                f"{new.column_names} (V2 clients send them by position)"
            )
        else:
            breaking.extend(_tensor_changes("input", spec, changed))
    if new.layout is Layout.TENSORS:  # a tensor is never optional: a new one is required
        before = {spec.name for spec in old.inputs}
        breaking.extend(
            f"input {spec.name!r} is new and required" for spec in new.inputs
            if spec.name not in before
        )  # fmt: skip


def _compare_columns(
    old: Iterable[ColumnSpec], new: Iterable[ColumnSpec], breaking: list[str], compatible: list[str]
) -> None:
    after = {column.name: column for column in new}
    before = {column.name: column for column in old}
    for name, column in before.items():
        changed = after.get(name)
        if changed is None:
            breaking.append(f"column {name!r} is removed")
        else:
            breaking.extend(_column_changes(column, changed))
    for name, column in after.items():
        if name not in before:
            if column.required:
                breaking.append(f"column {name!r} is new and required")
            else:
                compatible.append(f"column {name!r} is new and optional")


def _column_changes(old: ColumnSpec, new: ColumnSpec) -> list[str]:
    changes = []
    if old.dtype != new.dtype and not _widens(old.dtype, new.dtype):
        changes.append(f"column {old.name!r} changes type from {old.dtype} to {new.dtype}")
    if old.nullable and not new.nullable:
        changes.append(f"column {old.name!r} no longer accepts missing values")
    if not old.required and new.required:
        changes.append(f"column {old.name!r} becomes required")
    if old.dtype == new.dtype == "category":
        lost = set(old.categories or ()) - set(new.categories or ())
        if lost:
            shown = sorted(map(str, lost))[:5]
            changes.append(f"column {old.name!r} no longer accepts the categories {shown}")
    return changes


def _widens(old: str, new: str) -> bool:
    """Whether a column of dtype ``new`` accepts every value a column of ``old`` did."""
    numeric = ("int", "uint", "float")
    if not (old.startswith(numeric) and new.startswith(numeric)):
        return False
    to_v2 = {"int": "INT", "uint": "UINT", "float": "FP"}
    return _accepts(_datatype(new, to_v2), _datatype(old, to_v2))


def _datatype(dtype: str, prefixes: dict[str, str]) -> str:
    for prefix, v2 in sorted(prefixes.items(), key=lambda item: -len(item[0])):
        if dtype.startswith(prefix):
            return f"{v2}{dtype[len(prefix) :]}"
    return dtype


def _accepts(new: str, old: str) -> bool:
    """Whether an input of V2 datatype ``new`` accepts what one of ``old`` accepted."""
    return new == old or old in LOSSLESS.get(new, ()) or old in _EXACT_WHEN_CHECKED.get(new, ())


def _tensor_changes(kind: str, old: IOSpec, new: IOSpec) -> list[str]:
    changes = []
    if not _accepts(new.datatype, old.datatype):
        changes.append(
            f"{kind} {old.name!r} changes datatype from {old.datatype} to {new.datatype}"
        )
    # Every shape the old one allowed fits the new one (an old -1 needs a new -1).
    if not shape_fits(new.shape, old.shape):
        changes.append(
            f"{kind} {old.name!r} changes shape from {list(old.shape)} to {list(new.shape)}"
        )
    if old.nullable and not new.nullable:
        changes.append(f"{kind} {old.name!r} no longer accepts missing values")
    return changes


def _compare_outputs(
    old: Iterable[IOSpec], new: Iterable[IOSpec], breaking: list[str], compatible: list[str]
) -> None:
    after = {spec.name: spec for spec in new}
    before = {spec.name: spec for spec in old}
    for name, spec in before.items():
        changed = after.get(name)
        if changed is None:
            breaking.append(f"output {name!r} is removed")
            continue
        if changed.datatype != spec.datatype:
            breaking.append(
                f"output {name!r} changes datatype from {spec.datatype} to {changed.datatype}"
            )
        if not _same_fixed_dims(spec.shape, changed.shape):
            breaking.append(
                f"output {name!r} changes shape from {list(spec.shape)} to {list(changed.shape)}"
            )
    compatible.extend(f"output {name!r} is new" for name in after if name not in before)


def _same_fixed_dims(old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    if len(old) != len(new):
        return False
    return all(o == n or -1 in (o, n) for o, n in zip(old, new, strict=True))
