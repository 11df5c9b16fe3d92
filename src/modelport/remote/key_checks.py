"""API keys checked through the control plane: a serving replica that follows the
registry by its URL (``MODELPORT_REGISTRY_URL``) has no database to read keys from, so
it asks ``POST /api/keys/verify`` with its own key (scope ``verify``).

Each verdict is kept for the TTL the control plane gives (its ``keys_refresh_s``), so
a client's further requests cost a dict look-up, and a revoked key stops working
within that TTL (plus the control plane's own re-read, when it runs several
instances). Refusals are kept as long, so a bad token repeated does not reach the
control plane again; the guard's per-address throttle counts them as it does locally,
and the control plane throttles failed verifications per replica key. Concurrent
requests with one unseen key share one question. While the control plane cannot be
reached, a key verified before stays usable (logged) and an unseen one gets 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelport.config import Settings, is_loopback
from modelport.errors import (
    AuthenticationError,
    InvalidArgumentError,
    PermissionDeniedError,
    StoreUnavailableError,
    UnavailableError,
)
from modelport.security.key_book import UNUSABLE
from modelport.security.keys import split_token
from modelport.security.principal import Principal
from modelport.security.server_auth import API_KEYS, INSECURE, OFF, ServerAuth

logger = logging.getLogger("modelport.security")

MAX_CACHED = 10_000
_RETRY_S = 1.0
_BEARER = "bearer "
_REFUSED = f"{UNUSABLE}: send Authorization: Bearer <key>"

Ask = Callable[[str], dict[str, Any]]  # RegistryClient.verify_key


@dataclass(frozen=True)
class _Verdict:
    until: float  # monotonic seconds: when to ask again
    principal: Principal | None  # None: refused
    expires_at: float | None  # the key's own expiry (epoch seconds)


class RemoteKeyBook:
    """``KeyChecks`` through the control plane: verdicts cached by the Authorization
    header as sent."""

    def __init__(self, ask: Ask, *, close: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._ask = ask
        self._close = close
        self._clock = clock
        self._verdicts: dict[str, _Verdict] = {}
        self._asking: dict[str, asyncio.Future[_Verdict]] = {}

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The cached verdict on the key (a dict look-up by the header as sent); None
        when it must be asked; ``AuthenticationError`` at once for no key or a text
        that is not a key's shape (nothing to ask about)."""
        verdict = self._verdicts.get(authorization) if authorization is not None else None
        if verdict is None or verdict.until <= self._clock():
            _token(authorization)
            return None
        return _principal(verdict)

    async def verify(self, authorization: str | None) -> Principal:
        """Ask the control plane (in a thread; one question per key at a time)."""
        token = _token(authorization)
        assert authorization is not None  # _token refused None
        pending = self._asking.get(authorization)
        if pending is None:
            ask = asyncio.to_thread(self._verdict, authorization, token)
            pending = asyncio.ensure_future(ask)
            self._asking[authorization] = pending
            pending.add_done_callback(lambda _: self._asking.pop(authorization, None))
        return _principal(await asyncio.shield(pending))

    def _verdict(self, header: str, token: str) -> _Verdict:
        """Ask about ``token`` and keep the verdict under the ``header`` it came in."""
        try:
            answer = self._ask(token)
        except StoreUnavailableError as exc:
            stale = self._verdicts.get(header)
            if stale is not None and stale.principal is not None:
                logger.warning(
                    "cannot reach the control plane to re-check key %r (%s); accepting it "
                    "as last verified", stale.principal.name, exc,
                )  # fmt: skip
                # Asked again in a second, not at every request while it is away.
                kept = _Verdict(self._clock() + _RETRY_S, stale.principal, stale.expires_at)
                self._verdicts[header] = kept
                return kept
            raise UnavailableError(
                "this server checks API keys through its control plane, which cannot be "
                "reached now: retry shortly", retry_after=5,
            ) from None  # fmt: skip
        except (AuthenticationError, PermissionDeniedError) as exc:  # this server's own key
            logger.error("the control plane refuses this server's MODELPORT_API_KEY: %s", exc)
            raise UnavailableError(
                "this server cannot check API keys now: the control plane refuses its own key",
                retry_after=30,
            ) from None
        verdict = _from_answer(answer, self._clock())
        if len(self._verdicts) >= MAX_CACHED:  # bounded: a flood of tokens cannot grow it
            self._verdicts.clear()
        self._verdicts[header] = verdict
        return verdict

    def expires_at(self, key_id: str) -> float | None:
        """When a key verified here expires (None: never, or not verified here)."""
        for verdict in self._verdicts.values():
            if verdict.principal is not None and verdict.principal.key_id == key_id:
                return verdict.expires_at
        return None

    def sign_for(self, key_id: str, message: bytes) -> tuple[Principal, bytes] | None:
        """None: sessions are the control plane's dashboard's, never a replica's."""
        return None

    def refresh(self) -> None:
        """Forget every verdict: the next request with each key asks again."""
        self._verdicts = {}

    def start(self) -> None:
        """Nothing runs in the background: verdicts expire by themselves."""

    def stop(self) -> None:
        """Release the client that asks."""
        if self._close is not None:
            self._close()


def _token(authorization: str | None) -> str:
    if authorization is None or authorization[:7].lower() != _BEARER:
        raise AuthenticationError(_REFUSED)
    token = authorization[7:].strip()
    if split_token(token) is None:  # not a key's shape: nothing to ask about
        raise AuthenticationError(_REFUSED)
    return token


def _principal(verdict: _Verdict) -> Principal:
    principal = verdict.principal
    if principal is None:
        raise AuthenticationError(_REFUSED)
    if verdict.expires_at is not None and time.time() >= verdict.expires_at:
        raise AuthenticationError(_REFUSED)
    return principal


def _from_answer(answer: dict[str, Any], now: float) -> _Verdict:
    until = now + max(0.0, float(answer.get("ttl_s", 0)))
    if not answer.get("valid"):
        return _Verdict(until, None, None)
    principal = Principal(
        str(answer["key_id"]), str(answer["name"]), frozenset(answer["scopes"]),
        answer.get("rate_limit"), answer.get("daily_quota"),
    )  # fmt: skip
    expires = answer.get("expires_at")
    return _Verdict(until, principal, float(expires) if expires is not None else None)


def remote_server_auth(settings: Settings, ask: Ask, close: Callable[[], None]) -> ServerAuth:
    """A replica's authentication (as ``security.server_auth``'s, through the control
    plane): its own key is checked now, so that a key without ``verify``, or a control
    plane that cannot be reached, stops the start with the fix named."""
    host = settings.serve.host
    if not settings.security.auth_required(host):
        close()
        return ServerAuth(OFF if is_loopback(host) else INSECURE, None)
    own = settings.api_key.get_secret_value() if settings.api_key is not None else None
    try:
        if own is None:
            raise InvalidArgumentError(
                "this server requires API keys and follows the control plane at "
                f"{settings.registry_url}, which checks them: set MODELPORT_API_KEY to a "
                "key with the verify scope (modelport key create --name replica --scope "
                "read --scope verify)",
                field="api_key",
            )
        if not ask(own).get("valid"):  # 403 (no verify scope) and 401 raise on their own
            raise AuthenticationError("the control plane does not accept MODELPORT_API_KEY")
    except BaseException:
        close()
        raise
    return ServerAuth(API_KEYS, RemoteKeyBook(ask, close=close))
