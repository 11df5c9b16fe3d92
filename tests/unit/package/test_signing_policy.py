"""The ``[signing]`` policy: which stages and aliases need signed versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from modelport.config import Settings, SigningSettings
from modelport.package.signing import SigningPolicy


def test_no_policy_without_required_targets() -> None:
    assert SigningPolicy.from_settings(SigningSettings()) is None
    assert SigningPolicy.from_settings(SigningSettings(trusted_keys=[Path("k.pub")])) is None


def test_listed_stages_and_aliases_need_signed_versions() -> None:
    settings = SigningSettings(trusted_keys=[Path("~/k.pub")], require_signed=["production", "vip"])
    policy = SigningPolicy.from_settings(settings)
    assert policy is not None
    assert policy.trusted_keys == (Path("~/k.pub").expanduser(),)
    assert policy.requires("production") and policy.requires("vip")
    assert not policy.requires("staging") and not policy.requires(None)


def test_a_star_covers_every_version_a_server_loads() -> None:
    policy = SigningPolicy((Path("k.pub"),), frozenset({"*"}))
    assert policy.requires("staging") and policy.requires(None)


def test_required_targets_without_trusted_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="require_signed needs trusted_keys"):
        SigningSettings(require_signed=["production"])
    config = tmp_path / "modelport.toml"
    config.write_text('[signing]\ntrusted_keys = ["a.pub"]\nrequire_signed = ["production"]\n')
    assert Settings(config=config).signing.require_signed == ["production"]
