"""``POST /api/registry/models/{name}/versions/{version}/stats?format=parquet|npy|csv``:
recompute a version's reference statistics from an uploaded training sample (what
``modelport version stats`` does over the database).

The body is the sample file's bytes (at most ``[serve] max_upload_bytes``). The server
loads the version from its own store, computes the statistics from the sample and the
version's predictions on it, and stores them beside the package: the registry's own
``recompute_reference_stats``, audited under the calling key. Needs ``deploy`` on the
model.
"""

from __future__ import annotations

from typing import Any, ClassVar

from modelport.domain.refs import ModelRef
from modelport.errors import InvalidRequestError
from modelport.server.http.access import Access
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Reply
from modelport.server.http.registry_endpoint import RegistryEndpoint, query, version_param
from modelport.server.http.registry_models import CHANGE
from modelport.server.http.registry_openapi_parts import answer, data_upload, errors, path_params
from modelport.server.http.registry_uploads import FORMATS, data_format, read_table, uploaded_file

_UPLOAD = data_upload("the training sample", FORMATS, required=True)


class ApiRegistryStats(RegistryEndpoint):
    """POST .../stats: the version with its new statistics (their key in its tags)."""

    access = Access(CHANGE, "name")
    openapi: ClassVar[dict[str, Any]] = {
        "post": {
            "summary": "Recompute the version's reference statistics from an uploaded "
            "training sample (stored beside the package)",
            "parameters": [*path_params("name", "version"), _UPLOAD["parameter"]],
            "requestBody": _UPLOAD["body"],
            "responses": {
                "200": answer("RegistryVersion", "the version, tagged with its new statistics"),
                **errors(400, 403, 404, 409, 413, 415, 422),
            },
        }
    }

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, number = scope["path_params"]["name"], version_param(scope)
        suffix = data_format(query(scope, ("format",)), FORMATS)
        await self.call(scope, lambda r: r.get_version(name, number))  # 404 before the upload
        async with uploaded_file(self, scope, receive, suffix, "the sample") as path:
            if path is None:
                raise InvalidRequestError("the body must carry the sample file", field="body")
            sample = path
            updated = await self.call(
                scope,
                lambda r: r.recompute_reference_stats(
                    ModelRef(name, version=number), read_table(sample)
                ),
            )
        return Reply.json(updated.to_dict())
