"""Who is looking at the dashboard: a session opened with an API key, and CSRF tokens.

A person signs in by pasting an API key into the login form. The server checks it like
any ``Authorization: Bearer`` key (``KeyBook.authenticate``) and answers with a session
cookie ``<key_id>.<expires>.<nonce>.<mac>``: the MAC is ``KeyBook.sign_for`` over the
rest, under a key derived from the API key's stored hash. So

- the cookie never holds the API key, and no server keeps session state: every
  control-plane instance over the same database checks any instance's cookie (several
  instances behind a load balancer need no sticky sessions and no shared secret);
- a session ends when its key does: once the key is revoked or expires, ``sign_for``
  finds no key at the next re-read of the keys (``keys_refresh_s``) and the cookie is
  refused; it also ends after ``SESSION_S`` or at logout.

Signing out is server-side: the session's id (the cookie's random part) is recorded in
the metadata database until the cookie would have lapsed (``ui.revocations``), and every
instance over that database refuses the cookie from then on, even a copy of it.

Every action (a POST) carries a CSRF token in its form: with a session, the MAC of
``csrf.<nonce>`` under the same key (bound to the session, checkable anywhere); with no
keys checked (``auth`` "off"), a random token that must equal the ``modelport_csrf``
cookie (double submit). The cookies are ``HttpOnly``, ``SameSite=Strict`` and, over
HTTPS, ``Secure``.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from modelport.domain.keys import ADMIN
from modelport.security.failures import FailureThrottle
from modelport.security.key_checks import KeyChecks
from modelport.security.principal import Principal
from modelport.server.http.access import allows, allows_some

SESSION_COOKIE = "modelport_session"
CSRF_COOKIE = "modelport_csrf"
SESSION_S = 12 * 3600  # a working day: then sign in again


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Viewer:
    """The person behind a request: their key's principal (None when the server checks
    no keys: everyone may do everything, as on the API), and the CSRF token their forms
    carry. ``new_csrf`` is set when that token must be stored in a cookie first."""

    principal: Principal | None
    csrf: str
    new_csrf: bool = False
    session: str | None = None  # the session's id (its cookie's random part), if any
    expires: int = 0  # when the session's cookie lapses (Unix time)

    @property
    def name(self) -> str | None:
        """The key's name (None without keys)."""
        return self.principal.name if self.principal is not None else None

    def may(self, action: str, model: str | None) -> bool:
        """Whether the viewer may ``action`` (read, deploy) ``model`` (None: some model)."""
        if self.principal is None:
            return True
        if model is None:
            return allows_some(self.principal, (action,))
        return allows(self.principal, (action,), model)

    @property
    def admin(self) -> bool:
        """Whether the key is an administrator's."""
        return self.principal is None or ADMIN in self.principal.scopes


class Sessions:
    """Opens and checks dashboard sessions against the worker's ``KeyBook``."""

    def __init__(self, keys: KeyChecks | None, throttle: FailureThrottle | None = None) -> None:
        self._keys = keys
        self._throttle = throttle if throttle is not None else FailureThrottle()

    @property
    def required(self) -> bool:
        """Whether a person must sign in (the server checks API keys)."""
        return self._keys is not None

    def open(self, token: str, address: str, *, now: float | None = None) -> str:
        """The session cookie's value for the API key ``token``; ``AuthenticationError``
        for a key that is not usable, ``RateLimitedError`` after too many failures from
        ``address`` (the API's throttle: 20 in 60 s)."""
        from modelport.errors import AuthenticationError

        keys = self._keys
        assert keys is not None, "no sessions without keys"
        self._throttle.check(address)
        try:
            principal = keys.authenticate("Bearer " + token.strip())
            if principal is None:  # a book over the database knows every key
                raise AuthenticationError("missing, malformed, unknown, revoked or expired API key")
        except AuthenticationError:
            self._throttle.failed(address)
            raise
        expires = int((now if now is not None else time.time()) + SESSION_S)
        body = f"{principal.key_id}.{expires}.{secrets.token_urlsafe(16)}"
        signed = keys.sign_for(principal.key_id, body.encode())
        if signed is None:  # revoked between the two look-ups
            raise AuthenticationError("the API key was revoked while signing in")
        return f"{body}.{_b64(signed[1])}"

    def viewer(self, cookies: Mapping[str, str], *, now: float | None = None) -> Viewer | None:
        """Who sends these cookies: None when the server checks keys and they hold no
        valid session (expired, tampered with, or of a key revoked since)."""
        if self._keys is None:
            return self.anonymous(cookies)
        return self._session(self._keys, cookies.get(SESSION_COOKIE, ""), now)

    @staticmethod
    def anonymous(cookies: Mapping[str, str]) -> Viewer:
        """A viewer with no key (the server checks none, or the login form), whose CSRF
        token is the ``modelport_csrf`` cookie's (a new one when it has none)."""
        token = cookies.get(CSRF_COOKIE, "")
        if len(token) < 20:
            return Viewer(None, secrets.token_urlsafe(24), new_csrf=True)
        return Viewer(None, token)

    def _session(self, keys: KeyChecks, cookie: str, now: float | None) -> Viewer | None:
        parts = cookie.split(".")
        if len(parts) != 4 or not parts[1].isdigit():
            return None
        key_id, expires, nonce, mac = parts
        if int(expires) <= (now if now is not None else time.time()):
            return None
        signed = keys.sign_for(key_id, f"{key_id}.{expires}.{nonce}".encode())
        if signed is None or not hmac.compare_digest(_b64(signed[1]), mac):
            return None
        csrf = keys.sign_for(key_id, f"csrf.{nonce}".encode())
        if csrf is None:
            return None
        return Viewer(signed[0], _b64(csrf[1]), session=nonce, expires=int(expires))

    @staticmethod
    def csrf_ok(viewer: Viewer, submitted: str | None) -> bool:
        """Whether a form's CSRF token is the viewer's."""
        return submitted is not None and hmac.compare_digest(viewer.csrf, submitted)
