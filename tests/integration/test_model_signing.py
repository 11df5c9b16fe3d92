"""Signed models: keys, signing versions and package directories, verification that names
what failed, the policy on promotion, the audit trail, and interoperability with the
``model_signing`` command of the OpenSSF Model Signing project."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelport.bootstrap import build_registry
from modelport.cli.main import main
from modelport.config import Settings
from modelport.errors import SignatureVerificationError
from modelport.package.options import PackageOptions
from modelport.package.signing import verify_directory
from modelport.registry.service import RegistryService
from testing_models import EchoModel

pytest.importorskip("model_signing")

X = np.zeros((4, 3))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def model_signing_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The ``model_signing`` command (its own CLI, not modelport's code)."""
    command = [sys.executable, "-m", "model_signing", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A directory with two key pairs: trusted.pem/.pub and other.pem/.pub."""
    folder = tmp_path / "keys"
    folder.mkdir()
    for name in ("trusted", "other"):
        assert run(capsys, "keys", "generate", "--out", str(folder / name))[0] == 0
    return folder


def settings_for(tmp_path: Path, keys: Path, **signing: object) -> Settings:
    # Gates are off: the signature policy is what is under test here.
    policy = {"trusted_keys": [str(keys / "trusted.pub")], **signing}
    return Settings(home=tmp_path / "home", gates={"targets": []}, signing=policy)


def register(registry: RegistryService, offset: int) -> int:
    options = PackageOptions(sample_input=X, flavor_options={"config": {"offset": offset}})
    return registry.register(EchoModel(), "echo", options).version


def package_dir(registry: RegistryService, number: int) -> Path:
    return registry.artifacts.local_path(registry.get_version("echo", number).artifact_key)


def test_keys_generate_writes_a_private_key_only_its_owner_can_read(
    keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = keys / "trusted.pem", keys / "trusted.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    code, _, err = run(capsys, "keys", "generate", "--out", str(keys / "trusted"))
    assert code == 1 and "exists" in err and "--overwrite" in err
    assert private.read_bytes() == (keys / "trusted.pem").read_bytes()


def test_a_signed_version_verifies_and_signing_and_verifying_are_audited(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path, keys)
    with build_registry(settings) as registry:
        register(registry, offset=1)
    monkeypatch.setenv("MODELPORT_HOME", str(settings.home))
    code, out, err = run(capsys, "version", "sign", "echo/1", "--key", str(keys / "trusted.pem"))
    assert code == 0, err
    assert "Signed echo/1" in out
    public = str(keys / "trusted.pub")
    code, out, _ = run(capsys, "version", "verify", "echo/1", "--public-key", public, "--json")
    assert code == 0
    verified = json.loads(out)
    assert verified["verified"] is True and verified["version"] == 1
    code, _, err = run(
        capsys, "version", "verify", "echo/1", "--public-key", str(keys / "other.pub")
    )
    assert code == 1 and "not made by a trusted key" in err
    with build_registry(settings) as registry:
        trail = [(e.action, e.after) for e in registry.get_audit_log("echo")]
    actions = [action for action, _ in trail]
    assert actions[:3] == ["version.verify", "version.verify", "version.sign"]
    assert trail[0][1] == {"outcome": "failed", "reason": "untrusted"}
    assert trail[1][1] == {"outcome": "passed", "key": verified["key"]}
    assert trail[2][1] is not None and trail[2][1]["key"] == verified["key"]


def tamper_flip_a_byte(registry: RegistryService, keys: Path) -> str:
    target = package_dir(registry, 1) / "model" / "code" / "testing_models.py"
    data = bytearray(target.read_bytes())
    data[10] ^= 0x01
    target.write_bytes(bytes(data))
    return "model/code/testing_models.py"


def tamper_add_a_file(registry: RegistryService, keys: Path) -> str:
    (package_dir(registry, 1) / "model" / "extra.py").write_text("import os\n")
    return "model/extra.py"


def tamper_sign_with_another_key(registry: RegistryService, keys: Path) -> str:
    registry.sign_version("echo/1", keys / "other.pem")
    return "model.sig"


def tamper_use_another_versions_signature(registry: RegistryService, keys: Path) -> str:
    register(registry, offset=2)
    registry.sign_version("echo/2", keys / "trusted.pem")
    other = registry.get_version("echo", 2).tags["modelport.model_signature"]
    registry.set_version_tags("echo", 1, {"modelport.model_signature": other})
    return "model.sig"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (tamper_flip_a_byte, "tampered"),
        (tamper_add_a_file, "tampered"),
        (tamper_sign_with_another_key, "untrusted"),
        (tamper_use_another_versions_signature, "unreadable"),
    ],
)
def test_a_tampered_or_wrongly_signed_version_is_refused_for_production(
    tmp_path: Path, keys: Path, tamper: Callable[[RegistryService, Path], str], reason: str
) -> None:
    settings = settings_for(tmp_path, keys, require_signed=["production"])
    with build_registry(settings) as registry:
        register(registry, offset=1)
        registry.sign_version("echo/1", keys / "trusted.pem")
        failed = tamper(registry, keys)
        with pytest.raises(SignatureVerificationError) as info:
            registry.promote("echo", 1, "production", force=True, skip_gates="urgent")
        assert info.value.reason == reason
        assert (info.value.model, info.value.version, info.value.field) == ("echo", 1, failed)
        assert failed in info.value.message
        assert "production" not in registry.get_version("echo", 1).aliases


def test_another_versions_signature_does_not_verify_this_versions_files(
    tmp_path: Path, keys: Path
) -> None:
    # Version 2's signature file copied over version 1's: the signature is genuine and
    # by a trusted key, but the files version 1 holds are not the ones it signed.
    settings = settings_for(tmp_path, keys)
    with build_registry(settings) as registry:
        register(registry, offset=1)
        register(registry, offset=2)
        registry.sign_version("echo/1", keys / "trusted.pem")
        registry.sign_version("echo/2", keys / "trusted.pem")
        theirs = registry.signature_file(registry.get_version("echo", 2))
        assert theirs is not None
        with pytest.raises(SignatureVerificationError) as info:
            verify_directory(
                package_dir(registry, 1), theirs, [keys / "trusted.pub"], what="echo/1"
            )
        assert info.value.reason == "tampered"
        assert info.value.field is not None
        assert f"{info.value.field!r} differs from the signed file" in info.value.message
        # Stored under version 1's own key, it no longer matches the recorded sha256.
        mine = registry.signature_file(registry.get_version("echo", 1))
        assert mine is not None
        mine.write_bytes(theirs.read_bytes())
        with pytest.raises(SignatureVerificationError) as info:
            registry.verify_version("echo/1", [keys / "trusted.pub"])
        assert info.value.reason == "unreadable" and "sha256" in info.value.message


def test_the_policy_refuses_unsigned_versions_only_where_it_applies(
    tmp_path: Path, keys: Path
) -> None:
    settings = settings_for(tmp_path, keys, require_signed=["production", "champion"])
    with build_registry(settings) as registry:
        register(registry, offset=1)
        for move in (
            lambda: registry.promote("echo", 1, "production", force=True),
            lambda: registry.set_alias("echo", "champion", 1, force=True),
        ):
            with pytest.raises(SignatureVerificationError) as info:
                move()
            assert info.value.reason == "unsigned" and info.value.field == "model.sig"
            assert "modelport version sign" in info.value.message
        registry.promote("echo", 1, "staging")  # not listed: no signature needed
        registry.sign_version("echo/1", keys / "trusted.pem")
        registry.promote("echo", 1, "production")
        entry = registry.get_audit_log("echo")[0]
        assert (entry.action, entry.target) == ("stage.promote", "production")
        signed = [e for e in registry.get_audit_log("echo") if e.action == "version.sign"]
        assert entry.after is not None and signed[0].after is not None
        assert entry.after["signed_by"] == signed[0].after["key"]


def test_a_package_signed_by_the_model_signing_cli_verifies_in_modelport(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(tmp_path, keys)
    with build_registry(settings) as registry:
        register(registry, offset=1)
        directory = tmp_path / "echo-package"
        shutil.copytree(package_dir(registry, 1), directory)
    signature = directory / "model.sig"
    made = model_signing_cli(
        "sign", "key", directory, "--signature", signature, "--private_key", keys / "trusted.pem"
    )
    assert made.returncode == 0, made.stderr
    public = str(keys / "trusted.pub")
    code, out, err = run(capsys, "version", "verify", str(directory), "--public-key", public)
    assert code == 0, err
    assert "Verified" in out
    # The signature travels with the package: it is registered like any other package.
    with build_registry(settings) as registry:
        assert registry.register(directory, "echo", PackageOptions()).version == 2
    manifest = directory / "modelport.yaml"
    manifest.write_text(manifest.read_text() + "\n# tampered\n")
    code, _, err = run(capsys, "version", "verify", str(directory), "--public-key", public)
    assert code == 1
    assert "does not match its signature: 'modelport.yaml' differs from the signed file" in err


def test_what_modelport_signs_verifies_with_the_model_signing_cli(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(tmp_path, keys)
    with build_registry(settings) as registry:
        register(registry, offset=1)
        version = registry.sign_version("echo/1", keys / "trusted.pem")
        stored, signature = package_dir(registry, 1), registry.signature_file(version)
        assert signature is not None
        copy = tmp_path / "copy"
        shutil.copytree(stored, copy)
    public = keys / "trusted.pub"
    checked = model_signing_cli(
        "verify", "key", copy, "--signature", signature, "--public_key", public
    )
    assert checked.returncode == 0, checked.stderr
    assert "Verification succeeded" in checked.stdout
    # A package directory signed by `modelport version sign DIR` too.
    key = str(keys / "trusted.pem")
    assert run(capsys, "version", "sign", str(copy), "--key", key)[0] == 0
    checked = model_signing_cli(
        "verify", "key", copy, "--signature", copy / "model.sig", "--public_key", public
    )
    assert checked.returncode == 0, checked.stderr
    # ... and the CLI refuses it under another key, as modelport does.
    wrong = model_signing_cli(
        "verify", "key", copy, "--signature", copy / "model.sig", "--public_key",
        keys / "other.pub",
    )  # fmt: skip
    assert wrong.returncode != 0


def test_the_artifacts_gate_verifies_a_signed_version(tmp_path: Path, keys: Path) -> None:
    from modelport.domain.gates import GateOutcome
    from modelport.rollout.gates import GateContext
    from modelport.rollout.gates_package import ArtifactGate

    settings = settings_for(tmp_path, keys)
    with build_registry(settings) as registry:
        register(registry, offset=1)
        signed = registry.sign_version("echo/1", keys / "trusted.pem")
        context = GateContext(registry, settings)
        try:
            passed = ArtifactGate().evaluate(signed, None, context)
            assert passed.outcome is GateOutcome.PASSED
            assert passed.details["signing"].startswith("signed by trusted.pub")
            resigned = registry.sign_version("echo/1", keys / "other.pem")
            failed = ArtifactGate().evaluate(resigned, None, context)
        finally:
            context.close()
        assert failed.outcome is GateOutcome.FAILED
        assert failed.details == {"check": "model signature", "file": "model.sig"}
        assert "not made by a trusted key" in failed.message


def test_a_server_requiring_every_model_signed_loads_only_signed_package_directories(
    tmp_path: Path, keys: Path
) -> None:
    from modelport.flavors.catalog import default_catalog
    from modelport.package.signing import SigningPolicy, sign_directory
    from modelport.serving.loader import ModelLoader
    from modelport.serving.sources import parse_source

    with build_registry(settings_for(tmp_path, keys)) as registry:
        register(registry, offset=1)
        directory = tmp_path / "echo-package"
        shutil.copytree(package_dir(registry, 1), directory)
    policy = SigningPolicy((keys / "trusted.pub",), frozenset({"*"}))
    loader = ModelLoader(
        None, default_catalog(), accelerate=False, version_check="strict", signing=policy
    )
    source = parse_source(str(directory))
    with pytest.raises(SignatureVerificationError) as info:
        loader.load(source, None)
    assert info.value.reason == "unsigned"
    sign_directory(directory, keys / "trusted.pem", directory / "model.sig")
    with loader.load(source, None) as loaded:
        assert np.asarray(loaded.predict(X)).shape[0] == len(X)


def test_promoting_a_deployments_unsigned_candidate_is_refused(tmp_path: Path, keys: Path) -> None:
    settings = settings_for(tmp_path, keys, require_signed=["production"])
    with build_registry(settings) as registry:
        register(registry, offset=1)
        register(registry, offset=2)
        registry.create_deployment("echo", 1)
        registry.deploy_canary("echo", 2, 10)
        with pytest.raises(SignatureVerificationError) as info:
            registry.promote_deployment("echo", skip_gates="urgent")
        assert (info.value.reason, info.value.version) == ("unsigned", 2)
        assert registry.get_deployment("echo").champion.version == 1
        registry.sign_version("echo/2", keys / "trusted.pem")
        assert registry.promote_deployment("echo").champion.version == 2
        entry = registry.get_audit_log("echo")[0]
        assert entry.action == "deployment.promote" and entry.after is not None
        signer = next(e for e in registry.get_audit_log("echo") if e.action == "version.sign")
        assert signer.after is not None
        assert entry.after["details"]["signed_by"] == signer.after["key"]


def test_a_version_whose_files_changed_since_registration_is_not_signed(
    tmp_path: Path, keys: Path
) -> None:
    from modelport.errors import IntegrityError

    with build_registry(settings_for(tmp_path, keys)) as registry:
        register(registry, offset=1)
        (package_dir(registry, 1) / "model" / "extra.py").write_text("import os\n")
        with pytest.raises(IntegrityError) as info:
            registry.sign_version("echo/1", keys / "trusted.pem")
        assert info.value.field == "model/extra.py"
        assert "modelport.model_signature" not in registry.get_version("echo", 1).tags
        assert "version.sign" not in [e.action for e in registry.get_audit_log("echo")]
