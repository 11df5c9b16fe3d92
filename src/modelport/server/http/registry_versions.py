"""``/api/registry/models/{name}/versions/...``: read, tag, archive, promote and delete
versions, and read their manifest (registration and files: ``registry_transfer``)."""

from __future__ import annotations

from modelport.server.http.access import Access
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Reply
from modelport.server.http.registry_endpoint import (
    RegistryEndpoint,
    field_of,
    query,
    string_map,
    version_param,
)
from modelport.server.http.registry_models import CHANGE, READ
from modelport.server.http.registry_transfer import register


class ApiRegistryVersion(RegistryEndpoint):
    """GET, DELETE /api/registry/models/{name}/versions/{version}."""

    access = Access(READ, "name", writes=CHANGE)

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, number = scope["path_params"]["name"], version_param(scope)
        if scope["method"] == "DELETE":
            await self.call(scope, lambda r: r.delete_version(name, number))
            return Reply.json({"deleted": {"name": name, "version": number}})
        found = await self.call(scope, lambda r: r.get_version(name, number))
        return Reply.json(found.to_dict())


class ApiRegistryVersionTags(RegistryEndpoint):
    """POST .../tags ``{"tags": {...}}`` sets tags (others stay); DELETE .../tags?key=K
    (repeatable) removes them (absent ones are ignored)."""

    access = Access(CHANGE, "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, number = scope["path_params"]["name"], version_param(scope)
        if scope["method"] == "DELETE":
            keys = query(scope, ("key",)).get("key", [])
            updated = await self.call(scope, lambda r: r.delete_version_tags(name, number, keys))
        else:
            tags = string_map(await self.json_body(scope, receive, ("tags",)), "tags")
            updated = await self.call(scope, lambda r: r.set_version_tags(name, number, tags))
        return Reply.json(updated.to_dict())


class ApiRegistryArchive(RegistryEndpoint):
    """POST .../archive: archive the version; answers what that did (``AliasMove``)."""

    access = Access(CHANGE, "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, number = scope["path_params"]["name"], version_param(scope)
        await self.json_body(scope, receive, ())
        move = await self.call(scope, lambda r: r.move(name, "archived", number))
        return Reply.json(move.to_dict())


class ApiRegistryPromote(RegistryEndpoint):
    """POST .../promote ``{"stage": "production", "archive_previous"?, "force"?,
    "skip_gates"?: REASON}``: the gates run on the server; skipping them needs a reason,
    which the audit trail records with the key that gave it."""

    access = Access(CHANGE, "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, number = scope["path_params"]["name"], version_param(scope)
        fields = ("stage", "archive_previous", "force", "skip_gates")
        data = await self.json_body(scope, receive, fields)
        stage = field_of(data, "stage", str, required=True)
        archive_previous = bool(field_of(data, "archive_previous", bool))
        force = bool(field_of(data, "force", bool))
        skip_gates = field_of(data, "skip_gates", str)
        move = await self.call(
            scope,
            lambda r: r.move(
                name,
                stage,
                number,
                archive_previous=archive_previous,
                force=force,
                skip_gates=skip_gates,
            ),
        )
        return Reply.json(move.to_dict())


class ApiRegistryManifest(RegistryEndpoint):
    """GET .../manifest: the version's ``modelport.yaml`` as JSON, checked against the
    digest recorded at registration."""

    access = Access(READ, "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, number = scope["path_params"]["name"], version_param(scope)
        manifest = await self.call(scope, lambda r: r.get_manifest(r.get_version(name, number)))
        return Reply.json(manifest.model_dump(mode="json"))


class ApiRegistryVersions(RegistryEndpoint):
    """GET /api/registry/models/{name}/versions: every version, newest first. POST
    registers a package (``registry_transfer.register``)."""

    access = Access(READ, "name", writes=CHANGE)

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        if scope["method"] == "POST":
            version = await register(self, scope, receive, name)
            return Reply.json(version.to_dict(), status=201)
        found = await self.call(scope, lambda r: r.list_versions(name))
        return Reply.json({"versions": [v.to_dict() for v in found]})


class ApiRegistryReferenceStats(RegistryEndpoint):
    """GET .../reference-stats: the version's reference statistics (drift's baseline) and
    where they came from: ``recomputed`` (stored beside the package) or ``package``
    (``"stats": null`` when it has none). Servers following the registry by URL read it."""

    access = Access(READ, "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, number = scope["path_params"]["name"], version_param(scope)
        stats, origin = await self.call(
            scope, lambda r: r.reference_stats(r.get_version(name, number))
        )
        return Reply.json({"stats": stats, "origin": origin})
