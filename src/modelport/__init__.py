"""modelport: package, register, serve, roll out and monitor machine-learning models.

The public names are loaded on first use, so ``import modelport`` stays fast and has
no side effects (the CLI's start-up time depends on it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelport.api import (
        archive_version,
        batch_predict,
        connect,
        delete_alias,
        delete_model,
        delete_version,
        export,
        get_audit_log,
        get_model,
        get_version,
        list_models,
        list_versions,
        load,
        promote,
        register,
        resolve,
        save,
        search_versions,
        set_alias,
    )
    from modelport.config import Settings
    from modelport.domain.entities import AuditEntry, ModelVersion, RegisteredModel
    from modelport.domain.params import ParamSchema, ParamSpec
    from modelport.domain.refs import ModelRef, parse_ref
    from modelport.domain.signature import Signature
    from modelport.errors import ModelportError
    from modelport.flavors.pyfunc import PythonModel, PythonModelContext
    from modelport.package.loaded import LoadedModel
    from modelport.package.sample_schema import infer_signature

__version__ = "0.1.0"

_EXPORTS = {
    "AuditEntry": "modelport.domain.entities",
    "LoadedModel": "modelport.package.loaded",
    "ModelRef": "modelport.domain.refs",
    "ModelVersion": "modelport.domain.entities",
    "ModelportError": "modelport.errors",
    "ParamSchema": "modelport.domain.params",
    "ParamSpec": "modelport.domain.params",
    "PythonModel": "modelport.flavors.pyfunc",
    "PythonModelContext": "modelport.flavors.pyfunc",
    "RegisteredModel": "modelport.domain.entities",
    "Settings": "modelport.config",
    "Signature": "modelport.domain.signature",
    "archive_version": "modelport.api",
    "batch_predict": "modelport.api",
    "connect": "modelport.api",
    "delete_alias": "modelport.api",
    "delete_model": "modelport.api",
    "delete_version": "modelport.api",
    "export": "modelport.api",
    "get_audit_log": "modelport.api",
    "get_model": "modelport.api",
    "get_version": "modelport.api",
    "infer_signature": "modelport.package.sample_schema",
    "list_models": "modelport.api",
    "list_versions": "modelport.api",
    "load": "modelport.api",
    "parse_ref": "modelport.domain.refs",
    "promote": "modelport.api",
    "register": "modelport.api",
    "resolve": "modelport.api",
    "save": "modelport.api",
    "search_versions": "modelport.api",
    "set_alias": "modelport.api",
}

__all__ = [
    "AuditEntry",
    "LoadedModel",
    "ModelRef",
    "ModelVersion",
    "ModelportError",
    "ParamSchema",
    "ParamSpec",
    "PythonModel",
    "PythonModelContext",
    "RegisteredModel",
    "Settings",
    "Signature",
    "__version__",
    "archive_version",
    "batch_predict",
    "connect",
    "delete_alias",
    "delete_model",
    "delete_version",
    "export",
    "get_audit_log",
    "get_model",
    "get_version",
    "infer_signature",
    "list_models",
    "list_versions",
    "load",
    "parse_ref",
    "promote",
    "register",
    "resolve",
    "save",
    "search_versions",
    "set_alias",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelport' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return list(__all__)
