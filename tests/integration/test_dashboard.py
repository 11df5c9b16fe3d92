"""The dashboard's handlers in process: sign-in with an API key, sessions that end with
their key and work on any instance, CSRF refusals, read-only keys, paging, sorting and
the search filter (``modelport ui``'s app through Starlette's TestClient)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from modelport.bootstrap import build_control_app, build_registry
from modelport.config import SecuritySettings, Settings
from modelport.package.options import PackageOptions
from modelport.security.key_admin import KeyAdmin
from modelport.server.http.app import ServerApp
from testing_deployments import add_versions
from testing_models import EchoModel

KEYS = {"admin": ("admin",), "reader": ("read",), "deployer": ("read", "deploy:alpha")}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _settings(home: Path, auth: str) -> Settings:
    # Version rows without packages: no promotion gate guards production here.
    return Settings(
        home=home, user="ops", security=SecuritySettings(auth=auth), gates={"targets": []}
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A registry with alpha/1..2 (a canary deployment), 30 more models, and the keys."""
    home = tmp_path_factory.mktemp("dashboard-home")
    tokens: dict[str, str] = {}
    with build_registry(_settings(home, "on")) as registry:
        sample = np.zeros((3, 3))
        for _ in range(2):
            registry.register(EchoModel(), "alpha", PackageOptions(sample_input=sample))
        registry.promote("alpha", 1, "production")
        registry.create_deployment("alpha", 1)
        registry.deploy_canary("alpha", 2, 10)
        for i in range(30):
            add_versions(registry, f"m{i:02d}", 1)
        admin = KeyAdmin(registry.metadata)
        for name, scopes in KEYS.items():
            tokens[name] = admin.create(name, scopes, actor="tester")[1]
    return home, tokens


@contextmanager
def control(home: Path, auth: str = "on") -> Iterator[tuple[TestClient, ServerApp]]:
    """The control plane's app over ``home`` (keys checked when ``auth`` is "on")."""
    app = build_control_app(
        _settings(home, auth),
        [],
        worker_index=0,
        workers=1,
        on_ready=lambda: None,
        on_failed=lambda message: None,
    )
    with TestClient(app.asgi, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client, app


def sign_in(client: TestClient, token: str) -> None:
    """Sign ``client`` in with ``token`` through the login form."""
    form = client.get("/ui/login")
    response = client.post(
        "/ui/login",
        data={"csrf": CSRF.search(form.text)[1], "key": token, "next": "/ui/models"},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/ui/models"


def csrf_of(client: TestClient, path: str) -> str:
    return CSRF.search(client.get(path).text)[1]


def test_without_keys_the_pages_need_no_sign_in(home: tuple[Path, dict[str, str]]) -> None:
    with control(home[0], auth="off") as (client, _):
        assert client.get("/ui").headers["location"] == "/ui/"
        page = client.get("/ui/models")
        assert page.status_code == 200
        assert 'href="/ui/models/alpha"' in page.text
        policy = page.headers["content-security-policy"]
        assert "style-src 'self'" in policy
        assert "script-src" not in policy  # default-src 'none': no script runs
        assert page.headers["cache-control"] == "no-store"
        style = client.get(re.search(r'href="(/ui/static/app\.css[^"]*)"', page.text)[1])
        assert style.status_code == 200
        assert style.headers["content-type"].startswith("text/css")
        # The API keeps its own, stricter policy.
        api = client.get("/api/deployments")
        assert api.headers["content-security-policy"].startswith("default-src 'none'")
        assert client.get("/ui/nowhere").status_code == 404


def test_sign_in_sets_a_strict_session_cookie(home: tuple[Path, dict[str, str]]) -> None:
    with control(home[0]) as (client, _):
        first = client.get("/ui/models")
        assert first.status_code == 303
        assert first.headers["location"].startswith("/ui/login?next=")
        form = client.get("/ui/login")
        bad = client.post(
            "/ui/login", data={"csrf": CSRF.search(form.text)[1], "key": "mp_nope", "next": ""}
        )
        assert bad.status_code == 401
        assert "not valid" in bad.text
        response = client.post(
            "/ui/login",
            data={"csrf": CSRF.search(form.text)[1], "key": home[1]["reader"], "next": ""},
        )
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("modelport_session=")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
        assert "secure" not in cookie.lower()  # plain HTTP on loopback: the browser would drop it
        assert home[1]["reader"] not in cookie  # the key itself never leaves the form
        assert client.get("/ui/models").status_code == 200


def test_the_login_form_refuses_a_post_without_its_token(
    home: tuple[Path, dict[str, str]],
) -> None:
    with control(home[0]) as (client, _):
        refused = client.post("/ui/login", data={"key": home[1]["admin"], "next": ""})
        assert refused.status_code == 403
        assert "modelport_session" not in refused.headers.get("set-cookie", "")


def test_a_session_works_on_another_instance_and_ends_with_its_key(
    home: tuple[Path, dict[str, str]],
) -> None:
    with control(home[0]) as (one, _), control(home[0]) as (two, app_two):
        sign_in(one, home[1]["admin"])
        two.cookies.update(one.cookies)  # the load balancer sends the next request elsewhere
        assert two.get("/ui/deployments").status_code == 200
        # A key revoked anywhere ends its sessions at the next re-read of the keys.
        with build_registry(_settings(home[0], "on")) as registry:
            admin = KeyAdmin(registry.metadata)
            token = admin.create("short-lived", ["admin"], actor="tester")[1]
        assert app_two.context.keys is not None
        app_two.context.keys.refresh()
        sign_in(two, token)
        assert two.get("/ui/audit").status_code == 200
        with build_registry(_settings(home[0], "on")) as registry:
            KeyAdmin(registry.metadata).revoke("short-lived", actor="tester")
        app_two.context.keys.refresh()
        ended = two.get("/ui/audit")
        assert ended.status_code == 303
        assert ended.headers["location"].startswith("/ui/login")


def test_a_read_key_sees_no_action_and_is_refused_if_it_posts(
    home: tuple[Path, dict[str, str]],
) -> None:
    with control(home[0]) as (client, _):
        sign_in(client, home[1]["reader"])
        page = client.get("/ui/deployments/alpha")
        assert page.status_code == 200
        assert "canary" in page.text
        for button in ("Promote", "Roll back", "confirm?action="):
            assert button not in page.text
        token = csrf_of(client, "/ui/models")
        refused = client.post("/ui/deployments/alpha/promote", data={"csrf": token})
        assert refused.status_code == 403
        assert "deploy:alpha" in refused.text
        assert client.get("/ui/deployments/alpha/confirm?action=promote").status_code == 403
        with build_registry(_settings(home[0], "on")) as registry:
            assert registry.get_deployment("alpha").champion.version == 1


def test_actions_need_the_sessions_csrf_token_and_are_audited_with_the_key(
    home: tuple[Path, dict[str, str]],
) -> None:
    with control(home[0]) as (client, _):
        sign_in(client, home[1]["deployer"])
        page = client.get("/ui/deployments/alpha")
        assert "confirm?action=promote" in page.text
        confirm = client.get("/ui/deployments/alpha/confirm?action=weight&arm=canary&weight=30")
        assert "Send 30% of alpha" in confirm.text
        token = CSRF.search(confirm.text)[1]
        for data in ({}, {"csrf": "forged"}, {"csrf": ""}):
            refused = client.post(
                "/ui/deployments/alpha/weight", data={**data, "arm": "canary", "weight": "30"}
            )
            assert refused.status_code == 403
            assert "CSRF" in refused.text
        done = client.post(
            "/ui/deployments/alpha/weight",
            data={"csrf": token, "arm": "canary", "weight": "30", "reason": "widen"},
        )
        assert done.status_code == 303
        assert client.get(done.headers["location"]).text.count("30.0%") >= 1
        promoted = client.post(
            "/ui/deployments/alpha/promote", data={"csrf": token, "arm": "canary"}
        )
        assert promoted.status_code == 303
        with build_registry(_settings(home[0], "on")) as registry:
            deployment = registry.get_deployment("alpha")
            assert (deployment.champion.version, deployment.champion.weight) == (2, 100.0)
            trail = registry.get_audit_log("alpha", limit=5)
            assert trail[0].action == "deployment.promote"
            assert trail[0].actor == "key:deployer"
            registry.rollback_deployment("alpha")
            registry.deploy_canary("alpha", 2, 10)
        audit = client.get("/ui/audit?action=deployment.set_weight")
        assert "key:deployer" in audit.text
        assert "deployment.promote" not in audit.text.split("<tbody>")[1]


def test_models_page_sort_and_filter(home: tuple[Path, dict[str, str]]) -> None:
    with control(home[0], auth="off") as (client, _):
        first = client.get("/ui/models")
        names = re.findall(r'href="/ui/models/([^"?]+)"><strong>', first.text)
        assert names == sorted(names)
        assert len(names) == 25
        assert "1\N{EN DASH}25 of 31 models" in first.text
        second = client.get("/ui/models?page=2")
        assert len(re.findall(r"<strong>", second.text.split("<tbody>")[1])) == 6
        backwards = client.get("/ui/models?sort=name&order=desc")
        assert re.findall(r'/ui/models/([^"?]+)"><strong>', backwards.text)[0] == "m29"
        found = client.get("/ui/models", params={"q": "name LIKE 'm1%'"})
        rows = re.findall(r'<td><a href="/ui/models/(m\d+)">', found.text)
        assert sorted(set(rows)) == [f"m1{i}" for i in range(10)]
        assert "q=name" in found.text  # paging and sorting links keep the filter
        broken = client.get("/ui/models", params={"q": "metrics.auc >>> 1"})
        assert broken.status_code == 200
        assert 'role="alert"' in broken.text


def test_model_and_monitoring_pages_render(home: tuple[Path, dict[str, str]]) -> None:
    with control(home[0], auth="off") as (client, _):
        model = client.get("/ui/models/alpha?version=1")
        assert model.status_code == 200
        assert "Version 1" in model.text
        assert "unsigned" in model.text
        assert "stage.promote" in model.text  # the history from the audit trail
        assert client.get("/ui/models/alpha?version=9").status_code == 404
        monitoring = client.get("/ui/monitoring/alpha?since=24h")
        assert monitoring.status_code == 200
        assert "Drift per feature" in monitoring.text
        assert client.get("/ui/audit?model=alpha").status_code == 200
        # A model with no production version shows its newest.
        newest = client.get("/ui/monitoring/m03")
        assert newest.status_code == 200
        assert "version 1" in newest.text


def test_pause_and_resume_a_rollout(home: tuple[Path, dict[str, str]]) -> None:
    from modelport.domain.rollout_plan import RolloutPlan
    from modelport.rollout.commands import start_rollout
    from modelport.rollout.factory import build_controller

    settings = _settings(home[0], "on")
    with build_registry(settings) as registry:
        add_versions(registry, "m05", 1)
        registry.create_deployment("m05", 1)
        controller = build_controller(settings, registry)
        start_rollout(controller, "m05", 2, RolloutPlan(steps=(10.0, 50.0, 100.0)))
        controller.close()
    with control(home[0]) as (client, _):
        sign_in(client, home[1]["admin"])
        page = client.get("/ui/deployments/m05")
        assert "running" in page.text
        assert "confirm?action=pause" in page.text
        token = csrf_of(client, "/ui/deployments/m05/confirm?action=pause")
        paused = client.post("/ui/deployments/m05/pause", data={"csrf": token, "reason": "look"})
        assert paused.status_code == 303
        page = client.get(paused.headers["location"])
        assert "Rollout paused" in page.text
        assert "confirm?action=resume" in page.text
        resumed = client.post("/ui/deployments/m05/resume", data={"csrf": token})
        assert resumed.status_code == 303
        assert "confirm?action=pause" in client.get("/ui/deployments/m05").text
    with build_registry(settings) as registry:
        actions = [(e.action, e.actor) for e in registry.get_audit_log("m05", limit=3)]
        assert ("rollout.pause", "key:admin") in actions
        assert ("rollout.resume", "key:admin") in actions
