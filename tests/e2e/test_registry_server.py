"""The control plane's registry over HTTP, as users meet it: API keys decide who may
change what and the audit trail names the key; an upload whose files do not match their
digests is refused and leaves nothing; the CLI and ``modelport.api`` work through
``MODELPORT_REGISTRY_URL`` and refuse, naming why, what needs the database itself."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelport
from modelport.bootstrap import build_registry
from modelport.cli.main import main
from modelport.client import RegistryClient
from modelport.config import Settings
from modelport.errors import (
    AuthenticationError,
    IntegrityError,
    ModelNotFoundError,
    PermissionDeniedError,
)
from modelport.package.manifest import manifest_digest
from modelport.package.options import PackageOptions
from modelport.remote.errors import error_from_answer
from modelport.security.key_admin import KeyAdmin
from testing_control_plane import control_plane


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    return frame, (frame["a"] > frame["b"]).to_numpy().astype(int)


def _options() -> PackageOptions:
    return PackageOptions(sample_input=_data()[0], accelerate=False)


def _model() -> Any:
    frame, y = _data()
    return LogisticRegression().fit(frame, y)


def _keys(home: Path, **scopes: list[str]) -> dict[str, str]:
    with build_registry(Settings(home=home)) as registry:
        admin = KeyAdmin(registry.metadata)
        return {
            name: admin.create(name, wanted, actor="setup")[1] for name, wanted in scopes.items()
        }


def test_keys_decide_who_changes_what_and_the_audit_names_the_key(
    isolated_home: Path, tmp_path: Path
) -> None:
    tokens = _keys(
        isolated_home, reader=["read"], deployer=["deploy:churn", "read:churn"], admin=["admin"]
    )
    # The server's own user must not appear: changes are recorded under the key.
    with control_plane(isolated_home, MODELPORT_SECURITY__AUTH="on",
                       MODELPORT_USER="server-user") as server:  # fmt: skip
        anonymous = RegistryClient(server.url, cache_dir=tmp_path / "c0")
        with anonymous, pytest.raises(AuthenticationError):
            anonymous.list_models()
        deployer = RegistryClient(server.url, api_key=tokens["deployer"], cache_dir=tmp_path / "c1")
        reader = RegistryClient(server.url, api_key=tokens["reader"], cache_dir=tmp_path / "c2")
        admin = RegistryClient(server.url, api_key=tokens["admin"], cache_dir=tmp_path / "c3")
        with deployer, reader, admin:
            _deployer_then_reader(deployer, reader)
            admin.register(_model(), "fraud", _options())
            # Listings show a key only the models it may read.
            assert [m.name for m in deployer.list_models()] == ["churn"]
            assert {v.name for v in deployer.search_versions()} == {"churn"}
            assert {e.model for e in deployer.get_audit_log()} == {"churn"}
            assert [m.name for m in reader.list_models()] == ["churn", "fraud"]


def _deployer_then_reader(deployer: RegistryClient, reader: RegistryClient) -> None:
    version = deployer.register(_model(), "churn", _options())
    assert version.created_by == "key:deployer"
    deployer.promote("churn", 1, "staging")
    with pytest.raises(PermissionDeniedError) as other:
        deployer.register(_model(), "fraud", _options())
    assert other.value.scope == "deploy:fraud"
    with pytest.raises(PermissionDeniedError):  # 403 before any lookup: fraud does not exist
        deployer.resolve("fraud/1")

    assert [m.name for m in reader.list_models()] == ["churn"]
    assert reader.resolve("churn@staging").version == 1
    with reader.load("churn@staging") as loaded:
        assert loaded.predict(_data()[0]).shape == (120,)
    with pytest.raises(PermissionDeniedError) as refused:
        reader.set_alias("churn", "champion", 1)
    assert refused.value.scope == "deploy:churn"
    with pytest.raises(PermissionDeniedError):
        reader.delete_model("churn")

    actors = {(e.action, e.actor) for e in reader.get_audit_log("churn")}
    assert actors == {("model.create", "key:deployer"), ("version.create", "key:deployer"),
                      ("stage.promote", "key:deployer")}  # fmt: skip


def _package(tmp_path: Path) -> Path:
    path = tmp_path / "package"
    modelport.save(_model(), path, sample_input=_data()[0], accelerate=False)
    return path


def _tar(package: Path, replace: dict[str, bytes], extra: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(p for p in package.rglob("*") if p.is_file()):
            relpath = path.relative_to(package).as_posix()
            content = replace.get(relpath, path.read_bytes())
            info = tarfile.TarInfo(relpath)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for relpath, content in extra.items():
            info = tarfile.TarInfo(relpath)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("replace", "extra", "header", "field"),
    [
        ({"input_example.json": b"[]"}, {}, None, "input_example.json"),
        ({}, {"../escape.txt": b"x"}, None, "../escape.txt"),
        ({}, {"model/extra.bin": b"x"}, None, "model/extra.bin"),
        ({}, {}, "0" * 64, "modelport.yaml"),
    ],
    ids=["changed-file", "path-outside", "unlisted-file", "wrong-manifest-digest"],
)
def test_an_upload_that_does_not_match_its_digests_is_refused_and_leaves_nothing(
    isolated_home: Path, tmp_path: Path, replace: dict[str, bytes], extra: dict[str, bytes],
    header: str | None, field: str,
) -> None:  # fmt: skip
    package = _package(tmp_path)
    body = _tar(package, replace, extra)
    digest = header or manifest_digest(package)
    with control_plane(isolated_home) as server:
        answer = httpx.post(
            f"{server.url}/api/registry/models/churn/versions",
            content=body,
            headers={"content-type": "application/x-tar", "x-modelport-manifest-sha256": digest},
            timeout=60,
        )
        assert answer.status_code == 422, answer.text
        error = error_from_answer(answer.status_code, answer.json(), server.url)
        assert isinstance(error, IntegrityError) and error.field == field
        with RegistryClient(server.url, cache_dir=tmp_path / "cache") as client:
            with pytest.raises(ModelNotFoundError):
                client.get_model("churn")
            assert client.get_audit_log() == []
    artifacts = isolated_home / "artifacts"
    assert not artifacts.exists() or not any(p.is_file() for p in artifacts.rglob("*"))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_the_cli_and_the_api_work_through_the_registry_url(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import joblib

    model_file = tmp_path / "model.joblib"
    joblib.dump(_model(), model_file)
    sample = tmp_path / "sample.csv"
    _data()[0].to_csv(sample, index=False)
    server_home = tmp_path / "server-home"
    tokens = _keys(server_home, admin=["admin"])
    with control_plane(server_home, MODELPORT_SECURITY__AUTH="on") as server:
        # This machine has no database: its home stays empty.
        monkeypatch.setenv("MODELPORT_REGISTRY_URL", server.url)
        monkeypatch.setenv("MODELPORT_API_KEY", tokens["admin"])
        code, out, err = run(capsys, "model", "register", str(model_file), "--name", "churn",
                             "--sample", str(sample), "--no-accelerate", "--json")  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["created_by"] == "key:admin"
        assert run(capsys, "version", "promote", "churn/1", "staging")[0] == 0
        code, out, _ = run(capsys, "alias", "set", "churn", "champion", "1", "--json")
        assert code == 0
        code, out, _ = run(capsys, "model", "show", "churn", "--json")
        assert json.loads(out)["aliases"] == {"champion": 1, "staging": 1}
        headers = {"authorization": f"Bearer {tokens['admin']}"}
        for text, names in (("flavor = 'sklearn'", ["churn"]), ("name = 'nope'", [])):
            listed = httpx.get(f"{server.url}/api/registry/models", params={"filter": text},
                               headers=headers, timeout=10)  # fmt: skip
            assert [m["name"] for m in listed.json()["models"]] == names
        code, out, _ = run(capsys, "version", "list", "--filter", "name = 'churn'", "--json")
        assert [v["version"] for v in json.loads(out)] == [1]
        code, out, _ = run(capsys, "audit", "list", "--model", "churn", "--json")
        assert {e["actor"] for e in json.loads(out)} == {"key:admin"}
        code, out, err = run(capsys, "key", "create", "--name", "ci", "--scope", "read")
        assert code == 0, err
        code, out, _ = run(capsys, "key", "list", "--json")
        assert sorted(k["name"] for k in json.loads(out)) == ["admin", "ci"]
        code, out, err = run(capsys, "deploy", "create", "churn", "--version", "1", "--json")
        assert code == 0, err
        assert json.loads(out)["arms"][0]["version"] == 1
        code, out, err = run(capsys, "deploy", "history", "churn", "--json")
        assert code == 0, err
        assert "key:admin" in out
        code, _, err = run(capsys, "deploy", "delete", "churn", "--yes")
        assert code == 0, err
        code, _, err = run(capsys, "db", "upgrade")
        assert code != 0 and "MODELPORT_REGISTRY_URL" in err and "database" in err

        assert modelport.resolve("churn@champion").version == 1
        assert [m.name for m in modelport.list_models()] == ["churn"]
        with modelport.load("models:/churn@staging") as loaded:
            assert loaded.predict(_data()[0]).shape == (120,)
        code, _, err = run(capsys, "alias", "delete", "churn", "champion")
        assert code == 0, err
        code, _, err = run(capsys, "model", "delete", "churn", "--yes")
        assert code != 0 and "staging" in err  # AliasInUseError, raised by the server
    assert not (isolated_home / "modelport.db").exists()


def test_https_is_verified_against_the_configured_ca_bundle(
    isolated_home: Path, tmp_path: Path
) -> None:
    from modelport.errors import StoreUnavailableError
    from testing_tls import make_pki

    pki = make_pki(tmp_path / "pki")
    tls = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    with control_plane(isolated_home, tls) as server:
        assert server.url.startswith("https://")
        trusted = Settings(registry_url=server.url, registry_ca_bundle=pki.ca.cert,
                           home=tmp_path / "client")  # fmt: skip
        with RegistryClient.from_settings(trusted) as client:
            assert client.list_models() == []
        # Verified by default: the system's CAs do not know the test CA.
        untrusting = RegistryClient.from_settings(Settings(registry_url=server.url))
        with untrusting, pytest.raises(StoreUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.list_models()


def test_an_upload_over_the_limit_is_refused_with_413(isolated_home: Path, tmp_path: Path) -> None:
    from modelport.errors import PayloadTooLargeError

    with (
        control_plane(isolated_home, MODELPORT_SERVE__MAX_UPLOAD_BYTES="2048") as server,
        RegistryClient(server.url, cache_dir=tmp_path / "cache") as client,
    ):
        with pytest.raises(PayloadTooLargeError, match="2048 bytes"):
            client.register(_model(), "churn", _options())
        with pytest.raises(ModelNotFoundError):
            client.get_model("churn")
