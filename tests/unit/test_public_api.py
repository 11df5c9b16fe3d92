"""The public facade: a pinned, sorted __all__ and an import with no side effects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import modelport

PINNED = [
    "AuditEntry", "LoadedModel", "ModelRef", "ModelVersion", "ModelportError", "ParamSchema",
    "ParamSpec", "PythonModel", "PythonModelContext", "RegisteredModel", "Settings", "Signature",
    "__version__",
    "archive_version", "batch_predict", "connect", "delete_alias", "delete_model", "delete_version",
    "export", "get_audit_log", "get_model", "get_version", "infer_signature", "list_models",
    "list_versions", "load", "parse_ref", "promote", "register", "resolve", "save",
    "search_versions", "set_alias",
]  # fmt: skip


def test_all_is_pinned_and_sorted() -> None:
    assert modelport.__all__ == PINNED
    assert modelport.__all__ == sorted(modelport.__all__)


def test_every_public_name_resolves() -> None:
    for name in modelport.__all__:
        assert getattr(modelport, name) is not None, name


def test_import_is_light_and_has_no_side_effects(tmp_path: object) -> None:
    code = (
        "import sys, modelport;"
        "heavy = {'sqlalchemy', 'pandas', 'sklearn', 'torch', 'click', 'alembic'};"
        "heavy &= set(sys.modules);"
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_a_server_worker_does_not_import_the_statistics_of_rollouts() -> None:
    # Every worker imports the app at start; scipy.stats alone took half a second of the
    # cold start. The deployment results routes import it at their first request.
    code = (
        "import sys, modelport.server.http.app, modelport.bootstrap;"
        "print(sorted({'scipy.stats', 'statsmodels'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_opening_the_registry_does_not_import_scipy_stats(tmp_path: Path) -> None:
    # Every CLI command and batch job opens the registry (and its promotion gates);
    # scipy.stats took about a second of each. Only the statistics that need it load it.
    code = (
        "import sys, modelport.bootstrap as b; from modelport.config import Settings;"
        f"b.build_registry(Settings(home={str(tmp_path)!r})).close();"
        "print(sorted({'scipy.stats'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
