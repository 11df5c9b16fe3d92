"""The pickle allow-list as the scikit-learn flavor relies on it.

Hand-built pickles (raw opcodes) try the tricks a real attacker would: dotted names,
functions hidden in allowed packages, and module/name strings computed at load time.
Each payload would create a marker file; the tests check it never appears.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelport.errors import CorruptModelFileError, UnsafeModelError
from modelport.flavors.safe_pickle import (
    GlobalPolicy,
    load_joblib,
    load_pickle,
    scan_globals,
    split_qualname,
)

# ------------------------------------------------------------- raw pickle building


def _text(value: str) -> bytes:
    """SHORT_BINUNICODE: push a string."""
    data = value.encode()
    return b"\x8c" + bytes([len(data)]) + data


def _stack_global(module: str, name: str) -> bytes:
    return _text(module) + _text(name) + b"\x93"  # STACK_GLOBAL


def _call(callable_ops: bytes, *arguments: str) -> bytes:
    """Push ``callable(*arguments)``: MARK, arguments, TUPLE, REDUCE."""
    return callable_ops + b"(" + b"".join(_text(a) for a in arguments) + b"tR"


def _program(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."  # PROTO 4 ... STOP


def _write(tmp_path: Path, data: bytes, name: str = "model.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


class _Reduce:
    """Pickles as ``function(*arguments)``."""

    def __init__(self, function: Any, *arguments: Any) -> None:
        self.function = function
        self.arguments = arguments

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.function, self.arguments


def _refused(path: Path, loader: Any = load_pickle) -> UnsafeModelError:
    with pytest.raises(UnsafeModelError) as caught:
        loader(path)
    return caught.value


# ----------------------------------------------------------------- sanity controls


def test_hand_built_pickles_run_when_loaded_naively(tmp_path: Path) -> None:
    # The control for the tests below: the opcode builder makes working pickles.
    marker = tmp_path / "ran"
    data = _program(_call(_stack_global("builtins", "exec"), f"open({str(marker)!r}, 'w').close()"))
    pickle.loads(data)
    assert marker.exists()


def test_ordinary_models_and_data_load(tmp_path: Path) -> None:
    features = np.random.default_rng(0).normal(size=(20, 2))
    model = LogisticRegression().fit(features, features[:, 0] > 0)
    frame = pd.DataFrame({"a": [1.5, 2.5], "b": pd.Categorical(["x", "y"])})
    bundle = {"model": model, "frame": frame, "ufunc": np.add, "dtype": np.dtype("float32")}
    for protocol in (2, 4, 5):
        loaded = load_pickle(_write(tmp_path, pickle.dumps(bundle, protocol=protocol)))
        np.testing.assert_array_equal(loaded["model"].predict(features), model.predict(features))
        pd.testing.assert_frame_equal(loaded["frame"], frame)
        assert loaded["ufunc"] is np.add
    joblib.dump(bundle, tmp_path / "bundle.joblib", compress=3)
    assert load_joblib(tmp_path / "bundle.joblib")["ufunc"] is np.add


# -------------------------------------------------------------------- dotted names


@pytest.mark.parametrize(
    "name",
    ["BaseEstimator.__init__", "BaseEstimator.__init__.__globals__", "BaseEstimator.__reduce__"],
)
def test_dotted_names_are_refused(tmp_path: Path, name: str) -> None:
    data = _program(_stack_global("sklearn.base", name) + b")R")
    error = _refused(_write(tmp_path, data))
    assert error.offending == (f"sklearn.base.{name}",)


def test_dotted_name_in_a_protocol_0_global_is_refused(tmp_path: Path) -> None:
    data = b"csklearn.base\nBaseEstimator.__init__\n(tR."
    error = _refused(_write(tmp_path, data))
    assert error.offending == ("sklearn.base.BaseEstimator.__init__",)


# ------------------------------------------------------------- numpy and sklearn


def test_numpy_functions_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "saved.npy"
    data = pickle.dumps(_Reduce(np.save, str(marker), [1, 2, 3]))
    error = _refused(_write(tmp_path, data))
    assert error.offending == ("numpy.save",)
    assert not marker.exists()


def test_numpy_memmap_is_refused_and_opens_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "mapped.bin"
    data = pickle.dumps(_Reduce(np.memmap, str(marker), "uint8", "w+", 0, (4,)))
    error = _refused(_write(tmp_path, data))
    assert error.offending == ("numpy.memmap",)
    assert not marker.exists()
    assert GlobalPolicy().refused([("numpy", "memmap")], source="x") == ["numpy.memmap"]


def test_numpy_ufuncs_are_allowed() -> None:
    policy = GlobalPolicy()
    assert policy.resolve("numpy", "add", source="x") is np.add
    assert policy.resolve("numpy", "log1p", source="x") is np.log1p
    assert policy.refused([("numpy", "exp"), ("numpy", "sqrt")], source="x") == []
    assert policy.refused([("numpy", "load"), ("numpy", "fromfile")], source="x") == [
        "numpy.load",
        "numpy.fromfile",
    ]


@pytest.mark.parametrize("function", ["load_iris", "fetch_openml", "dump_svmlight_file"])
def test_sklearn_dataset_functions_are_refused(tmp_path: Path, function: str) -> None:
    data = _program(_call(_stack_global("sklearn.datasets", function), "x"))
    error = _refused(_write(tmp_path, data))
    assert error.offending == (f"sklearn.datasets.{function}",)


def test_sklearn_dataset_writer_never_runs(tmp_path: Path) -> None:
    from sklearn.datasets import dump_svmlight_file

    marker = tmp_path / "written.svm"
    data = pickle.dumps(_Reduce(dump_svmlight_file, np.eye(2), np.array([0, 1]), str(marker)))
    _refused(_write(tmp_path, data))
    assert not marker.exists()


def test_sklearn_classes_and_score_functions_are_allowed() -> None:
    policy = GlobalPolicy()
    names = [
        ("sklearn.linear_model._logistic", "LogisticRegression"),
        ("sklearn.metrics", "accuracy_score"),
        ("sklearn.feature_selection", "f_classif"),
    ]
    assert policy.refused(names, source="x") == []


# ------------------------------------------------------------------ computed names


def test_stack_global_with_computed_strings_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    # builtins.str is allowed, so str("posix") computes the module name at load time;
    # a scanner reading only the literal strings would see no global here.
    module = _call(_stack_global("builtins", "str"), "posix")
    name = _call(_stack_global("builtins", "str"), "system")
    data = _program(module + name + b"\x93" + b"(" + _text(f"touch {marker}") + b"tR")
    assert ("?", "?") in scan_globals(data, "model.pkl")

    error = _refused(_write(tmp_path, data))
    assert "?.?" in error.offending
    assert not marker.exists()


def test_stack_global_through_the_memo_is_resolved(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    # Memoize the strings, drop them, and fetch them back just before STACK_GLOBAL.
    body = (
        _text("posix") + b"\x940"  # MEMOIZE (0), POP
        + _text("system") + b"\x940"  # MEMOIZE (1), POP
        + b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL
        + b"(" + _text(f"touch {marker}") + b"tR"
    )  # fmt: skip
    error = _refused(_write(tmp_path, _program(body)))
    assert error.offending == ("posix.system",)
    assert not marker.exists()


def test_stack_global_after_other_values_is_refused(tmp_path: Path) -> None:
    # A value pushed between the strings and STACK_GLOBAL hides which strings it uses.
    body = _text("posix") + _text("system") + b"N0" + b"\x93" + b")R"  # NONE, POP
    error = _refused(_write(tmp_path, _program(body)))
    assert "?.?" in error.offending


def test_every_offending_global_is_listed(tmp_path: Path) -> None:
    body = (
        b"(" + _stack_global("posix", "system") + _stack_global("builtins", "eval")
        + _stack_global("numpy", "save") + b"l"  # LIST
    )  # fmt: skip
    error = _refused(_write(tmp_path, _program(body)))
    assert set(error.offending) == {"posix.system", "builtins.eval", "numpy.save"}


# ------------------------------------------------------------------------- trust


def test_trust_entries_cover_exact_names_and_packages() -> None:
    policy = GlobalPolicy(["mypkg.*", "other.models.Net"])
    assert policy.is_trusted("mypkg", "Thing")
    assert policy.is_trusted("mypkg.sub.deep", "Thing")
    assert not policy.is_trusted("mypkgx", "Thing")
    assert policy.is_trusted("other.models", "Net")
    assert not policy.is_trusted("other.models", "Other")
    assert split_qualname("mypkg.sub.Thing") == ("mypkg.sub", "Thing")


def test_refusal_suggests_the_trust_entry(tmp_path: Path) -> None:
    error = _refused(_write(tmp_path, _program(_stack_global("posix", "system"))))
    assert "trust=['posix.system']" in str(error)
    assert "model.pkl" in str(error)


# ------------------------------------------------------------------ joblib files


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_object_array_payload_is_refused(tmp_path: Path, compress: int) -> None:
    marker = tmp_path / "ran"
    payload = np.empty(1, dtype=object)
    payload[0] = _Reduce(os.system, f"touch {marker}")
    joblib.dump({"weights": payload, "scale": np.ones(3)}, tmp_path / "m.joblib", compress=compress)
    error = _refused(tmp_path / "m.joblib", load_joblib)
    assert error.offending == ("posix.system",)
    assert not marker.exists()


def test_joblib_payload_in_plain_object_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    joblib.dump([_Reduce(os.system, f"touch {marker}")], tmp_path / "m.joblib")
    assert _refused(tmp_path / "m.joblib", load_joblib).offending == ("posix.system",)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["m.pkl", "m.joblib"])
def test_empty_files_are_corrupt(tmp_path: Path, name: str) -> None:
    loader = load_joblib if name.endswith(".joblib") else load_pickle
    with pytest.raises(CorruptModelFileError, match="empty"):
        loader(_write(tmp_path, b"", name))


def test_truncated_joblib_is_corrupt(tmp_path: Path) -> None:
    features = np.random.default_rng(0).normal(size=(20, 2))
    joblib.dump(LogisticRegression().fit(features, features[:, 0] > 0), tmp_path / "m.joblib")
    data = (tmp_path / "m.joblib").read_bytes()
    for cut in range(1, len(data), 3):
        with pytest.raises(CorruptModelFileError):
            load_joblib(_write(tmp_path, data[:cut], "cut.joblib"))


def test_only_model_classes_of_xgboost_and_lightgbm_are_allowed() -> None:
    from modelport.flavors.safe_pickle import GlobalPolicy

    policy = GlobalPolicy()
    assert (
        policy.refused(
            [("xgboost.sklearn", "XGBClassifier"), ("xgboost.core", "Booster")], source="f"
        )
        == []
    )
    assert (
        policy.refused(
            [("lightgbm.sklearn", "LGBMRegressor"), ("lightgbm.basic", "Booster")], source="f"
        )
        == []
    )
    assert policy.refused([("xgboost.tracker", "RabitTracker")], source="f") == [
        "xgboost.tracker.RabitTracker"
    ]
    assert policy.refused([("lightgbm.basic", "Dataset")], source="f") == ["lightgbm.basic.Dataset"]
