"""``/api/registry``: models, aliases, search, resolve and the audit trail.

Reads need ``read`` (on the model the path names; listings show only the models the
key may read), changes ``deploy`` on the model: the same scope that moves deployments
moves aliases and stages, and registers and deletes versions.
"""

from __future__ import annotations

from modelport.domain.entities import RegisteredModel
from modelport.domain.refs import parse_ref
from modelport.registry.service import RegistryService
from modelport.server.http.access import Access, allows, denied, principal_of, visible
from modelport.server.http.asgi import Receive, Scope
from modelport.server.http.endpoint import Reply
from modelport.server.http.registry_endpoint import (
    RegistryEndpoint,
    field_of,
    last,
    moment,
    query,
    string_map,
    whole,
)

READ = ("read",)
CHANGE = ("deploy",)


class ApiRegistryModels(RegistryEndpoint):
    """GET /api/registry/models[?filter=...]: every model (or those with a version the
    version filter matches), by name."""

    access = Access(READ)

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        text = last(query(scope, ("filter",)), "filter")

        def listing(registry: RegistryService) -> list[RegisteredModel]:
            models = registry.list_models()
            if text:
                names = {v.name for v in registry.search_versions(text, max_results=1_000_000)}
                models = [m for m in models if m.name in names]
            return models

        models = await self.call(scope, listing)
        readable = set(visible(scope, READ, [m.name for m in models]))
        return Reply.json({"models": [m.to_dict() for m in models if m.name in readable]})


class ApiRegistryModel(RegistryEndpoint):
    """GET, PATCH (``{"description": ...}``), DELETE /api/registry/models/{name}."""

    access = Access(READ, "name", writes=CHANGE)

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        method = scope["method"]
        if method in ("GET", "HEAD"):
            found = await self.call(scope, lambda r: r.get_model(name))
            return Reply.json(found.to_dict())
        if method == "DELETE":
            await self.call(scope, lambda r: r.delete_model(name))
            return Reply.json({"deleted": {"name": name}})
        data = await self.json_body(scope, receive, ("description",))
        description = field_of(data, "description", str, required=True)
        updated = await self.call(scope, lambda r: r.update_model(name, description=description))
        return Reply.json(updated.to_dict())


class ApiRegistryModelTags(RegistryEndpoint):
    """POST /api/registry/models/{name}/tags ``{"tags": {"team": "risk"}}`` (others stay)."""

    access = Access(CHANGE, "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name = scope["path_params"]["name"]
        tags = string_map(await self.json_body(scope, receive, ("tags",)), "tags")
        updated = await self.call(scope, lambda r: r.set_model_tags(name, tags))
        return Reply.json(updated.to_dict())


class ApiRegistryAlias(RegistryEndpoint):
    """PUT /api/registry/models/{name}/aliases/{alias} ``{"version": 3, "force"?,
    "skip_gates"?: REASON, "archive_previous"?}``: point an alias or stage at a version
    (gates run here, on the server); DELETE removes it. PUT answers what the move did."""

    access = Access(CHANGE, "name")

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        name, alias = scope["path_params"]["name"], scope["path_params"]["alias"]
        if scope["method"] == "DELETE":
            await self.call(scope, lambda r: r.delete_alias(name, alias))
            return Reply.json({"deleted": {"name": name, "alias": alias}})
        fields = ("version", "force", "skip_gates", "archive_previous")
        data = await self.json_body(scope, receive, fields)
        version = field_of(data, "version", int, required=True)
        force = bool(field_of(data, "force", bool))
        archive_previous = bool(field_of(data, "archive_previous", bool))
        skip_gates = field_of(data, "skip_gates", str)
        move = await self.call(
            scope,
            lambda r: r.move(
                name,
                alias,
                version,
                archive_previous=archive_previous,
                force=force,
                skip_gates=skip_gates,
            ),
        )
        return Reply.json(move.to_dict())


class ApiRegistrySearch(RegistryEndpoint):
    """GET /api/registry/versions?filter=...&max_results=N: versions matching the
    registry's filter syntax (``name = 'churn' AND metrics.auc > 0.9``)."""

    access = Access(READ)

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        values = query(scope, ("filter", "max_results"))
        text = last(values, "filter")
        limit = whole(last(values, "max_results"), "max_results", 1000)
        found = await self.call(scope, lambda r: r.search_versions(text, max_results=limit))
        readable = set(visible(scope, READ, {v.name for v in found}))
        return Reply.json({"versions": [v.to_dict() for v in found if v.name in readable]})


class ApiRegistryResolve(RegistryEndpoint):
    """GET /api/registry/resolve?ref=churn@production: the version a reference names
    (``read`` on its model, checked before the lookup, as on the routes that name the
    model in their path: a key learns nothing of models it may not read)."""

    access = Access(READ)

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        ref = parse_ref(last(query(scope, ("ref",)), "ref") or "")
        principal = principal_of(scope)
        if principal is not None and not allows(principal, READ, ref.name):
            raise denied(principal, READ, ref.name)
        found = await self.call(scope, lambda r: r.resolve(ref))
        return Reply.json(found.to_dict())


class ApiRegistryAudit(RegistryEndpoint):
    """GET /api/registry/audit?model=&since=ISO&limit=N: the audit trail, newest first."""

    access = Access(READ)

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        values = query(scope, ("model", "since", "limit"))
        model = last(values, "model") or None
        since = moment(last(values, "since"), "since")
        limit = whole(last(values, "limit"), "limit", 100)
        entries = await self.call(scope, lambda r: r.get_audit_log(model, since=since, limit=limit))
        readable = set(visible(scope, READ, {e.model for e in entries}))
        return Reply.json({"entries": [e.to_dict() for e in entries if e.model in readable]})
