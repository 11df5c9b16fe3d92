"""A worker's key book: keys re-read in the background, a failed re-read keeps the
last ones, a verified token is checked again after each re-read, expiry per request."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from modelport.domain.keys import ApiKey
from modelport.errors import AuthenticationError
from modelport.security.key_book import KeyBook
from modelport.security.keys import issue_key

NOW = datetime.now(UTC)


def stored(name: str, **fields: object) -> tuple[ApiKey, str]:
    issued = issue_key()
    key = ApiKey(issued.key_id, name, ("predict",), issued.secret_hash, NOW, "t")
    return replace(key, **fields), issued.token  # type: ignore[arg-type]


def test_revocation_and_expiry_apply_even_to_tokens_verified_before() -> None:
    key, token = stored("ci")
    keys = [key]
    book = KeyBook(lambda: keys, refresh_s=60)
    book.refresh()
    assert book.authenticate(f"Bearer {token}").name == "ci"
    assert book.authenticate(f"bearer  {token} ").name == "ci"  # scheme case, spaces
    keys[0] = replace(key, revoked_at=NOW)
    book.refresh()
    with pytest.raises(AuthenticationError):
        book.authenticate(f"Bearer {token}")
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    keys[0] = replace(key, expires_at=soon)
    book.refresh()
    assert book.usable() == 1
    assert book.authenticate(f"Bearer {token}").name == "ci"
    time.sleep(0.4)
    with pytest.raises(AuthenticationError):
        book.authenticate(f"Bearer {token}")  # remembered as verified, expired all the same
    assert book.usable() == 0


def test_a_failed_re_read_keeps_the_last_keys(caplog: pytest.LogCaptureFixture) -> None:
    key, token = stored("ci")
    calls = {"n": 0}

    def load() -> list[ApiKey]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("the database is down")
        return [key]

    closed: list[bool] = []
    book = KeyBook(load, refresh_s=0.05, close=lambda: closed.append(True))
    book.refresh()
    book.start()
    try:
        deadline = time.monotonic() + 5
        while calls["n"] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert calls["n"] >= 3
        assert book.authenticate(f"Bearer {token}").name == "ci"
    finally:
        book.stop()
    assert closed == [True]
    assert "cannot re-read the API keys" in caplog.text
