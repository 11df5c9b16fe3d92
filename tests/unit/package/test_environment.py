from importlib import metadata

import pytest

from modelport.errors import EnvironmentMismatchError
from modelport.package.environment import (
    capture_environment,
    compare_environment,
    enforce_environment,
)


def test_capture_pins_installed_versions_in_order() -> None:
    env = capture_environment(["numpy", "pandas", "numpy", "not-a-real-dist"], "numpy")
    assert list(env.libraries) == ["numpy", "pandas"]
    assert env.requirements == [
        f"numpy=={metadata.version('numpy')}",
        f"pandas=={metadata.version('pandas')}",
    ]
    assert env.framework == "numpy"


def test_a_meta_path_changing_under_the_lookup_still_finds_installed_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a lookup sees while another thread's import takes an entry off sys.meta_path:
    # the path finder skipped. An installed framework must not read as "not installed".
    import sys

    from modelport.package.environment import installed_version

    without_path_finder = [f for f in sys.meta_path if not hasattr(f, "find_distributions")]
    monkeypatch.setattr(sys, "meta_path", without_path_finder)
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("numpy")  # the race, as the standard library answers it
    assert installed_version("numpy") == numpy_version()
    assert installed_version("not-a-real-dist") is None


def numpy_version() -> str:
    import numpy

    return numpy.__version__


def test_same_environment_has_no_differences() -> None:
    report = compare_environment(capture_environment(["numpy"], "numpy"))
    assert report.differences == () and report.serious == ()


def test_framework_minor_difference_is_serious_and_strict_refuses() -> None:
    recorded = capture_environment(["numpy", "pandas"], "numpy").model_copy(
        update={"libraries": {"numpy": "1.0.0", "pandas": "0.1.0"}}
    )
    report = compare_environment(recorded)
    assert len(report.differences) == 2
    assert report.serious == (f"numpy 1.0.0 recorded, {metadata.version('numpy')} installed",)
    with pytest.raises(EnvironmentMismatchError, match="version_check='warn'"):
        enforce_environment(report, "strict")
    enforce_environment(report, "warn")  # reported, not raised


def test_patch_difference_is_reported_but_not_serious() -> None:
    major, minor, *_ = metadata.version("numpy").split(".")
    recorded = capture_environment(["numpy"], "numpy").model_copy(
        update={"libraries": {"numpy": f"{major}.{minor}.999"}}
    )
    report = compare_environment(recorded)
    assert report.differences and not report.serious
