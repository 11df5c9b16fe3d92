"""PyFuncFlavor: custom PythonModel subclasses saved as code, loaded side by side."""

from __future__ import annotations

import datetime
import importlib
import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from modelport.errors import InvalidArgumentError, UnsupportedOperationError
from modelport.flavors.base import LoadContext, SaveContext
from modelport.flavors.pyfunc import PyFuncFlavor, PythonModel, PythonModelContext

FLAVOR = PyFuncFlavor()

MODEL_SOURCE = """
import json

import mp_scaler_helpers
from modelport.flavors.pyfunc import PythonModel


class ScalerModel(PythonModel):
    def load(self, context):
        self.factor = context.config.get("factor", 1)
        weights = context.artifacts.get("weights")
        self.offset = json.loads(weights.read_text())["offset"] if weights else 0

    def predict(self, batch):
        return mp_scaler_helpers.transform(batch) * self.factor + self.offset
"""

HELPERS_SOURCE = """
def transform(batch):
    return batch * {multiplier}
"""

Importer = Callable[[Path, dict[str, str], str], ModuleType]


@pytest.fixture
def write_and_import() -> Iterator[Importer]:
    """Write modules under a root, import one of them the way user code would (sys.path),
    and forget them afterwards."""
    roots: list[str] = []
    names: set[str] = set()

    def write_and_import_(root: Path, files: dict[str, str], module: str) -> ModuleType:
        for relative, source in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
            names.add(relative.split("/")[0].removesuffix(".py"))
        _forget(names)
        sys.path.insert(0, str(root))
        roots.append(str(root))
        importlib.invalidate_caches()
        return importlib.import_module(module)

    yield write_and_import_
    for root in roots:
        sys.path.remove(root)
    _forget(names)


def _forget(names: set[str]) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in names]:
        del sys.modules[name]


def _scaler_code(root: Path) -> list[Path]:
    return [root / "mp_scaler_model.py", root / "mp_scaler_helpers.py"]


def _scaler(write_and_import: Importer, root: Path, multiplier: int) -> PythonModel:
    files = {
        "mp_scaler_model.py": MODEL_SOURCE,
        "mp_scaler_helpers.py": HELPERS_SOURCE.format(multiplier=multiplier),
    }
    module = write_and_import(root, files, "mp_scaler_model")
    model: PythonModel = module.ScalerModel()
    return model


def _save(model: Any, directory: Path, **options: Any) -> Any:
    directory.mkdir(parents=True, exist_ok=True)
    return FLAVOR.save(model, directory, SaveContext(options=options))


def _load(directory: Path, saved: Any) -> Any:
    return FLAVOR.load(directory, saved.spec, LoadContext())


def test_describes_itself() -> None:
    assert (FLAVOR.name, FLAVOR.framework, FLAVOR.suffixes) == ("python", None, ())
    assert not FLAVOR.reads(Path("model.py"))
    with pytest.raises(UnsupportedOperationError):
        FLAVOR.import_file(Path("model.py"), Path("."), SaveContext())


def test_owns_python_models_only(write_and_import: Importer, tmp_path: Path) -> None:
    assert FLAVOR.owns(_scaler(write_and_import, tmp_path, 2))
    assert not FLAVOR.owns(object())


def test_base_predict_explains_it_must_be_implemented() -> None:
    with pytest.raises(NotImplementedError, match="must implement predict"):
        PythonModel().predict([1])


def test_round_trip_with_sibling_modules(write_and_import: Importer, tmp_path: Path) -> None:
    model = _scaler(write_and_import, tmp_path / "src", multiplier=2)
    package = tmp_path / "package"
    saved = _save(model, package, code_paths=_scaler_code(tmp_path / "src"))
    predictor = _load(package, saved)

    assert saved.spec["entry_point"] == "mp_scaler_model:ScalerModel"
    assert saved.libraries == ()
    np.testing.assert_array_equal(predictor.predict(np.array([1.0, 2.0])), [2.0, 4.0])
    assert not predictor.supports_proba
    with pytest.raises(UnsupportedOperationError, match="predict_proba"):
        predictor.predict_proba(np.array([1.0]))
    predictor.close()


def test_default_code_path_of_a_top_level_module_is_its_file(
    write_and_import: Importer, tmp_path: Path
) -> None:
    files = {
        "mp_alone.py": """
            from modelport.flavors.pyfunc import PythonModel

            class Alone(PythonModel):
                def predict(self, batch):
                    return [len(batch)]
        """,
        "mp_unrelated.py": "VALUE = 1\n",
    }
    module = write_and_import(tmp_path / "src", files, "mp_alone")
    saved = _save(module.Alone(), tmp_path / "package")

    assert sorted(p.name for p in (tmp_path / "package" / "code").iterdir()) == ["mp_alone.py"]
    assert _load(tmp_path / "package", saved).predict([1, 2, 3]) == [3]


def test_default_code_path_of_a_package_module_is_the_package(
    write_and_import: Importer, tmp_path: Path
) -> None:
    files = {
        "mp_pkg/__init__.py": "",
        "mp_pkg/maths.py": "def double(x):\n    return x * 2\n",
        "mp_pkg/models/__init__.py": "",
        "mp_pkg/models/doubler.py": """
            from modelport.flavors.pyfunc import PythonModel

            from ..maths import double

            class Doubler(PythonModel):
                def predict(self, batch):
                    return double(batch)
        """,
    }
    module = write_and_import(tmp_path / "src", files, "mp_pkg.models.doubler")
    package = tmp_path / "package"
    saved = _save(module.Doubler(), package)
    predictor = _load(package, saved)

    assert saved.spec["entry_point"] == "mp_pkg.models.doubler:Doubler"
    assert (package / "code" / "mp_pkg" / "models" / "doubler.py").is_file()
    assert not list(package.rglob("__pycache__")), "no bytecode copied or written"
    np.testing.assert_array_equal(predictor.predict(np.array([3])), [6])


def test_artifacts_and_config_reach_load(write_and_import: Importer, tmp_path: Path) -> None:
    files = {
        "mp_reader.py": """
            import json
            from modelport.flavors.pyfunc import PythonModel

            class Reader(PythonModel):
                def load(self, context):
                    self.context = context
                    self.weights = json.loads(context.artifacts["weights"].read_text())
                    self.words = sorted(p.name for p in context.artifacts["vocab"].iterdir())

                def predict(self, batch):
                    return {"config": dict(self.context.config), "weights": self.weights,
                            "words": self.words}
        """
    }
    module = write_and_import(tmp_path / "src", files, "mp_reader")
    (tmp_path / "weights.json").write_text(json.dumps({"w": [1, 2]}))
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "a.txt").write_text("a")
    (tmp_path / "vocab" / "b.txt").write_text("b")
    config = {"threshold": 0.5, "labels": ["no", "yes"], "nested": {"on": True, "x": None}}
    package = tmp_path / "package"

    saved = _save(
        module.Reader(),
        package,
        artifacts={"weights": tmp_path / "weights.json", "vocab": str(tmp_path / "vocab")},
        config=config,
    )
    config["threshold"] = 0.9  # later changes to the caller's dict are not saved
    result = _load(package, saved).predict(None)

    assert saved.spec["artifacts"] == {
        "weights": "artifacts/weights/weights.json",
        "vocab": "artifacts/vocab",
    }
    assert result == {
        "config": {"threshold": 0.5, "labels": ["no", "yes"], "nested": {"on": True, "x": None}},
        "weights": {"w": [1, 2]},
        "words": ["a.txt", "b.txt"],
    }


def test_two_versions_predict_side_by_side(write_and_import: Importer, tmp_path: Path) -> None:
    first_model = _scaler(write_and_import, tmp_path / "v1", 2)
    first = _save(first_model, tmp_path / "p1", code_paths=_scaler_code(tmp_path / "v1"))
    second_model = _scaler(write_and_import, tmp_path / "v2", 3)
    second = _save(
        second_model,
        tmp_path / "p2",
        code_paths=_scaler_code(tmp_path / "v2"),
        config={"factor": 10},
    )
    live_helpers = sys.modules["mp_scaler_helpers"]

    predictor_1 = _load(tmp_path / "p1", first)
    predictor_2 = _load(tmp_path / "p2", second)
    predictor_1_again = _load(tmp_path / "p1", first)

    batch = np.array([1.0, 2.0])
    np.testing.assert_array_equal(predictor_1.predict(batch), [2.0, 4.0])
    np.testing.assert_array_equal(predictor_2.predict(batch), [30.0, 60.0])
    np.testing.assert_array_equal(predictor_1_again.predict(batch), [2.0, 4.0])
    assert sys.modules["mp_scaler_helpers"] is live_helpers, "the caller's modules are restored"


def test_loading_leaves_no_modules_behind(write_and_import: Importer, tmp_path: Path) -> None:
    model = _scaler(write_and_import, tmp_path / "src", 2)
    saved = _save(model, tmp_path / "package", code_paths=_scaler_code(tmp_path / "src"))
    _forget({"mp_scaler_model", "mp_scaler_helpers"})
    path_before = list(sys.path)

    predictor = _load(tmp_path / "package", saved)

    assert "mp_scaler_model" not in sys.modules
    assert "mp_scaler_helpers" not in sys.modules
    assert sys.path == path_before
    np.testing.assert_array_equal(predictor.predict(np.array([5.0])), [10.0])


def test_predict_proba_when_defined(write_and_import: Importer, tmp_path: Path) -> None:
    files = {
        "mp_proba.py": """
            import numpy as np
            from modelport.flavors.pyfunc import PythonModel

            class Proba(PythonModel):
                def predict(self, batch):
                    return np.zeros(len(batch))

                def predict_proba(self, batch):
                    return np.full((len(batch), 2), 0.5)

                def close(self):
                    type(self).closed = True
        """
    }
    module = write_and_import(tmp_path / "src", files, "mp_proba")
    predictor = _load(tmp_path / "package", _save(module.Proba(), tmp_path / "package"))

    assert predictor.supports_proba
    np.testing.assert_array_equal(predictor.predict_proba(np.ones((3, 1))), np.full((3, 2), 0.5))
    predictor.close()
    assert predictor._model.closed


def test_requirements_become_libraries(write_and_import: Importer, tmp_path: Path) -> None:
    model = _scaler(write_and_import, tmp_path / "src", 2)
    requirements = ["numpy>=1.26", "pandas[performance]>=2.2", "numpy<3"]

    saved = _save(
        model,
        tmp_path / "package",
        code_paths=_scaler_code(tmp_path / "src"),
        requirements=requirements,
    )

    assert saved.libraries == ("numpy", "pandas")
    assert saved.spec["requirements"] == requirements


def test_bad_requirement_is_refused(write_and_import: Importer, tmp_path: Path) -> None:
    model = _scaler(write_and_import, tmp_path / "src", 2)

    with pytest.raises(InvalidArgumentError, match="not a valid pip requirement"):
        _save(model, tmp_path / "package", requirements=["numpy>>>1"])
    with pytest.raises(InvalidArgumentError, match="not a string"):
        _save(model, tmp_path / "package", requirements=[3])


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"when": datetime.date(2024, 1, 1)}, r"config\['when'\] is a date"),
        ({"weights": {1: 0.5}}, "non-string key 1"),
        ({"values": [1.0, float("nan")]}, r"config\['values'\]\[1\] is nan"),
        ({"array": np.arange(3)}, "is a ndarray"),
    ],
)
def test_non_json_config_is_refused(
    write_and_import: Importer, tmp_path: Path, config: dict[str, Any], problem: str
) -> None:
    model = _scaler(write_and_import, tmp_path / "src", 2)

    with pytest.raises(InvalidArgumentError, match=problem):
        _save(model, tmp_path / "package", config=config)


def test_class_in_main_is_refused(tmp_path: Path) -> None:
    main_model = type(
        "MainModel", (PythonModel,), {"__module__": "__main__", "predict": lambda self, b: b}
    )

    with pytest.raises(InvalidArgumentError, match="move it into a module"):
        _save(main_model(), tmp_path / "package")


def test_class_in_a_script_is_saved_when_code_paths_list_the_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "mp_train.py"
    script.write_text(
        textwrap.dedent("""
            from modelport.flavors.pyfunc import PythonModel

            class ScriptModel(PythonModel):
                def predict(self, batch):
                    return "from the script"

            if __name__ == "__main__":
                raise SystemExit("training would run here")
        """)
    )
    main = ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    exec(compile(script.read_text().split("if __name__")[0], str(script), "exec"), main.__dict__)
    package = tmp_path / "package"

    saved = _save(main.ScriptModel(), package, code_paths=[script])

    assert saved.spec["entry_point"] == "mp_train:ScriptModel"
    assert _load(package, saved).predict(None) == "from the script"
    _forget({"mp_train"})


def test_class_defined_in_a_function_is_refused(tmp_path: Path) -> None:
    class Local(PythonModel):
        def predict(self, batch: Any) -> Any:
            return batch

    with pytest.raises(InvalidArgumentError, match="inside a function"):
        _save(Local(), tmp_path / "package")


def test_class_needing_constructor_arguments_is_refused(
    write_and_import: Importer, tmp_path: Path
) -> None:
    files = {
        "mp_needy.py": """
            from modelport.flavors.pyfunc import PythonModel

            class Needy(PythonModel):
                def __init__(self, factor):
                    self.factor = factor

                def predict(self, batch):
                    return batch * self.factor
        """
    }
    module = write_and_import(tmp_path / "src", files, "mp_needy")

    with pytest.raises(InvalidArgumentError, match="constructible with no arguments"):
        _save(module.Needy(2), tmp_path / "package")


def test_model_without_predict_is_refused(write_and_import: Importer, tmp_path: Path) -> None:
    files = {"mp_lazy.py": "from modelport.flavors.pyfunc import PythonModel\n"
                           "class Lazy(PythonModel):\n    pass\n"}  # fmt: skip
    module = write_and_import(tmp_path / "src", files, "mp_lazy")

    with pytest.raises(InvalidArgumentError, match="must implement predict"):
        _save(module.Lazy(), tmp_path / "package")


def test_code_that_is_not_self_contained_is_refused(
    write_and_import: Importer, tmp_path: Path
) -> None:
    model = _scaler(write_and_import, tmp_path / "src", 2)

    # By default only the class's own module file is copied, not its sibling.
    with pytest.raises(InvalidArgumentError, match=r"'mp_scaler_helpers' .* add it to code_paths"):
        _save(model, tmp_path / "package")


def test_code_shadowing_the_standard_library_is_refused(
    write_and_import: Importer, tmp_path: Path
) -> None:
    model = _scaler(write_and_import, tmp_path / "src", 2)
    (tmp_path / "json.py").write_text("")

    with pytest.raises(InvalidArgumentError, match="standard-library"):
        _save(model, tmp_path / "package", code_paths=[tmp_path / "src", tmp_path / "json.py"])


def test_bad_options_are_refused(write_and_import: Importer, tmp_path: Path) -> None:
    model = _scaler(write_and_import, tmp_path / "src", 2)

    with pytest.raises(InvalidArgumentError, match="does not exist"):
        _save(model, tmp_path / "p1", code_paths=[tmp_path / "missing.py"])
    with pytest.raises(InvalidArgumentError, match="artifact name"):
        _save(model, tmp_path / "p2", artifacts={"../up": tmp_path / "src"})
    with pytest.raises(InvalidArgumentError, match="names must differ"):
        _save(model, tmp_path / "p3", code_paths=[tmp_path / "src", tmp_path / "src"])


def test_context_is_read_only(tmp_path: Path) -> None:
    context = PythonModelContext(model_dir=tmp_path, artifacts={}, config={})

    with pytest.raises(AttributeError):
        context.model_dir = Path()  # type: ignore[misc]
