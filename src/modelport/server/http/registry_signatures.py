"""``/api/registry/models/{name}/versions/{version}/signature``: a version's OpenSSF
model signature over HTTP, for clients that sign and verify on their own machine.

The private key never leaves the client: ``RegistryClient.sign_version`` downloads the
package (every digest checked), signs it there and POSTs only the signature and the
signer's public key (``{"signature": BASE64, "public_key": PEM}``). The server stores
it only once it holds for the package *as stored*: the package checked against the
digests recorded at registration, then the signature verified with that public key over
exactly those files (``SignatureVerificationError`` otherwise: 409, naming the file).
It is audited as ``version.sign`` under the calling key, like a local signing. Needs
``deploy`` on the model.

``GET`` streams the stored signature (checked against the sha256 its tag records) for
``modelport version verify``, which checks it against the downloaded package locally.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, ClassVar

from modelport.domain.entities import ModelVersion
from modelport.domain.refs import ModelRef
from modelport.errors import InvalidRequestError, SignatureVerificationError
from modelport.package.signing import SIGNATURE_FILE
from modelport.registry.service import RegistryService
from modelport.registry.signatures import SIGNATURE_TAG
from modelport.server.http.access import Access
from modelport.server.http.asgi import OCTET_STREAM, Receive, Scope
from modelport.server.http.endpoint import Reply
from modelport.server.http.registry_endpoint import (
    RegistryEndpoint,
    field_of,
    version_param,
)
from modelport.server.http.registry_models import CHANGE, READ
from modelport.server.http.registry_openapi_parts import TEXT, answer, errors, path_params

_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object",
        "required": ["signature", "public_key"],
        "properties": {
            "signature": {"type": "string", "description": "the Sigstore bundle, base64"},
            "public_key": {"type": "string", "description": "the signer's public key, PEM"},
        },
    }}},
}  # fmt: skip


class ApiRegistrySignature(RegistryEndpoint):
    """GET the stored signature; POST a signature made on the client."""

    access = Access(READ, "name", writes=CHANGE)
    openapi: ClassVar[dict[str, Any]] = {
        "get": {
            "summary": "The version's stored model signature (X-Modelport-Sha256)",
            "parameters": path_params("name", "version"),
            "responses": {
                "200": {
                    "description": f"{SIGNATURE_FILE}, a Sigstore bundle",
                    "content": {"application/octet-stream": {"schema": TEXT}},
                },
                **errors(403, 404, 409),
            },
        },
        "post": {
            "summary": "Store a signature made on the client, once it holds for the stored "
            "package with the given public key (audited as version.sign)",
            "parameters": path_params("name", "version"),
            "requestBody": _BODY,
            "responses": {
                "200": answer("RegistryVersion", "the version, tagged with its signature"),
                **errors(400, 403, 404, 409, 415, 422),
            },
        },
    }

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, number = scope["path_params"]["name"], version_param(scope)
        if scope["method"] == "POST":
            data = await self.json_body(scope, receive, ("signature", "public_key"))
            signature = _base64(field_of(data, "signature", str, required=True))
            public_key = field_of(data, "public_key", str, required=True).encode()
            updated: ModelVersion = await self.call(
                scope,
                lambda r: r.attach_signature(ModelRef(name, version=number), signature, public_key),
            )
            return Reply.json(updated.to_dict())
        body, digest = await self.call(scope, lambda r: _stored(r, name, number))
        return Reply(200, body, OCTET_STREAM, ((b"x-modelport-sha256", digest.encode()),))


def _stored(registry: RegistryService, name: str, number: int) -> tuple[bytes, str]:
    version = registry.get_version(name, number)
    path = registry.signature_file(version)  # checked against its tag's sha256
    if path is None:
        raise SignatureVerificationError(
            f"{name}/{number} is not signed (no {SIGNATURE_FILE}); sign it with: "
            f"modelport version sign {name}/{number} --key KEY.pem",
            reason="unsigned",
            field=SIGNATURE_FILE,
            model=name,
            version=number,
        )
    return path.read_bytes(), version.tags[SIGNATURE_TAG].partition(" ")[2]


def _base64(text: str) -> bytes:
    try:
        body = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("signature must be the signature file in base64",
                                  field="signature") from None  # fmt: skip
    if not body:  # its size is bounded by the JSON body's (1 MiB)
        raise InvalidRequestError("signature is empty", field="signature")
    return body
