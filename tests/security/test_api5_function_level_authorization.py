"""OWASP API5 (2023), broken function level authorization: a key that may predict gets
403 on every route that manages keys, deployments or the model repository, whatever
the HTTP method; only admin manages keys, and the audit trail names the key."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry
from testing_security import ROW, KeyedCatalog, request

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ADMIN_ROUTES = ("/api/keys", "/api/keys/abcdefghijkl")
_VERBS = ("", "/canary", "/ab", "/shadow", "/weights", "/promote", "/rollback", "/arms/canary")
DEPLOY_ROUTES = (
    *(f"/api/deployments/alpha{verb}" for verb in (*_VERBS, "/history")),
    "/api/deployments",
    "/v2/repository/models/alpha/load",
    "/v2/repository/models/alpha/unload",
)


@pytest.mark.parametrize("holder", ["predict-alpha", "predict-any"])
@pytest.mark.parametrize("path", ADMIN_ROUTES + DEPLOY_ROUTES)
def test_a_predict_key_is_refused_on_every_management_route_and_method(
    keyed: KeyedCatalog, keyed_client: TestClient, holder: str, path: str
) -> None:
    for method in METHODS:
        response = request(keyed_client, method, path, keyed.tokens[holder], json={})
        assert response.status_code == 403, (method, path, response.status_code, response.text)
    # The same key still does what it is for.
    infer = request(keyed_client, "POST", "/v2/models/alpha/infer", keyed.tokens[holder], json=ROW)
    assert infer.status_code == 200


@pytest.mark.parametrize("holder", ["deploy-alpha", "read-alpha", "feedback-alpha", "metrics"])
def test_only_admin_manages_keys(
    keyed: KeyedCatalog, keyed_client: TestClient, holder: str
) -> None:
    token = keyed.tokens[holder]
    body = {"name": "sneaky", "scopes": ["admin"]}
    assert request(keyed_client, "POST", "/api/keys", token, json=body).status_code == 403
    assert request(keyed_client, "GET", "/api/keys", token).status_code == 403


def test_admin_creates_and_revokes_a_key_over_http_and_the_trail_names_it(
    keyed: KeyedCatalog, keyed_client: TestClient
) -> None:
    admin = keyed.tokens["admin"]
    body = {"name": "made-over-http", "scopes": ["predict:alpha"], "expires": "1d"}
    created = request(keyed_client, "POST", "/api/keys", admin, json=body)
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"  # it carries the secret
    new = created.json()
    assert new["key"].startswith(f"mp_{new['key_id']}_")
    assert new["created_by"] == "key:admin"
    assert new["expires_at"] is not None
    # This worker re-read its keys with the change: the new key works at once.
    infer = request(keyed_client, "POST", "/v2/models/alpha/infer", new["key"], json=ROW)
    assert infer.status_code == 200
    listed = request(keyed_client, "GET", "/api/keys", admin).json()["keys"]
    assert "made-over-http" in [k["name"] for k in listed]
    assert all("secret" not in str(k) and "key" not in k for k in listed)
    revoked = request(keyed_client, "DELETE", f"/api/keys/{new['key_id']}", admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_by"] == "key:admin"
    refused = request(keyed_client, "POST", "/v2/models/alpha/infer", new["key"], json=ROW)
    assert refused.status_code == 401
    with build_registry(keyed.settings) as registry, registry.metadata.reader() as tx:
        trail = [
            (entry.action, entry.actor)
            for entry in tx.list_audit(model="")
            if entry.target == "key:made-over-http"
        ]
    assert sorted(trail) == [("key.created", "key:admin"), ("key.revoked", "key:admin")]


def test_bad_scopes_and_bodies_are_refused_naming_the_accepted_forms(
    keyed: KeyedCatalog, keyed_client: TestClient
) -> None:
    admin = keyed.tokens["admin"]
    bad_scope = {"name": "x", "scopes": ["infer:alpha"]}
    answer = request(keyed_client, "POST", "/api/keys", admin, json=bad_scope)
    assert answer.status_code == 400
    assert "predict[:MODEL]" in answer.json()["error"]
    extra = {"name": "x", "scopes": ["admin"], "created_by": "someone-else"}
    assert request(keyed_client, "POST", "/api/keys", admin, json=extra).status_code == 400
