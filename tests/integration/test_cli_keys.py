"""``modelport key create|list|revoke``: the key printed once (stdout, nothing else
there), listed without secrets, revoked by name or id; bad scopes named."""

from __future__ import annotations

import json

import pytest

from modelport.cli.main import main
from modelport.security.keys import split_token


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_create_list_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "key", "create", "--name", "ci", "--scope", "predict:churn",
        "--scope", "feedback:churn", "--expires", "90d", "--rate-limit", "50/s",
        "--daily-quota", "1000",
    )  # fmt: skip
    assert code == 0, err
    token = out.strip()
    assert split_token(token) is not None  # stdout is the key alone: `KEY=$(modelport ...)`
    assert "only time" in err
    code, out, _ = run(capsys, "key", "list", "--json")
    [listed] = json.loads(out)
    assert listed["name"] == "ci" and listed["scopes"] == ["predict:churn", "feedback:churn"]
    assert (listed["rate_limit"], listed["daily_quota"]) == ("50/s", 1000)
    assert listed["expires_at"] is not None and listed["revoked_at"] is None
    assert token not in out and token.split("_", 2)[2] not in out
    code, out, _ = run(capsys, "key", "list")
    assert "ci" in out and "active" in out
    code, out, _ = run(capsys, "key", "revoke", "ci", "--json")
    assert code == 0 and json.loads(out)["revoked_at"] is not None
    code, out, err = run(capsys, "key", "revoke", "ci")
    assert code == 1 and "no unrevoked API key" in err
    code, out, _ = run(capsys, "key", "create", "--name", "ci", "--scope", "admin", "--json")
    assert code == 0 and json.loads(out)["key"].startswith("mp_")


def test_bad_scopes_and_durations_are_refused_naming_what_is_accepted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "key", "create", "--name", "x", "--scope", "infer:churn")
    assert code == 1
    assert "predict[:MODEL], feedback[:MODEL], read[:MODEL], deploy[:MODEL], admin, metrics" in err
    code, _, err = run(
        capsys, "key", "create", "--name", "x", "--scope", "admin", "--expires", "soon"
    )
    assert code == 1 and "90d" in err
    code, _, err = run(
        capsys, "key", "create", "--name", "x", "--scope", "admin", "--rate-limit", "fast"
    )
    assert code == 1 and "100/s" in err
