"""What ships models from a machine that has only a control plane's URL and a key
(``MODELPORT_REGISTRY_URL``, ``MODELPORT_API_KEY``): batch scoring, Kubernetes
manifests, the quickstart, and a serving replica checking its callers' keys through the
control plane. Each runs as the real CLI and is compared with the same command run
where the database is."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelport.bootstrap import build_registry
from modelport.config import Settings
from modelport.security.key_admin import KeyAdmin
from testing_batch import expected, read_output, register, rows
from testing_control_plane import control_plane
from testing_process import MODELPORT, ServerProcess, env_for


@dataclass
class Plane:
    """A control plane over ``home`` (keys on), an admin key, and a client home with no
    database of its own."""

    server: ServerProcess
    home: Path
    client_home: Path
    admin: str

    def remote(self, *args: str, timeout: float = 180, key: str | None = None,
               **env: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """The CLI on the client machine: only the URL and a key."""
        extra = {"MODELPORT_REGISTRY_URL": self.server.url,
                 "MODELPORT_API_KEY": key or self.admin, **env}  # fmt: skip
        return _run(self.client_home, args, timeout, extra)

    def local(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """The same CLI where the database is."""
        return _run(self.home, args, timeout, {})


def _run(home: Path, args: tuple[str, ...], timeout: float,
         extra: dict[str, str]) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = env_for(home, **extra)
    if "MODELPORT_REGISTRY_URL" not in extra:
        for name in ("MODELPORT_REGISTRY_URL", "MODELPORT_API_KEY"):
            env.pop(name, None)
    return subprocess.run([str(MODELPORT), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def _admin_key(home: Path) -> str:
    with build_registry(Settings(home=home)) as registry:
        return KeyAdmin(registry.metadata).create("admin", ["admin"], actor="setup")[1]


@pytest.fixture
def plane(isolated_home: Path, tmp_path: Path) -> Iterator[Plane]:
    isolated_home.mkdir(parents=True, exist_ok=True)
    admin = _admin_key(isolated_home)
    client_home = tmp_path / "client-home"
    client_home.mkdir()
    with control_plane(isolated_home, MODELPORT_SECURITY__AUTH="on") as server:
        yield Plane(server, isolated_home, client_home, admin)
    assert not (client_home / "modelport.db").exists()  # the client never opened one


# --------------------------------------------------------------------- batch scoring


def test_batch_predict_over_the_url_writes_what_a_local_run_writes(
    plane: Plane, tmp_path: Path
) -> None:
    version = register()
    data = rows(1_500)
    data.to_parquet(tmp_path / "in.parquet", row_group_size=500)
    args = ("batch", "predict", "churn@production", "--input", str(tmp_path / "in.parquet"),
            "--chunk-rows", "500", "--outputs", "prediction,probabilities", "--json")  # fmt: skip

    remote = plane.remote(*args, "--output", str(tmp_path / "remote.parquet"))
    local = plane.local(*args, "--output", str(tmp_path / "local.parquet"))

    assert remote.returncode == 0, remote.stderr
    assert local.returncode == 0, local.stderr
    summaries = [json.loads(done.stdout) for done in (remote, local)]
    same = ("model", "version", "rows_in", "rows_out", "rows_failed", "parts", "errors")
    assert [{k: s[k] for k in same} for s in summaries] == [
        {"model": "churn", "version": version, "rows_in": 1_500, "rows_out": 1_500,
         "rows_failed": 0, "parts": 3, "errors": None}
    ] * 2  # fmt: skip
    assert "batch: 1,500/1,500 rows (100%)" in remote.stderr
    scored = read_output(tmp_path / "remote.parquet")
    pd.testing.assert_frame_equal(scored, read_output(tmp_path / "local.parquet"))
    np.testing.assert_array_equal(scored["prediction"], expected(data))
    # The package came through the control plane, checked, into this machine's cache.
    cached = list((plane.client_home / "cache" / "registry").glob("*/churn/*/modelport.yaml"))
    assert len(cached) == 1


def test_a_worker_elsewhere_downloads_the_package_with_its_own_key(
    plane: Plane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a Dask, Ray or Spark worker on another machine does with the source the
    driver sends it: no copy in its cache, so it downloads through the control plane
    with the key of its own environment (the driver's key is not in the source)."""
    import pickle

    from modelport.bootstrap import package_source

    register()
    monkeypatch.setenv("MODELPORT_REGISTRY_URL", plane.server.url)
    monkeypatch.setenv("MODELPORT_API_KEY", plane.admin)
    source = package_source("churn@production", Settings(home=plane.client_home))
    assert plane.admin.encode() not in pickle.dumps(source)

    elsewhere = pickle.loads(pickle.dumps(source))
    object.__setattr__(elsewhere, "cache_dir", str(tmp_path / "worker-cache"))
    object.__setattr__(elsewhere, "accelerate", False)  # another load key: not the driver's
    data = rows(20)
    predicted = elsewhere.load().predict(data[["tenure", "charges"]])
    np.testing.assert_array_equal(np.asarray(predicted), expected(data))
    assert list((tmp_path / "worker-cache" / "registry").glob("*/churn/*/modelport.yaml"))
