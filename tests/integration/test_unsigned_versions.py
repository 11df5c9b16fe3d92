"""A version without a signature is not quietly promoted to production.

Production is refused (``MissingSignatureError``, a ``ConflictError``) unless forced, and
a forced promotion says so in the audit trail; other aliases and staging take such a
version with a ``MissingSignatureWarning`` (a warning line on the CLI's stderr).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelport
from modelport.cli.main import main
from modelport.errors import (
    AliasNotFoundError,
    ConflictError,
    MissingSignatureError,
    MissingSignatureWarning,
)
from modelport.package.options import PackageOptions
from modelport.registry.service import RegistryService

Data = tuple[pd.DataFrame, np.ndarray]


@pytest.fixture
def model_file(churn_model: Any, tmp_path: Path) -> Path:
    import joblib

    path = tmp_path / "churn.joblib"
    joblib.dump(churn_model, path)
    return path


def register_unsigned(registry: RegistryService, model_file: Path) -> int:
    """A model file registered without a sample: no signature."""
    version = registry.register(model_file, "churn", PackageOptions(accelerate=False))
    assert version.signature is None
    return version.version


def test_production_refuses_a_version_without_a_signature(
    registry: RegistryService, model_file: Path
) -> None:
    number = register_unsigned(registry, model_file)
    for promote in (
        lambda: registry.promote("churn", number, "production"),
        lambda: registry.set_alias("churn", "production", number),
    ):
        with pytest.raises(MissingSignatureError) as info:
            promote()
        assert isinstance(info.value, ConflictError)
        assert (info.value.model, info.value.version) == ("churn", 1)
        message = info.value.message
        assert "version 1 of 'churn' has no signature" in message
        assert "sample" in message and "force" in message
    with pytest.raises(AliasNotFoundError):
        registry.resolve("churn@production")
    assert "stage.promote" not in [e.action for e in registry.get_audit_log("churn")]


def test_a_forced_promotion_goes_through_and_is_audited(
    registry: RegistryService, model_file: Path
) -> None:
    number = register_unsigned(registry, model_file)
    registry.promote("churn", number, "production", force=True)
    assert registry.resolve("churn@production").version == number
    entry = registry.get_audit_log("churn")[0]
    assert (entry.action, entry.target) == ("stage.promote", "production")
    assert entry.after is not None and entry.after["forced"] == ["signature"]

    registry.delete_alias("churn", "production")
    registry.set_alias("churn", "production", number, force=True)
    assert registry.get_audit_log("churn")[0].after["forced"] == ["signature"]  # type: ignore[index]


def test_a_signed_version_is_promoted_without_force_or_warning(
    registry: RegistryService, churn_model: Any, churn_data: Data
) -> None:
    frame, _ = churn_data
    registry.register(churn_model, "churn", PackageOptions(sample_input=frame, accelerate=False))
    registry.promote("churn", 1, "production")  # any warning would fail the test
    registry.set_alias("churn", "champion", 1)
    assert "forced" not in (registry.get_audit_log("churn")[1].after or {})


def test_staging_and_other_aliases_warn_but_take_it(
    registry: RegistryService, model_file: Path
) -> None:
    number = register_unsigned(registry, model_file)
    with pytest.warns(MissingSignatureWarning, match="version 1 of 'churn' has no signature"):
        registry.set_alias("churn", "champion", number)
    with pytest.warns(MissingSignatureWarning, match="refused in production"):
        registry.promote("churn", number, "staging")
    assert registry.get_model("churn").aliases == {"champion": 1, "staging": 1}


def test_the_public_functions_take_force(model_file: Path) -> None:
    number = modelport.register(model_file, "churn", accelerate=False).version
    with pytest.raises(MissingSignatureError, match="pass --force"):
        modelport.promote("churn", number, "production")
    modelport.promote("churn", number, "production", force=True)
    with pytest.warns(MissingSignatureWarning):
        modelport.set_alias("churn", "champion", number)
    modelport.set_alias("churn", "production", number, force=True)
    assert modelport.get_model("churn").aliases == {"champion": 1, "production": 1}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_the_cli_refuses_production_warns_on_aliases_and_takes_force(
    capsys: pytest.CaptureFixture[str], model_file: Path
) -> None:
    code, out, _ = run(capsys, "model", "register", str(model_file), "--name", "churn")
    assert code == 0 and "registered models:/churn/1" in out

    code, out, err = run(capsys, "version", "promote", "churn/1", "production")
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: version 1 of 'churn' has no signature")
    assert "--sample" in err and "--force" in err

    code, out, err = run(capsys, "alias", "set", "churn", "production", "1")
    assert code == 1 and "--force" in err

    code, out, err = run(capsys, "version", "promote", "churn/1", "production", "--force")
    assert code == 0 and "models:/churn/1 is now in production" in out
    assert "forced" in out
    code, out, _ = run(capsys, "audit", "list", "--model", "churn", "--json")
    assert json.loads(out)[0]["after"]["forced"] == ["signature"]

    code, out, err = run(capsys, "alias", "set", "churn", "champion", "1")
    assert code == 0 and "churn@champion -> 1" in out
    assert err.startswith("warning: version 1 of 'churn' has no signature")
    assert err.count("\n") == 1

    code, out, err = run(capsys, "version", "promote", "churn/1", "staging")
    assert code == 0 and err.startswith("warning: ")
    code, out, err = run(capsys, "alias", "set", "churn", "production", "1", "--force")
    assert code == 0 and err == ""
