"""Search filters over model versions, e.g. ``name = 'churn' AND metrics.auc > 0.9``.

The grammar is a small subset of MLflow's search syntax::

    filter     := condition ( AND condition )*
    condition  := field operator value
    field      := name | version | status | flavor | alias | stage | created_by
                | tags.KEY | metrics.KEY | params.KEY      (KEY may be `quoted`)
    operator   := = | != | > | >= | < | <= | LIKE | ILIKE
    value      := 'text' | "text" | number | bare-word

``alias`` and ``stage`` test whether an alias points at the version, except for
``archived``, which is a status: ``stage = archived`` is ``status = 'archived'`` (every
archived version, not one of them).

Parsing is pure; each metadata store turns a ``VersionFilter`` into its own query
(after ``Condition.effective``), and ``VersionFilter.matches`` is the reference
semantics the contract tests hold every store to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelport.domain.entities import ModelVersion
from modelport.domain.names import Stage, is_archived_stage
from modelport.errors import InvalidFilterError

NUMERIC_OPS = ("=", "!=", ">", ">=", "<", "<=")
TEXT_OPS = ("=", "!=", "LIKE", "ILIKE")
MEMBERSHIP_OPS = ("=", "!=")

# field -> (operators, value kind)
_SIMPLE_FIELDS: dict[str, tuple[tuple[str, ...], str]] = {
    "name": (TEXT_OPS, "text"),
    "version": (NUMERIC_OPS, "int"),
    "status": (TEXT_OPS, "text"),
    "flavor": (TEXT_OPS, "text"),
    "created_by": (TEXT_OPS, "text"),
    "alias": (MEMBERSHIP_OPS, "text"),
    "stage": (MEMBERSHIP_OPS, "text"),
}
_KEYED_FIELDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "tags": ("tag", TEXT_OPS, "text"),
    "tag": ("tag", TEXT_OPS, "text"),
    "metrics": ("metric", NUMERIC_OPS, "number"),
    "metric": ("metric", NUMERIC_OPS, "number"),
    "params": ("param", TEXT_OPS, "text"),
    "param": ("param", TEXT_OPS, "text"),
}

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?![A-Za-z_])
    | (?P<op>!=|>=|<=|=|>|<)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:`[^`]+`|[A-Za-z0-9_.\-]+))?)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Condition:
    """One comparison: ``kind`` is a field name or ``tag``/``metric``/``param`` with ``key``."""

    kind: str
    op: str
    value: str | float
    key: str | None = None

    def effective(self) -> Condition:
        """The condition a store evaluates: ``alias``/``stage`` ``archived`` is a test of
        the status (archived is a status, not an alias), anything else itself."""
        if self.kind in ("alias", "stage") and is_archived_stage(self.value):
            return Condition(kind="status", op=self.op, value=self.value)
        return self

    def matches(self, version: ModelVersion) -> bool:
        """Reference semantics of this condition for one version."""
        condition = self.effective()
        if condition is not self:
            return condition.matches(version)
        if self.kind in ("alias", "stage"):
            has = self.value in version.aliases
            return has if self.op == "=" else not has
        actual = _field_value(self, version)
        if actual is None:
            return False
        return _compare(actual, self.op, self.value)


@dataclass(frozen=True)
class VersionFilter:
    """A conjunction of conditions; the empty filter matches every version."""

    conditions: tuple[Condition, ...] = ()

    def matches(self, version: ModelVersion) -> bool:
        """Whether ``version`` satisfies every condition."""
        return all(condition.matches(version) for condition in self.conditions)


def parse_filter(text: str | None) -> VersionFilter:
    """Parse a filter string; ``None`` or blank gives the empty filter."""
    if text is None or not text.strip():
        return VersionFilter()
    tokens = _tokenize(text)
    conditions: list[Condition] = []
    position = 0
    while True:
        condition, position = _parse_condition(text, tokens, position)
        conditions.append(condition)
        if position == len(tokens):
            return VersionFilter(tuple(conditions))
        kind, value = tokens[position]
        if kind != "word" or value.upper() != "AND":
            hint = " (OR is not supported)" if value.upper() == "OR" else ""
            raise InvalidFilterError(f"invalid filter {text!r}: expected AND, got {value!r}{hint}")
        position += 1


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise InvalidFilterError(
                f"invalid filter {text!r}: cannot read from {text[position:].strip()[:20]!r}"
            )
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _parse_condition(
    text: str, tokens: list[tuple[str, str]], position: int
) -> tuple[Condition, int]:
    if position + 3 > len(tokens):
        raise InvalidFilterError(
            f"invalid filter {text!r}: a condition is FIELD OPERATOR VALUE, e.g. metrics.auc > 0.9"
        )
    (field_kind, field), (op_kind, op), (value_kind, raw_value) = tokens[position : position + 3]
    if field_kind != "word":
        raise InvalidFilterError(f"invalid filter {text!r}: expected a field, got {field!r}")
    kind, key, allowed_ops, value_type = _resolve_field(text, field)
    op = op.upper()
    if op_kind not in ("op", "word") or op not in allowed_ops:
        raise InvalidFilterError(
            f"invalid filter {text!r}: {field} accepts the operators {', '.join(allowed_ops)}, "
            f"got {op!r}"
        )
    value = _convert_value(text, field, value_kind, raw_value, value_type)
    if kind == "stage" and value not in Stage._value2member_map_:
        stages = ", ".join(stage.value for stage in Stage)
        raise InvalidFilterError(f"invalid filter {text!r}: stage is one of {stages}")
    return Condition(kind=kind, op=op, value=value, key=key), position + 3


def _resolve_field(text: str, field: str) -> tuple[str, str | None, tuple[str, ...], str]:
    if field in _SIMPLE_FIELDS:
        ops, value_type = _SIMPLE_FIELDS[field]
        return field, None, ops, value_type
    prefix, _, key = field.partition(".")
    if prefix in _KEYED_FIELDS and key:
        kind, ops, value_type = _KEYED_FIELDS[prefix]
        return kind, key.strip("`"), ops, value_type
    fields = ", ".join([*_SIMPLE_FIELDS, "tags.KEY", "metrics.KEY", "params.KEY"])
    raise InvalidFilterError(f"invalid filter {text!r}: unknown field {field!r}; fields: {fields}")


def _convert_value(text: str, field: str, kind: str, raw: str, value_type: str) -> str | float:
    if kind == "string":
        raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
    elif kind not in ("number", "word"):
        raise InvalidFilterError(f"invalid filter {text!r}: expected a value after {field}")
    if value_type == "text":
        return raw
    try:
        number = float(raw)
    except ValueError:
        raise InvalidFilterError(
            f"invalid filter {text!r}: {field} compares with a number, got {raw!r}"
        ) from None
    if value_type == "int" and not number.is_integer():
        raise InvalidFilterError(f"invalid filter {text!r}: {field} compares with an integer")
    return number


def _field_value(condition: Condition, version: ModelVersion) -> str | float | None:
    if condition.kind == "tag":
        return version.tags.get(condition.key or "")
    if condition.kind == "metric":
        return version.metrics.get(condition.key or "")
    if condition.kind == "param":
        return version.params.get(condition.key or "")
    if condition.kind == "version":
        return float(version.version)
    if condition.kind == "status":
        return version.status.value
    value: str = getattr(version, condition.kind)
    return value


def like_to_regex(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """SQL LIKE semantics: ``%`` is any run of characters, ``_`` one character."""
    parts = (".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _compare(actual: str | float, op: str, expected: str | float) -> bool:
    if op in ("LIKE", "ILIKE"):
        regex = like_to_regex(str(expected), ignore_case=op == "ILIKE")
        return regex.fullmatch(str(actual)) is not None
    if isinstance(expected, float):
        if not isinstance(actual, float | int):
            return False
        number = float(actual)
        return {
            "=": number == expected,
            "!=": number != expected,
            ">": number > expected,
            ">=": number >= expected,
            "<": number < expected,
            "<=": number <= expected,
        }[op]
    return actual == expected if op == "=" else actual != expected
