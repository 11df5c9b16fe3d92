"""Checks of LightGBM's text model format, before LightGBM itself parses it.

LightGBM parses trees in an OpenMP loop where a failed check terminates the process,
reads arrays without checking their lengths, and slices the text by ``tree_sizes``.
So every tree is checked here first: its lines, the numbers in them, array lengths,
and the indices that prediction follows (children, features, categorical bounds).
"""

from __future__ import annotations

import itertools
import math
import re
import sys
from pathlib import Path

from modelport.errors import CorruptModelFileError

_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:inf|nan)", re.I)
_INT = re.compile(r"[-+]?\d{1,10}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TREE_LINE = re.compile(r"[a-z_]+=[^=]*")
_PARAMETER = re.compile(r"\[[^:\]]+: [^\n]*\]")
_INT_ARRAYS = (
    "split_feature", "decision_type", "left_child", "right_child", "internal_count",
    "leaf_count", "num_features", "cat_boundaries", "cat_threshold", "leaf_features",
)  # fmt: skip
_FLOAT_ARRAYS = (
    "split_gain", "threshold", "internal_value", "internal_weight", "leaf_value",
    "leaf_weight", "leaf_const", "leaf_coeff",
)  # fmt: skip
_NODE_ARRAYS = (
    "split_feature", "split_gain", "threshold", "decision_type", "left_child", "right_child",
    "internal_value", "internal_weight", "internal_count",
)  # fmt: skip
_LEAF_ARRAYS = ("leaf_value", "leaf_weight", "leaf_count", "leaf_const", "num_features")
_REQUIRED_NODE_ARRAYS = ("left_child", "right_child", "split_feature", "threshold")
_REQUIRED_LINEAR_ARRAYS = ("leaf_const", "num_features", "leaf_features", "leaf_coeff")
_TREE_KEYS = frozenset(
    {*_INT_ARRAYS, *_FLOAT_ARRAYS, "num_leaves", "num_cat", "is_linear", "shrinkage"}
)


def check_model_text(path: Path) -> None:
    """Raise ``CorruptModelFileError`` unless ``path`` holds a complete LightGBM model
    text whose trees are consistent (numbers, array lengths, child and feature indices)."""
    try:
        text = path.read_bytes().decode("utf-8")
        # LightGBM also ends lines at "\r" and C strings at NUL; it writes neither.
        if _CONTROL.search(text):
            raise ValueError("it holds control characters or Windows line endings")
        _check_lines(text.split("\n"))
    except (ValueError, IndexError, KeyError) as exc:
        raise CorruptModelFileError(
            f"{path.name} is not a valid LightGBM model: {exc}", field=path.name
        ) from None


def _check_lines(lines: list[str]) -> None:
    if lines[0].rstrip("\r") != "tree":
        raise ValueError("the first line is not 'tree'")
    # LightGBM reads past the end of a text that does not end with a newline.
    if "end of trees" not in lines or lines[-1]:
        raise ValueError("it is truncated (no 'end of trees' line, or no final newline)")
    end = lines.index("end of trees")
    starts = [i for i in range(end) if lines[i].startswith("Tree=")]
    header = _key_values(lines[1 : starts[0] if starts else end])
    n_features = _check_header(header)
    blocks = [lines[a:b] for a, b in zip(starts, [*starts[1:], end], strict=True)]
    sizes = [int(size) for size in header.get("tree_sizes", "").split()]
    # LightGBM slices the text by these byte sizes, so they must match exactly.
    if "tree_sizes" in header and sizes != [len("\n".join(b).encode()) + 1 for b in blocks]:
        raise ValueError("tree_sizes does not match the trees in the file")
    for number, block in enumerate(blocks):
        if block[0] != f"Tree={number}":
            raise ValueError(f"expected Tree={number}, found {block[0]!r}")
        _check_tree(_tree_arrays(block[1:], number), n_features, number)
    _check_parameters(lines[end:])


def _check_header(header: dict[str, str]) -> int:
    """Check the counts prediction relies on; return the number of features."""
    n_classes, n_features = int(header["num_class"]), int(header["max_feature_idx"]) + 1
    per_iteration = int(header.get("num_tree_per_iteration", n_classes))
    int(header["label_index"])
    # LightGBM divides by the trees per iteration and writes one output per class.
    if n_features < 1 or not 1 <= per_iteration <= n_classes:
        raise ValueError("the header has inconsistent class, tree or feature counts")
    # LightGBM reads the objective's first word without checking there is one.
    if "objective" in header and not header["objective"].split():
        raise ValueError("the objective is empty")
    return n_features


def _key_values(lines: list[str]) -> dict[str, str]:
    pairs = (line.partition("=") for line in lines if line.strip())
    return {key: value for key, sep, value in pairs if sep}


def _tree_arrays(lines: list[str], number: int) -> dict[str, list[float]]:
    """The tree's fields as numbers; LightGBM stops reading a tree at its first blank
    line, so everything after it must be blank too."""
    blank = lines.index("") if "" in lines else len(lines)
    if any(lines[blank:]) or not all(_TREE_LINE.fullmatch(line) for line in lines[:blank]):
        raise ValueError(f"tree {number} has a malformed line")
    fields = dict(line.split("=") for line in lines[:blank])
    unknown = set(fields) - _TREE_KEYS
    if unknown:
        raise ValueError(f"tree {number} has unknown fields {sorted(unknown)}")
    arrays: dict[str, list[float]] = {}
    for name, text in fields.items():
        pattern = _INT if name in (*_INT_ARRAYS, "num_leaves", "num_cat", "is_linear") else _FLOAT
        values = text.split()
        if not all(pattern.fullmatch(value) and _exact_double(value) for value in values):
            raise ValueError(f"tree {number}: {name} holds something other than numbers")
        arrays[name] = [float(value) for value in values]
    return arrays


def _exact_double(token: str) -> bool:
    """Whether ``token`` reads as a double without over- or underflow (``std::stod``,
    which LightGBM uses for some arrays, throws on either, aborting the process)."""
    if token.lstrip("+-").lower() in ("inf", "nan"):
        return True
    value = float(token)
    if value == 0:
        return not re.search(r"[1-9]", re.split("[eE]", token)[0])
    return math.isfinite(value) and abs(value) >= sys.float_info.min


def _check_tree(tree: dict[str, list[float]], n_features: int, number: int) -> None:
    leaves, n_cat = int(tree["num_leaves"][0]), int(tree["num_cat"][0])
    linear = tree.get("is_linear", [0]) == [1]
    if leaves < 1 or n_cat < 0 or tree.get("is_linear", [0]) not in ([0], [1]):
        raise ValueError(f"tree {number} has {leaves} leaves and {n_cat} categorical splits")
    parsed = leaves > 1 or linear  # LightGBM reads nothing more for a single leaf
    required = (*(_REQUIRED_NODE_ARRAYS if parsed else ()), *(_REQUIRED_LINEAR_ARRAYS * linear))
    for name in ("leaf_value", *required):
        if name not in tree:
            raise ValueError(f"tree {number} has no {name}")
    lengths = dict.fromkeys(_NODE_ARRAYS, leaves - 1) | dict.fromkeys(_LEAF_ARRAYS, leaves)
    if any(count < 0 for count in tree.get("num_features", [])):
        raise ValueError(f"tree {number}: num_features has a negative count")
    linear_total = int(sum(tree.get("num_features", [])))
    lengths |= {"leaf_features": linear_total, "leaf_coeff": linear_total}
    for name, length in lengths.items():
        if name in tree and (parsed or name == "leaf_value") and len(tree[name]) != length:
            raise ValueError(f"tree {number}: {name} should have {length} values")
    if leaves > 1:
        _check_indices(tree, n_features, n_cat, number)
    if linear and not all(0 <= feature < n_features for feature in tree["leaf_features"]):
        raise ValueError(f"tree {number}: a linear leaf names a feature the model lacks")


def _check_indices(tree: dict[str, list[float]], n_features: int, n_cat: int, number: int) -> None:
    nodes = int(tree["num_leaves"][0]) - 1
    children = tree["left_child"] + tree["right_child"]
    if not all(-nodes - 1 <= child < nodes for child in children):
        raise ValueError(f"tree {number}: a child index points outside the tree")
    _check_links(tree["left_child"], tree["right_child"], number)
    if not all(0 <= feature < n_features for feature in tree["split_feature"]):
        raise ValueError(f"tree {number}: a split names a feature the model lacks")
    kinds = tree.get("decision_type", [0.0] * nodes)
    if not all(0 <= kind < 16 for kind in kinds):  # four flag bits
        raise ValueError(f"tree {number}: a decision_type is out of range")
    cats = [t for kind, t in zip(kinds, tree["threshold"], strict=True) if int(kind) & 1]
    if not all(0 <= index < n_cat for index in cats):
        raise ValueError(f"tree {number}: a categorical split points outside cat_boundaries")
    if n_cat:
        bounds = tree.get("cat_boundaries", [])
        in_order = bounds[:1] == [0] and all(a <= b for a, b in itertools.pairwise(bounds))
        if len(bounds) != n_cat + 1 or not in_order:
            raise ValueError(f"tree {number}: cat_boundaries is malformed")
        if len(tree.get("cat_threshold", [])) != int(bounds[-1]):
            raise ValueError(f"tree {number}: cat_threshold disagrees with cat_boundaries")


def _check_links(left: list[float], right: list[float], number: int) -> None:
    """Every node and leaf must hang below the root exactly once: a child pointing back
    up the tree would make prediction loop forever."""
    pending, nodes, leaves = [0], set(), set()
    while pending:
        node = pending.pop()
        if node in nodes:
            raise ValueError(f"tree {number}: node {node} is reached twice")
        nodes.add(node)
        for child in (int(left[node]), int(right[node])):
            if child >= 0:
                pending.append(child)
            elif ~child in leaves:
                raise ValueError(f"tree {number}: leaf {~child} is reached twice")
            else:
                leaves.add(~child)
    if len(nodes) != len(left) or len(leaves) != len(left) + 1:
        raise ValueError(f"tree {number}: some nodes or leaves are not in the tree")


def _check_parameters(lines: list[str]) -> None:
    # LightGBM indexes into each "[key: value]" line without checking its shape.
    if "parameters:" not in lines:
        return
    start = lines.index("parameters:") + 1
    if "end of parameters" not in lines[start:]:
        raise ValueError("it has no 'end of parameters' line (the file is truncated)")
    for line in lines[start : lines.index("end of parameters", start)]:
        if line and not _PARAMETER.fullmatch(line):
            raise ValueError(f"malformed parameter line {line[:60]!r}")
