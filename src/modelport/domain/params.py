"""Inference parameters a model declares in its signature, as MLflow's ``ParamSchema``.

A parameter is not data: it is one value per request (a temperature, a threshold, a
top-k) that the model reads besides its rows. A signature may declare them, each with
a name, a type, a default and a shape (``None`` for one value, ``(-1,)`` for a list).
At predict time a request's ``params`` are resolved against the declaration: declared
ones are converted and type-checked, missing ones take their default, undeclared ones
are dropped (the caller warns about them).

Types are MLflow's names, and so are the conversions (``mlflow.models.utils.
_enforce_param_datatype``); everything else is refused:

=========================  ====================================================
declared type              accepted values
=========================  ====================================================
``boolean``                true / false
``integer``, ``long``      whole JSON numbers (not booleans), within int32 /
                           int64 (MLflow does not check the range)
``float``, ``double``      any JSON number (not booleans)
``string``                 text
``datetime``               ISO 8601 text (``2024-05-01``, ``2024-05-01T10:30``),
                           passed to the model as ``datetime.date``/``datetime``
=========================  ====================================================

``null`` is accepted for any scalar parameter and reaches the model as ``None``, as in
MLflow (an absent parameter takes its default; a present ``null`` does not). ``binary``
is refused as a parameter type, as MLflow refuses it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from modelport.errors import InvalidParameterError

PARAM_TYPES = ("string", "integer", "long", "float", "double", "boolean", "datetime")
LIST_SHAPE = (-1,)
_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_SHOWN_CHARS = 60


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: its name, type, default and shape (None: one value;
    ``(-1,)``: a list). The default is converted like a request's value, so a bad
    default fails here, when the signature is made."""

    name: str
    dtype: str
    default: Any = None
    shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidParameterError(
                f"a parameter name must be non-empty text, got {self.name!r}"
            )
        if self.dtype not in PARAM_TYPES:
            binary = " (binary is not supported for parameters)" if self.dtype == "binary" else ""
            raise InvalidParameterError(
                f"parameter {self.name!r} has unsupported type {self.dtype!r}{binary}; "
                f"expected one of {', '.join(PARAM_TYPES)}",
                field=self.name,
            )
        shape = tuple(self.shape) if self.shape is not None else None
        if shape not in (None, LIST_SHAPE):
            raise InvalidParameterError(
                f"parameter {self.name!r} has shape {list(shape or ())}; the shape must be "
                "None for one value or (-1,) for a list",
                field=self.name,
            )
        object.__setattr__(self, "shape", shape)
        default = self.convert(self.default)
        object.__setattr__(self, "default", default)

    def describe(self) -> str:
        """The declaration in words: ``double (default: 0.5)``, ``list of long ...``."""
        kind = self.dtype if self.shape is None else f"list of {self.dtype}"
        return f"{kind} (default: {_shown(_jsonable(self.default))})"

    def convert(self, value: Any) -> Any:
        """``value`` as this parameter's Python type; ``InvalidParameterError`` naming the
        parameter, its declared type and the value otherwise."""
        if self.shape is None:
            return self._scalar(value)
        if not isinstance(value, list | tuple | np.ndarray) or np.ndim(value) != 1:
            raise self._refused(value, "a list of values (shape (-1,))")
        return [self._scalar(item, in_list=True) for item in value]

    def _scalar(self, value: Any, *, in_list: bool = False) -> Any:
        if value is None and not in_list:
            return None
        converted = _CONVERTERS[self.dtype](value)
        if converted is _REFUSED:
            raise self._refused(value)
        if self.dtype in _INT_RANGES:
            low, high = _INT_RANGES[self.dtype]
            if not low <= converted <= high:
                raise self._refused(value, f"a value within [{low}, {high}]")
        return converted

    def _refused(self, value: Any, wanted: str = "") -> InvalidParameterError:
        received = f"{_kind(value)} {_shown(value)}"
        detail = f"; it needs {wanted}" if wanted else ""
        return InvalidParameterError(
            f"{self.name!r} expects {self.describe()}, got {received}{detail}",
            field=self.name,
            expected=self.describe(),
            received=received,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form MLflow's ``ParamSpec.to_dict`` writes: name, type, default, shape."""
        return {
            "name": self.name,
            "type": self.dtype,
            "default": _jsonable(self.default),
            "shape": list(self.shape) if self.shape is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParamSpec:
        """Rebuild a spec from ``to_dict``'s form (``dtype`` is read as well as ``type``,
        as MLflow reads both)."""
        if "name" not in data or not ({"type", "dtype"} & data.keys()):
            raise InvalidParameterError(
                f"a parameter needs the keys name, type (or dtype) and default; got {sorted(data)}"
            )
        shape = data.get("shape")
        return cls(
            name=data["name"],
            dtype=str(data.get("type") or data.get("dtype")),
            default=data.get("default"),
            shape=tuple(int(d) for d in shape) if shape is not None else None,
        )


@dataclass(frozen=True)
class ResolvedParams:
    """A request's parameters after resolution: ``values`` holds every declared one
    (given or default); ``ignored`` names the given ones the model does not declare."""

    values: Mapping[str, Any]
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParamSchema:
    """The parameters a model declares, in declaration order."""

    params: tuple[ParamSpec, ...]
    _by_name: Mapping[str, ParamSpec] = field(init=False, repr=False, compare=False)
    _defaults: Mapping[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        params = tuple(self.params)
        names = [spec.name for spec in params]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidParameterError(f"Duplicated parameters found in schema: {duplicates}")
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "_by_name", MappingProxyType({s.name: s for s in params}))
        defaults = {spec.name: spec.default for spec in params}
        object.__setattr__(self, "_defaults", MappingProxyType(defaults))

    def __len__(self) -> int:
        return len(self.params)

    @property
    def names(self) -> list[str]:
        """The declared names, in order."""
        return list(self._by_name)

    @property
    def defaults(self) -> Mapping[str, Any]:
        """Every parameter's default (read-only, shared: what a request without params gets)."""
        return self._defaults

    def resolve(self, given: Mapping[str, Any] | None) -> ResolvedParams:
        """Convert the declared parameters in ``given``, fill in the defaults of the others
        and name the undeclared ones. Raises ``InvalidParameterError`` naming every
        parameter whose value does not fit (``field`` is the first of them)."""
        if not given:
            return ResolvedParams(self._defaults)
        values = dict(self._defaults)
        errors: list[InvalidParameterError] = []
        for spec in self.params:  # in declaration order, whatever the request's order
            if spec.name not in given:
                continue
            try:
                values[spec.name] = spec.convert(given[spec.name])
            except InvalidParameterError as error:
                errors.append(error)
        if errors:
            raise _invalid(errors)
        ignored = tuple(name for name in given if name not in self._by_name)
        return ResolvedParams(MappingProxyType(values), ignored)

    def to_dict(self) -> list[dict[str, Any]]:
        """The JSON form: a list of ``ParamSpec.to_dict``, as MLflow stores ``params``."""
        return [spec.to_dict() for spec in self.params]

    @classmethod
    def from_dict(cls, data: Iterable[Mapping[str, Any]]) -> ParamSchema:
        """Rebuild a schema from ``to_dict``'s form."""
        return cls(tuple(ParamSpec.from_dict(item) for item in data))

    @classmethod
    def infer(cls, values: Mapping[str, Any]) -> ParamSchema:
        """The schema of example values, each the parameter's default (MLflow's
        ``infer_signature(..., params=...)``): bool -> boolean, int -> long, float ->
        double, str -> string, date/datetime -> datetime, a flat list -> a list of its
        items' type."""
        if not isinstance(values, Mapping):
            raise InvalidParameterError(
                f"params must be a mapping of name to default value, got {type(values).__name__}"
            )
        specs = []
        for name, value in values.items():
            dtype, shape = _inferred_type(str(name), value)
            specs.append(ParamSpec(str(name), dtype, value, shape))
        return cls(tuple(specs))


def param_schema_of(
    declared: ParamSchema | Mapping[str, Any] | Iterable[ParamSpec],
) -> ParamSchema:
    """A ``ParamSchema`` from what a user may pass: a schema, ``ParamSpec``s, or a mapping
    of name to default value (types inferred, as ``ParamSchema.infer``)."""
    if isinstance(declared, ParamSchema):
        return declared
    if isinstance(declared, Mapping):
        return ParamSchema.infer(declared)
    specs = tuple(declared)
    if not all(isinstance(spec, ParamSpec) for spec in specs):
        raise InvalidParameterError(
            "params must be a ParamSchema, a list of ParamSpec, or a mapping of name to "
            "default value"
        )
    return ParamSchema(specs)


def ignored_warning(ignored: Iterable[str], schema: ParamSchema | None) -> str:
    """What a caller is told about parameters the model does not declare (MLflow's
    wording). Names are shown ASCII-escaped, so the text fits an HTTP header."""
    shown = _names(ignored)
    if schema is None:
        return (
            "`params` can only be specified at inference time if the model signature "
            "defines a params schema. This model does not define a params schema. "
            f"Ignoring provided params: {shown}"
        )
    return (
        f"Unrecognized params {shown} are ignored for inference. "
        f"Supported params are: {_names(schema.names)}."
    )


def _names(names: Iterable[str], limit: int = 10) -> str:
    listed = list(names)
    shown = ", ".join(ascii(name) for name in listed[:limit])
    more = f", ... and {len(listed) - limit} more" if len(listed) > limit else ""
    return f"[{shown}{more}]"


def _invalid(errors: list[InvalidParameterError]) -> InvalidParameterError:
    first = errors[0]
    return InvalidParameterError(
        "Invalid parameters found: " + "; ".join(error.message for error in errors),
        field=first.field,
        expected=first.expected,
        received=first.received,
    )


# ------------------------------------------------------------------------ conversions

_REFUSED = object()


def _to_bool(value: Any) -> Any:
    return bool(value) if isinstance(value, bool | np.bool_) else _REFUSED


def _to_int(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return _REFUSED
    return int(value) if isinstance(value, int | np.integer) else _REFUSED


def _to_float(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return _REFUSED
    return float(value) if isinstance(value, int | float | np.integer | np.floating) else _REFUSED


def _to_str(value: Any) -> Any:
    return str(value) if isinstance(value, str) else _REFUSED


def _to_datetime(value: Any) -> Any:
    if not isinstance(value, str | dt.date | np.datetime64):
        return _REFUSED
    try:
        converted = np.datetime64(value).item()
    except ValueError:
        return _REFUSED
    # numpy gives an int for values it cannot hold as a date (nanoseconds, odd strings).
    return converted if isinstance(converted, dt.date) else _REFUSED


_CONVERTERS = {
    "boolean": _to_bool,
    "integer": _to_int,
    "long": _to_int,
    "float": _to_float,
    "double": _to_float,
    "string": _to_str,
    "datetime": _to_datetime,
}


def _inferred_type(name: str, value: Any) -> tuple[str, tuple[int, ...] | None]:
    if isinstance(value, list | tuple | np.ndarray):
        items = list(value)
        if np.ndim(value) != 1 or not items:
            raise InvalidParameterError(
                f"cannot infer the type of parameter {name!r} from {_shown(value)}: a list "
                "default must be flat and non-empty",
                field=name,
            )
        types = {_scalar_type(name, item) for item in items}
        if types == {"long", "double"}:
            types = {"double"}
        if len(types) != 1:
            raise InvalidParameterError(
                f"parameter {name!r} mixes {sorted(types)} in its default list", field=name
            )
        return types.pop(), LIST_SHAPE
    return _scalar_type(name, value), None


def _scalar_type(name: str, value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | np.integer):
        return "long"
    if isinstance(value, float | np.floating):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.date | np.datetime64):
        return "datetime"
    raise InvalidParameterError(
        f"cannot infer the type of parameter {name!r} from {_shown(value)} "
        f"({type(value).__name__}); give a bool, int, float, str, date or a flat list of "
        "one of them, or declare it with ParamSpec",
        field=name,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _kind(value: Any) -> str:
    names = {bool: "boolean", str: "string", list: "list", dict: "object", type(None): "null"}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return names.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
