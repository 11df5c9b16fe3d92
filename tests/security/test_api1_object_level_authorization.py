"""OWASP API1 (2023), broken object level authorization: a key scoped to model alpha
cannot predict on, read, send feedback to, or deploy beta, by name, by version path or
by an encoded name; listings show only what the key may see."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_registry
from testing_security import ROW, KeyedCatalog, request

INVOCATION = {"inputs": [[1.0, 2.0, 3.0]]}

# (method, path with {m} for the model, body, actions that allow it)
ROUTES: list[tuple[str, str, Any, tuple[str, ...]]] = [
    ("GET", "/v2/models/{m}", None, ("read", "predict")),
    ("GET", "/v2/models/{m}/ready", None, ("read", "predict")),
    ("GET", "/v2/models/{m}/versions/1", None, ("read", "predict")),
    ("GET", "/v2/models/{m}/versions/1/ready", None, ("read", "predict")),
    ("GET", "/v2/models/{m}/config", None, ("read", "predict")),
    ("GET", "/v2/models/{m}/stats", None, ("read",)),
    ("POST", "/v2/models/{m}/infer", ROW, ("predict",)),
    ("POST", "/v2/models/{m}/versions/1/infer", ROW, ("predict",)),
    ("POST", "/models/{m}/invocations", INVOCATION, ("predict",)),
    ("POST", "/invocations?model={m}", INVOCATION, ("predict",)),
    ("GET", "/api/models/{m}", None, ("read",)),
    ("GET", "/api/monitoring/{m}/drift", None, ("read",)),
    ("GET", "/api/monitoring/{m}/performance", None, ("read",)),
    ("GET", "/api/monitoring/{m}/alerts", None, ("read",)),
    ("GET", "/api/deployments/{m}", None, ("read",)),
    ("GET", "/api/deployments/{m}/history", None, ("read",)),
    ("GET", "/api/deployments/{m}/status", None, ("read",)),
    ("POST", "/api/deployments/{m}/rollback", {}, ("deploy",)),
    ("DELETE", "/api/deployments/{m}/arms/canary", None, ("deploy",)),
    ("POST", "/v2/repository/models/{m}/load", None, ("deploy",)),
    ("POST", "/api/feedback", {"model": "{m}", "prediction_id": "x-0", "label": 1}, ("feedback",)),
]
HOLDERS = {"predict-alpha": "predict", "read-alpha": "read", "feedback-alpha": "feedback"}
HOLDERS["deploy-alpha"] = "deploy"


def _send(client: TestClient, token: str, method: str, path: str, body: Any, model: str) -> Any:
    if isinstance(body, dict):
        body = {k: (v.format(m=model) if isinstance(v, str) else v) for k, v in body.items()}
    json = body if body is not None else None
    return request(client, method, path.format(m=model), token, json=json)


def _message(response: Any) -> str:
    """The error message in either dialect (MLflow's routes say ``message``)."""
    body = response.json()
    return str(body.get("error") or body["message"])


@pytest.mark.parametrize("holder", sorted(HOLDERS))
@pytest.mark.parametrize(("method", "path", "body", "actions"), ROUTES, ids=lambda v: str(v)[:40])
def test_a_key_reaches_its_own_model_and_never_another(
    keyed: KeyedCatalog,
    keyed_client: TestClient,
    holder: str,
    method: str,
    path: str,
    body: Any,
    actions: tuple[str, ...],
) -> None:
    token = keyed.tokens[holder]
    allowed = HOLDERS[holder] in actions
    other = _send(keyed_client, token, method, path, body, "beta")
    assert other.status_code == 403, (other.status_code, other.text)
    if allowed:  # the right action on the wrong model: the refusal names that model
        assert f"{HOLDERS[holder]}:beta" in _message(other)
    own = _send(keyed_client, token, method, path, body, "alpha")
    if allowed:
        # Allowed: whatever the route answers (404 no deployment, 501 load), not a refusal.
        assert own.status_code not in (401, 403), own.text
    else:
        assert own.status_code == 403, own.text
        assert _message(own).startswith(f"API key {holder!r} lacks the scope")


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/%62eta/infer",  # "beta" with an encoded letter
        "/v2/models/alpha%2F..%2Fbeta/infer",
        "/v2/models/alpha/../beta/infer",
        "/v2/models/beta%00/infer",
        "/models/%62eta/invocations",
    ],
)
def test_encoded_and_traversing_names_never_reach_beta(
    keyed: KeyedCatalog, keyed_client: TestClient, path: str
) -> None:
    body = INVOCATION if "invocations" in path else ROW
    response = request(keyed_client, "POST", path, keyed.tokens["predict-alpha"], json=body)
    assert response.status_code in (403, 404), (response.status_code, response.text)


def test_listings_show_only_what_the_key_may_see(
    keyed: KeyedCatalog, keyed_client: TestClient
) -> None:
    def names(path: str, holder: str, field: str) -> list[str]:
        answer = request(keyed_client, "GET", path, keyed.tokens[holder])
        assert answer.status_code == 200, answer.text
        return [item if isinstance(item, str) else item["name"] for item in answer.json()[field]]

    assert names("/v2/models", "predict-alpha", "models") == ["alpha"]
    assert names("/v2/models", "admin", "models") == ["alpha", "beta"]
    assert names("/v2/models", "predict-any", "models") == ["alpha", "beta"]
    assert names("/api/models", "read-alpha", "models") == ["alpha"]
    denied = request(keyed_client, "GET", "/api/models", keyed.tokens["predict-alpha"])
    assert denied.status_code == 403
    # Statistics and the repository index describe every model: an unscoped read only.
    for method, path in (("GET", "/v2/models/stats"), ("POST", "/v2/repository/index")):
        assert request(keyed_client, method, path, keyed.tokens["read-alpha"]).status_code == 403
        assert request(keyed_client, method, path, keyed.tokens["admin"]).status_code == 200


def test_a_deploy_key_changes_its_deployment_and_the_trail_names_it(
    keyed: KeyedCatalog, keyed_client: TestClient
) -> None:
    token = keyed.tokens["deploy-alpha"]
    try:
        created = request(keyed_client, "PUT", "/api/deployments/alpha", token, json={"version": 1})
        assert created.status_code == 201, created.text
        assert created.json()["updated_by"] == "key:deploy-alpha"
        other = request(keyed_client, "PUT", "/api/deployments/beta", token, json={"version": 1})
        assert other.status_code == 403
        # Reading the deployment needs read:alpha, which this key does not have.
        assert request(keyed_client, "GET", "/api/deployments/alpha", token).status_code == 403
        listed = request(keyed_client, "GET", "/api/deployments", keyed.tokens["read-alpha"])
        assert [d["name"] for d in listed.json()["deployments"]] == ["alpha"]
        with build_registry(keyed.settings) as registry:
            events = registry.deployment_history("alpha", 10)
        assert [e.actor for e in events] == ["key:deploy-alpha"]
    finally:
        request(keyed_client, "DELETE", "/api/deployments/alpha", keyed.tokens["admin"])


def test_labels_record_the_key_not_a_claimed_actor(
    keyed: KeyedCatalog, keyed_client: TestClient
) -> None:
    import pyarrow.parquet as pq

    from modelport.monitoring.feedback.store import label_files

    answer = request(
        keyed_client, "POST", "/v2/models/alpha/infer", keyed.tokens["admin"], json=ROW
    )
    prediction_id = answer.headers["x-modelport-prediction-ids"]
    item = {"model": "alpha", "prediction_id": prediction_id, "label": 1}
    headers = {"Authorization": f"Bearer {keyed.tokens['feedback-alpha']}"}
    headers["X-Modelport-Actor"] = "someone-else"
    sent = keyed_client.post("/api/feedback", json=item, headers=headers)
    assert sent.status_code == 200, sent.text
    mixed = [item, {**item, "model": "beta"}]  # one item for a model the key may not label
    refused = keyed_client.post("/api/feedback", json=mixed, headers=headers)
    assert refused.status_code == 403 and "feedback:beta" in refused.json()["error"]
    fs, files = label_files(keyed.settings.resolved_prediction_log_uri, "alpha")
    actors = {a for f in files for a in pq.read_table(f, filesystem=fs).column("actor").to_pylist()}
    assert "key:feedback-alpha" in actors and "someone-else" not in actors
