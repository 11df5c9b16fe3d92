"""``POST /api/registry/models/{name}/versions/{version}/verify``: the control plane
verifies a version's stored package against its signature with public keys the client
sends, and records the outcome in the audit trail (``version.verify``, passed or failed,
under the calling key), as ``modelport version verify`` does over the database.

``RegistryClient.verify_version`` verifies its own download first (it trusts no server
with that) and then asks here, so that the dashboard's "signature verified" status and
the audit trail show a verification made through the URL too. The keys arrive as PEM
text with the file names the client knows them by, so that a failure names the same
files on both sides; they are written to a private scratch directory for the check
and removed after it. Needs ``read`` on the model (verifying changes nothing).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from modelport.domain.refs import ModelRef
from modelport.errors import InvalidArgumentError, InvalidRequestError
from modelport.registry.service import RegistryService
from modelport.server.http.access import Access
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Reply
from modelport.server.http.registry_endpoint import RegistryEndpoint, field_of, version_param
from modelport.server.http.registry_models import READ
from modelport.server.http.registry_openapi_parts import errors, path_params

MAX_KEYS = 16
_MAX_PEM_CHARS = 16_384
# A key's name as the client's file system had it: a plain file name, nothing more.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object",
        "required": ["public_keys"],
        "properties": {"public_keys": {
            "type": "array", "minItems": 1, "maxItems": MAX_KEYS,
            "items": {"type": "object", "required": ["name", "pem"], "properties": {
                "name": {"type": "string", "description": "the key file's name"},
                "pem": {"type": "string", "description": "the public key, PEM"},
            }},
        }},
    }}},
}  # fmt: skip

_VERIFIED = {
    "description": "the signature holds: the fingerprint and file name of the key that made it",
    "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {
            "model": {"type": "string"}, "version": {"type": "integer"},
            "verified": {"type": "boolean"}, "key": {"type": "string"},
            "public_key": {"type": "string"},
        },
    }}},
}  # fmt: skip


class ApiRegistryVerify(RegistryEndpoint):
    """POST public keys: the stored package verified against its signature, audited."""

    access = Access(READ, "name")
    openapi: ClassVar[dict[str, Any]] = {
        "post": {
            "summary": "Verify the stored package against its signature with the given "
            "public keys (audited as version.verify, passed or failed)",
            "parameters": path_params("name", "version"),
            "requestBody": _BODY,
            "responses": {"200": _VERIFIED, **errors(400, 403, 404, 409, 415, 422)},
        }
    }

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, number = scope["path_params"]["name"], version_param(scope)
        data = await self.json_body(scope, receive, ("public_keys",))
        keys = _keys(field_of(data, "public_keys", list, required=True))
        answer: dict[str, Any] = await self.call(
            scope, lambda registry: _verify(registry, ModelRef(name, version=number), keys)
        )
        return Reply.json(answer)


def _keys(items: list[Any]) -> list[tuple[str, str]]:
    if not 1 <= len(items) <= MAX_KEYS:
        raise InvalidRequestError(
            f"public_keys takes 1 to {MAX_KEYS} keys, not {len(items)}", field="public_keys"
        )
    keys = []
    for index, item in enumerate(items):
        where = f"public_keys[{index}]"
        if not isinstance(item, dict) or set(item) != {"name", "pem"}:
            raise InvalidRequestError(
                f'{where} must be {{"name": FILE NAME, "pem": PUBLIC KEY}}', field=where
            )
        name, pem = item["name"], item["pem"]
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidRequestError(
                f"{where}.name must be a plain file name (letters, digits, '.', '_', '-')",
                field=f"{where}.name",
            )
        if not isinstance(pem, str) or not 0 < len(pem) <= _MAX_PEM_CHARS:
            raise InvalidRequestError(
                f"{where}.pem must be a PEM public key of at most {_MAX_PEM_CHARS} characters",
                field=f"{where}.pem",
            )
        keys.append((name, pem))
    if len({name for name, _ in keys}) != len(keys):
        raise InvalidRequestError("public_keys names a file twice", field="public_keys")
    return keys


def _verify(registry: RegistryService, ref: ModelRef, keys: list[tuple[str, str]]) -> Any:
    with tempfile.TemporaryDirectory(prefix="modelport-verify-keys-") as scratch:
        paths = []
        for name, pem in keys:
            path = Path(scratch) / name
            path.write_text(pem, encoding="utf-8")
            paths.append(path)
        try:
            verified = registry.verify_version(ref, paths)  # audited, passed or failed
        except InvalidArgumentError as exc:  # a key that is not one: named as sent
            raise InvalidRequestError(
                exc.message.replace(scratch + "/", ""), field="public_keys"
            ) from None
        version = registry.resolve(ref)
        return {
            "model": version.name,
            "version": version.version,
            "verified": True,
            "key": verified.fingerprint,
            "public_key": verified.public_key.name,
        }
