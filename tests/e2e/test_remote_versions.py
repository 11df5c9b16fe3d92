"""``modelport version stats|sign|verify|validate`` through ``MODELPORT_REGISTRY_URL``
against a live control plane, each compared with the same command run over the
database: the same answers and exit codes, a read-only key refused (403), the calling
key in the audit trail, the private key kept on the client, and a signature the server
refuses when it does not hold for the package it stores."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from modelport.bootstrap import build_registry
from modelport.cli.main import main
from modelport.client import RegistryClient
from modelport.config import Settings
from modelport.package.options import PackageOptions
from modelport.security.key_admin import KeyAdmin
from testing_control_plane import control_plane

ROWS = 200


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"a": rng.normal(size=ROWS), "b": rng.normal(size=ROWS)})
    return frame, (frame["a"] - frame["b"] > 0).to_numpy().astype(int)


class Cli:
    """Runs ``modelport`` in this process, over the database (``local``) or through the
    control plane's URL with a key (``remote``)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                 home: Path, client_home: Path) -> None:  # fmt: skip
        self.capsys, self.monkeypatch = capsys, monkeypatch
        self.home, self.client_home = home, client_home
        self.url = ""

    def local(self, *args: str) -> tuple[int, str, str]:
        with self.monkeypatch.context() as env:
            env.setenv("MODELPORT_HOME", str(self.home))
            return self._run(args)

    def remote(self, key: str, *args: str) -> tuple[int, str, str]:
        with self.monkeypatch.context() as env:
            env.setenv("MODELPORT_HOME", str(self.client_home))  # no database here
            env.setenv("MODELPORT_REGISTRY_URL", self.url)
            env.setenv("MODELPORT_API_KEY", key)
            return self._run(args)

    def _run(self, args: tuple[str, ...]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as info:
            main(list(args))
        out, err = self.capsys.readouterr()
        return int(info.value.code or 0), out, err


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    isolated_home: Path,
    tmp_path: Path,
) -> Cli:
    return Cli(capsys, monkeypatch, isolated_home, tmp_path / "client-home")


def _setup(home: Path, data: tuple[pd.DataFrame, np.ndarray]) -> dict[str, str]:
    """churn/1 (a good model) and churn/2 (a dummy) in the database; the keys' tokens."""
    frame, y = data
    options = PackageOptions(sample_input=frame, accelerate=False)
    with build_registry(Settings(home=home)) as registry:
        registry.register(LogisticRegression().fit(frame, y), "churn", options)
        registry.register(DummyClassifier().fit(frame, y), "churn", options)
        admin = KeyAdmin(registry.metadata)
        scopes = {"reader": ["read"], "deployer": ["deploy:churn", "read:churn"]}
        return {name: admin.create(name, s, actor="setup")[1] for name, s in scopes.items()}


@contextmanager
def _running(cli: Cli, **env: str) -> Iterator[str]:
    with control_plane(cli.home, MODELPORT_SECURITY__AUTH="on", **env) as server:
        cli.url = server.url
        yield server.url


def _error(err: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(err)
    return found


def _last_audit(home: Path, action: str) -> Any:
    with build_registry(Settings(home=home)) as registry:
        return next(e for e in registry.get_audit_log("churn") if e.action == action)


def test_version_stats_over_the_url_match_a_local_run(
    cli: Cli, tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    tokens = _setup(cli.home, data)
    sample = tmp_path / "train.csv"
    data[0].to_csv(sample, index=False)
    big = tmp_path / "big.npy"
    np.save(big, np.random.default_rng(1).normal(size=(40_000, 2)))
    stats = ["version", "stats", "churn/1", "--sample", str(sample), "--json"]
    with _running(cli, MODELPORT_SERVE__MAX_UPLOAD_BYTES=str(200_000)):
        code, out, err = cli.remote(tokens["deployer"], *stats)
        assert code == 0, err
        remote = json.loads(out)
        assert _last_audit(cli.home, "version.tags").actor == "key:deployer"
        code, out, err = cli.local(*stats)
        assert code == 0, err
        # The same sample gives the same statistics, stored under the same key.
        assert json.loads(out) == remote
        assert remote["source"] == "recomputed" and remote["features"] == ["a", "b"]
        assert remote["rows"] == ROWS and remote["predictions"]

        code, _, err = cli.remote(tokens["reader"], *stats)
        assert code == 1 and _error(err)["code"] == "PERMISSION_DENIED"
        code, _, err = cli.remote(tokens["deployer"], "version", "stats", "churn/1",
                                  "--sample", str(big), "--json")  # fmt: skip
        assert code == 1 and "larger than the limit of 200000 bytes" in _error(err)["error"]
        code, _, err = cli.remote(tokens["deployer"], "version", "stats", "churn/9",
                                  "--sample", str(sample), "--json")  # fmt: skip
        assert code == 1 and _error(err)["code"] == "VERSION_NOT_FOUND"


def test_sign_and_verify_over_the_url_keep_the_private_key_here(
    cli: Cli, tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    pytest.importorskip("model_signing")
    from modelport.security.signing_keys import generate_key_pair

    tokens = _setup(cli.home, data)
    keys = generate_key_pair(tmp_path / "release")
    other = generate_key_pair(tmp_path / "other")
    config = tmp_path / "server.toml"
    config.write_text(
        f'[signing]\ntrusted_keys = ["{keys.public_key}"]\n'
        'require_signed = ["production", "champion"]\n'
    )
    sign = ["version", "sign", "churn/1", "--key", str(keys.private_key), "--json"]
    verify = ["version", "verify", "churn/1", "--public-key", str(keys.public_key), "--json"]
    with _running(cli, MODELPORT_CONFIG=str(config)):
        # Production takes signed versions only: the server refuses the unsigned one.
        promote = ["version", "promote", "churn/1", "production", "--json"]
        code, _, err = cli.remote(tokens["deployer"], *promote)
        assert code == 1 and "churn/1 is not signed" in _error(err)["error"]

        code, out, err = cli.remote(tokens["deployer"], *sign)
        assert code == 0, err
        signed = json.loads(out)
        assert (signed["model"], signed["version"]) == ("churn", 1)
        entry = _last_audit(cli.home, "version.sign")
        assert entry.actor == "key:deployer" and entry.after["key"] == signed["key"]

        code, remote_out, err = cli.remote(tokens["reader"], *verify)
        assert code == 0, err
        # The control plane checked its own copy too and recorded it, as a local run does
        # (the dashboard's "signature verified" status reads it).
        remote_entry = _last_audit(cli.home, "version.verify")
        assert remote_entry.actor == "key:reader"
        assert remote_entry.after == {"outcome": "passed", "key": signed["key"]}
        code, local_out, err = cli.local(*verify)
        assert code == 0, err
        assert json.loads(remote_out) == json.loads(local_out)
        assert json.loads(remote_out)["key"] == signed["key"]

        wrong = ["version", "verify", "churn/1", "--public-key", str(other.public_key), "--json"]
        remote_code, _, remote_err = cli.remote(tokens["reader"], *wrong)
        failed = _last_audit(cli.home, "version.verify")
        assert failed.actor == "key:reader"
        assert failed.after == {"outcome": "failed", "reason": "untrusted"}
        local_code, _, local_err = cli.local(*wrong)
        assert remote_code == local_code == 1
        assert _error(remote_err) == _error(local_err)
        assert _error(remote_err)["code"] == "SIGNATURE_VERIFICATION_FAILED"
        # The route names a bad key as it was sent, never by the server's scratch file.
        route = f"{cli.url}/api/registry/models/churn/versions/1/verify"
        reader = {"authorization": f"Bearer {tokens['reader']}"}
        bad = httpx.post(route, headers=reader,
                         json={"public_keys": [{"name": "k.pub", "pem": "nope"}]})  # fmt: skip
        assert bad.status_code == 400, bad.text
        assert "k.pub is not a PEM public key" in bad.json()["error"]
        assert "modelport-verify-keys" not in bad.text
        sneaky = httpx.post(route, headers=reader,
                            json={"public_keys": [{"name": "../k.pub", "pem": "x"}]})  # fmt: skip
        assert sneaky.status_code == 400 and "public_keys[0].name" in sneaky.json()["error"]

        # Signed now: production takes it, through the URL, the server checking.
        code, _, err = cli.remote(tokens["deployer"], *promote)
        assert code == 0, err
        assert _last_audit(cli.home, "stage.promote").after["signed_by"] == signed["key"]

        code, _, err = cli.remote(tokens["reader"], *sign)
        assert code == 1 and _error(err)["code"] == "PERMISSION_DENIED"
        champion = ["alias", "set", "churn", "champion", "2", "--force", "--json"]
        code, _, err = cli.remote(tokens["deployer"], *champion)  # unsigned: refused there
        assert code == 1 and _error(err)["code"] == "SIGNATURE_VERIFICATION_FAILED"
        champion[4] = "1"
        code, _, err = cli.remote(tokens["deployer"], *champion)
        assert code == 0, err
        unsigned = ["version", "verify", "churn/2", "--public-key", str(keys.public_key)]
        remote_code, _, remote_err = cli.remote(tokens["reader"], *unsigned)
        local_code, _, local_err = cli.local(*unsigned)
        assert remote_code == local_code == 1 and remote_err == local_err
        assert "churn/2 is not signed" in remote_err


def test_the_server_stores_only_a_signature_of_the_package_it_holds(
    cli: Cli, tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    pytest.importorskip("model_signing")
    from modelport.package.signing import sign_directory
    from modelport.security.signing_keys import generate_key_pair

    tokens = _setup(cli.home, data)
    keys = generate_key_pair(tmp_path / "release")
    with _running(cli) as url:
        with RegistryClient(url, api_key=tokens["reader"], cache_dir=tmp_path / "c") as reader:
            package = reader.package_dir(reader.resolve("churn/1"))
        changed = tmp_path / "changed"
        shutil.copytree(package, changed)
        (changed / "input_example.json").write_text("[]")
        signature = tmp_path / "model.sig"
        sign_directory(changed, keys.private_key, signature)
        body = {"signature": base64.b64encode(signature.read_bytes()).decode(),
                "public_key": keys.public_key.read_text()}  # fmt: skip
        path = f"{url}/api/registry/models/churn/versions/1/signature"
        headers = {"authorization": f"Bearer {tokens['deployer']}"}
        refused = httpx.post(path, json=body, headers=headers, timeout=60)
        assert refused.status_code == 409, refused.text
        answer = refused.json()
        assert answer["kind"] == "SignatureVerificationError"
        assert answer["fields"]["reason"] == "tampered"
        assert answer["fields"]["field"] == "input_example.json"
        # A signature of the stored files, but claimed for another key: refused too.
        sign_directory(package, keys.private_key, signature)
        other = generate_key_pair(tmp_path / "other")
        body = {"signature": base64.b64encode(signature.read_bytes()).decode(),
                "public_key": other.public_key.read_text()}  # fmt: skip
        refused = httpx.post(path, json=body, headers=headers, timeout=60)
        assert refused.status_code == 409 and refused.json()["fields"]["reason"] == "untrusted"
        for garbage in ("not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"):
            body["public_key"] = garbage
            refused = httpx.post(path, json=body, headers=headers, timeout=60)
            assert refused.status_code == 400, refused.text
            assert refused.json()["field"] == "public_key" and "/tmp" not in refused.text
        reader_headers = {"authorization": f"Bearer {tokens['reader']}"}

        assert httpx.post(path, json=body, headers=reader_headers, timeout=60).status_code == 403
        unsigned = httpx.get(path, headers=reader_headers, timeout=60)
        assert unsigned.status_code == 409 and unsigned.json()["fields"]["reason"] == "unsigned"
    with build_registry(Settings(home=cli.home)) as registry:
        assert "modelport.model_signature" not in registry.get_version("churn", 1).tags


def test_validate_over_the_url_runs_the_control_planes_gates_with_the_same_exit_codes(
    cli: Cli, tmp_path: Path, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    tokens = _setup(cli.home, data)
    frame, y = data
    holdout = tmp_path / "holdout.parquet"
    frame.assign(y=y).to_parquet(holdout)
    code, _, err = cli.local("version", "promote", "churn/1", "production")
    assert code == 0, err
    validate = ["version", "validate", "churn/2", "--to", "production", "--json"]
    cases = [
        ([], 0),  # no holdout: the holdout gate is skipped
        (["--holdout", str(holdout), "--label", "y"], 1),  # the dummy loses accuracy
        (["--holdout", str(holdout), "--label", "nope"], 2),  # no such column
    ]
    with _running(cli):
        for extra, expected in cases:
            remote_code, remote_out, err = cli.remote(tokens["deployer"], *validate, *extra)
            assert remote_code == expected, err
            local_code, local_out, _ = cli.local(*validate, *extra)
            assert local_code == expected
            # The report names the holdout by its path here, not the server's copy.
            remote, local = json.loads(remote_out), json.loads(local_out)
            for mine, theirs in zip(remote.pop("results"), local.pop("results"), strict=True):
                assert mine == theirs
            assert remote == local
        code, out, err = cli.remote(tokens["deployer"], "version", "validate", "churn/2",
                                    "--holdout", str(holdout), "--label", "y")  # fmt: skip
        assert code == 1 and "refused: a gate failed" in out, err
        assert "Gates for churn/2 going to production (there now: version 1)" in out
        code, _, err = cli.remote(tokens["reader"], *validate)
        assert code == 1 and _error(err)["code"] == "PERMISSION_DENIED"


def test_serve_through_the_url_takes_signed_versions_only_where_required(
    tmp_path: Path,
) -> None:
    pytest.importorskip("model_signing")
    import subprocess
    import time

    from modelport.security.signing_keys import generate_key_pair
    from testing_models import EchoModel
    from testing_process import MODELPORT, env_for, serving

    keys = generate_key_pair(tmp_path / "release")
    config = tmp_path / "replica.toml"
    config.write_text(
        f'[signing]\ntrusted_keys = ["{keys.public_key}"]\nrequire_signed = ["production"]\n'
    )
    row = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}

    def answer(url: str) -> str:
        response = httpx.post(f"{url}/v2/models/echo/infer", json=row, timeout=10)
        assert response.status_code == 200, response.text
        return str(response.headers["x-modelport-version"])

    with (
        control_plane(tmp_path / "registry") as plane,
        RegistryClient(plane.url, cache_dir=tmp_path / "cache") as client,
    ):
        for offset in (0, 100):
            options = PackageOptions(sample_input=np.zeros((4, 3)),
                                     flavor_options={"config": {"offset": offset}})  # fmt: skip
            client.register(EchoModel(), "echo", options)
        client.sign_version("echo/1", keys.private_key)
        client.promote("echo", 1, "production")
        env = {"MODELPORT_REGISTRY_URL": plane.url, "MODELPORT_CONFIG": str(config),
               "MODELPORT_SERVE__POLL_INTERVAL_S": "0.2"}  # fmt: skip
        with serving(tmp_path / "replica", ["echo@production"], **env) as server:
            assert answer(server.url) == "1"
            client.promote("echo", 2, "production")  # unsigned: the replica refuses it
            deadline = time.monotonic() + 30
            while True:
                stale = httpx.get(f"{server.url}/api/models/echo", timeout=10).json()["stale"]
                if stale and stale.get("version") == 2:
                    break
                assert time.monotonic() < deadline, "the unsigned version was never refused"
                time.sleep(0.1)
            assert "echo/2 is not signed (no model.sig)" in stale["detail"]
            assert answer(server.url) == "1"
        result = subprocess.run(
            [str(MODELPORT), "serve", "echo@production", "--port", "0"],
            env=env_for(tmp_path / "replica", **env),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 1
        assert "echo/2 is not signed (no model.sig)" in result.stderr
