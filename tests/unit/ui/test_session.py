"""Dashboard sessions: what a cookie proves, and when it stops proving it."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from modelport.domain.keys import ApiKey
from modelport.errors import AuthenticationError
from modelport.security.key_book import KeyBook
from modelport.security.keys import issue_key
from modelport.ui.session import CSRF_COOKIE, SESSION_COOKIE, SESSION_S, Sessions

ISSUED = issue_key()
KEY = ApiKey(ISSUED.key_id, "alice", ("read",), ISSUED.secret_hash, datetime.now(UTC), "test")


def book(*keys: ApiKey) -> KeyBook:
    loaded = list(keys)
    keys_book = KeyBook(lambda: loaded, refresh_s=60)
    keys_book.refresh()
    return keys_book


def test_a_session_names_its_key_and_any_book_over_the_same_keys_accepts_it() -> None:
    cookie = Sessions(book(KEY)).open(ISSUED.token, "127.0.0.1")
    assert ISSUED.token not in cookie
    viewer = Sessions(book(KEY)).viewer({SESSION_COOKIE: cookie})  # another instance
    assert viewer is not None
    assert viewer.name == "alice"
    assert viewer.may("read", "churn")
    assert not viewer.may("deploy", "churn")


def test_a_changed_expired_or_revoked_session_is_refused() -> None:
    sessions = Sessions(book(KEY))
    cookie = sessions.open(ISSUED.token, "127.0.0.1")
    key_id, expires, nonce, mac = cookie.split(".")
    longer = f"{key_id}.{int(expires) + 3600}.{nonce}.{mac}"
    assert sessions.viewer({SESSION_COOKIE: longer}) is None
    assert sessions.viewer({SESSION_COOKIE: cookie}, now=time.time() + SESSION_S + 1) is None
    assert sessions.viewer({SESSION_COOKIE: "garbage"}) is None
    revoked = replace(KEY, revoked_at=datetime.now(UTC))
    assert Sessions(book(revoked)).viewer({SESSION_COOKIE: cookie}) is None


def test_each_session_has_its_own_csrf_token() -> None:
    sessions = Sessions(book(KEY))
    first = sessions.viewer({SESSION_COOKIE: sessions.open(ISSUED.token, "127.0.0.1")})
    second = sessions.viewer({SESSION_COOKIE: sessions.open(ISSUED.token, "127.0.0.1")})
    assert first is not None and second is not None
    assert first.csrf != second.csrf
    assert Sessions.csrf_ok(first, first.csrf)
    assert not Sessions.csrf_ok(first, second.csrf)
    assert not Sessions.csrf_ok(first, None)


def test_a_bad_key_opens_nothing_and_without_keys_the_token_is_the_cookies() -> None:
    with pytest.raises(AuthenticationError):
        Sessions(book(KEY)).open("mp_wrong", "127.0.0.1")
    open_sessions = Sessions(None)
    fresh = open_sessions.viewer({})
    assert fresh is not None and fresh.new_csrf and fresh.principal is None
    again = open_sessions.viewer({CSRF_COOKIE: fresh.csrf})
    assert again is not None and again.csrf == fresh.csrf and not again.new_csrf
