"""Pieces of OpenAPI operations for the registry routes that describe themselves
(their ``openapi`` class attribute: stats, signature, validate)."""

from __future__ import annotations

from typing import Any

TEXT = {"type": "string"}


def path_params(*names: str) -> list[dict[str, Any]]:
    """Required path parameters."""
    return [{"name": n, "in": "path", "required": True, "schema": TEXT} for n in names]


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional query parameter."""
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def answer(schema: dict[str, Any] | str, description: str) -> dict[str, Any]:
    """A JSON answer (``schema`` a component's name or a schema)."""
    body = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema
    return {"description": description, "content": {"application/json": {"schema": body}}}


def errors(*codes: int) -> dict[str, Any]:
    """The registry's error answers for ``codes``."""
    return {str(code): answer("RegistryError", "error") for code in codes}


def data_upload(what: str, formats: tuple[str, ...], *, required: bool) -> dict[str, Any]:
    """The ``format`` query parameter and the body of a data file upload."""
    fmt = {"name": "format", "in": "query", "required": required,
           "schema": {"type": "string", "enum": list(formats)},
           "description": f"the format of {what}"}  # fmt: skip
    body = {
        "required": required,
        "description": f"{what}: the file's bytes (at most [serve] max_upload_bytes)",
        "content": {"application/octet-stream": {"schema": {"type": "string",
                                                            "format": "binary"}}},
    }  # fmt: skip
    return {"parameter": fmt, "body": body}
