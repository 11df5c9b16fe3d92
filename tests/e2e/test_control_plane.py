"""``modelport ui`` as a real process: the control plane answers its routes, documents
exactly them, serves no models, and drains on SIGTERM."""

from __future__ import annotations

from pathlib import Path

import httpx

from modelport.server.http.control import CONTROL_ROUTES
from testing_process import serving


def test_the_control_plane_answers_its_routes_and_documents_exactly_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serving(home, [], command="ui") as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/health").json() == {"status": "ok"}
        info = client.get("/api").json()
        assert (info["name"], info["auth"]) == ("modelport", "off")
        assert client.get("/api/deployments").json() == {"deployments": []}
        document = client.get("/api/openapi.json").json()
        assert document["info"]["title"] == "modelport control plane"
        documented = {(path, m.upper()) for path, item in document["paths"].items() for m in item}
        assert documented == {(p, m) for p, methods, _ in CONTROL_ROUTES for m in methods}
        # The served-model routes are the serving server's alone.
        for path in ("/v2/models", "/invocations", "/api/models"):
            response = client.request("POST" if path == "/invocations" else "GET", path)
            assert response.status_code == 404, path
            assert "no route" in response.json()["error"]
        assert server.stop() == 0


def test_the_control_plane_refuses_other_machines_without_keys(tmp_path: Path) -> None:
    import subprocess

    from testing_process import MODELPORT, env_for

    done = subprocess.run(
        [str(MODELPORT), "ui", "--host", "0.0.0.0", "--port", "0"],
        env=env_for(tmp_path / "home"), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "requires API keys" in done.stderr
    assert "--insecure-no-auth" in done.stderr
