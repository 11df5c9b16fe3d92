"""The dashboard's sign-out revokes the session on every instance (a copied cookie is
sent to the login page), and a deployment whose rollout is under way offers the
rollout's pause, resume and abort instead of promote and set weight, which the server
refuses with 409 (``modelport ui``'s app through Starlette's TestClient)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelport.bootstrap import build_registry
from modelport.domain.rollout_plan import RolloutPlan
from modelport.package.options import PackageOptions
from modelport.rollout.commands import start_rollout
from modelport.rollout.factory import build_controller
from modelport.security.key_admin import KeyAdmin
from modelport.ui.session import SESSION_COOKIE
from testing_models import EchoModel

from .test_dashboard import CSRF, _settings, control, csrf_of, sign_in


@pytest.fixture
def home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """churn/1..2 with a deployment on 1, and an admin key."""
    home = tmp_path / "home"
    with build_registry(_settings(home, "on")) as registry:
        for _ in range(2):
            registry.register(EchoModel(), "churn", PackageOptions(sample_input=np.zeros((3, 3))))
        registry.create_deployment("churn", 1)
        token = KeyAdmin(registry.metadata).create("admin", ["admin"], actor="tester")[1]
    return home, {"admin": token}


def test_sign_out_revokes_the_session_on_every_instance(
    home: tuple[Path, dict[str, str]],
) -> None:
    with control(home[0]) as (one, _), control(home[0]) as (two, _):
        sign_in(one, home[1]["admin"])
        copied = one.cookies[SESSION_COOKIE]
        two.cookies.set(SESSION_COOKIE, copied)
        assert two.get("/ui/models").status_code == 200
        out = one.post("/ui/logout", data={"csrf": csrf_of(one, "/ui/models")})
        assert out.status_code == 303
        assert out.headers["location"] == "/ui/login"
        # The old cookie, replayed on either instance, is sent to the login page.
        for client in (one, two):
            client.cookies.set(SESSION_COOKIE, copied)
            replayed = client.get("/ui/models")
            assert replayed.status_code == 303, replayed.text
            assert replayed.headers["location"].startswith("/ui/login?next=")
            refused = client.post("/ui/deployments/churn/rollback", data={"csrf": "x"})
            assert refused.status_code == 303
            assert refused.headers["location"].startswith("/ui/login")
        # Signing in again opens a new session, which works.
        one.cookies.clear()
        sign_in(one, home[1]["admin"])
        assert one.cookies[SESSION_COOKIE] != copied
        assert one.get("/ui/models").status_code == 200


def test_a_running_rollout_replaces_promote_and_weight_with_its_own_actions(
    home: tuple[Path, dict[str, str]],
) -> None:
    settings = _settings(home[0], "on")
    with build_registry(settings) as registry:
        controller = build_controller(settings, registry)
        start_rollout(controller, "churn", 2, RolloutPlan(steps=(10.0, 50.0, 100.0)))
        controller.close()
    with control(home[0]) as (client, _):
        sign_in(client, home[1]["admin"])
        page = client.get("/ui/deployments/churn").text
        assert "confirm?action=pause" in page and "confirm?action=abort" in page
        assert "confirm?action=promote" not in page
        assert 'value="weight"' not in page
        assert "Driven by the rollout" in page
        token = CSRF.search(page)[1]
        fights = {"promote": {"arm": "canary"}, "weight": {"arm": "canary", "weight": "60"}}
        for action, data in fights.items():
            refused = client.post(f"/ui/deployments/churn/{action}", data={"csrf": token, **data})
            assert refused.status_code == 409, refused.text
            assert "pause or abort the rollout instead" in refused.text
        paused = client.post("/ui/deployments/churn/pause", data={"csrf": token})
        assert paused.status_code == 303
        page = client.get("/ui/deployments/churn").text
        assert "confirm?action=resume" in page and "confirm?action=abort" in page
        assert "confirm?action=promote" not in page
        refused = client.post("/ui/deployments/churn/promote", data={"csrf": token})
        assert refused.status_code == 409
        assert "resume or abort the rollout instead" in refused.text
        confirm = client.get("/ui/deployments/churn/confirm?action=abort")
        assert "Stop the rollout on churn" in confirm.text
        aborted = client.post(
            "/ui/deployments/churn/abort", data={"csrf": token, "reason": "not today"}
        )
        assert aborted.status_code == 303
        page = client.get(aborted.headers["location"]).text
        assert "Rollout aborted" in page
        assert "confirm?action=abort" not in page
    with build_registry(settings) as registry:
        deployment = registry.get_deployment("churn")
        assert [(a.name, a.version, a.weight) for a in deployment.arms] == [("champion", 1, 100.0)]
        trail = [(e.action, e.actor) for e in registry.deployment_history("churn", 3)]
        assert trail[0] == ("rollout.abort", "key:admin")
