"""Whether a server checks API keys, and the keys it checks them against.

``[security] auth = "auto"`` (the default) turns keys on when the server binds an
address other machines can reach, and off on loopback; ``"on"`` and ``"off"`` decide
outright. A server that must check keys and finds none usable refuses to start,
naming the fix. One reachable from elsewhere without keys (``--insecure-no-auth`` or
``auth = "off"``) starts with a loud warning, and says so in ``GET /api``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from modelport.config import Settings, is_loopback
from modelport.domain.keys import ApiKey
from modelport.errors import InvalidArgumentError
from modelport.metadata.store import MetadataStore
from modelport.security.key_book import KeyBook
from modelport.security.key_checks import KeyChecks

logger = logging.getLogger("modelport.security")

API_KEYS, OFF, INSECURE = "api-keys", "off", "insecure-no-auth"
CREATE_ADMIN = "modelport key create --name admin --scope admin"


@dataclass(frozen=True)
class ServerAuth:
    """How a server authenticates (``mode``) and its keys (None unless ``api-keys``)."""

    mode: str
    keys: KeyChecks | None

    @property
    def warning(self) -> str | None:
        """The loud line an insecure server logs at start."""
        if self.mode != INSECURE:
            return None
        return (
            "INSECURE: serving without API keys on an address other machines can reach; "
            "anyone who reaches it can call every route, change deployments and send "
            f"feedback. Create a key ({CREATE_ADMIN}) and drop --insecure-no-auth"
        )


def server_auth(settings: Settings, open_store: Callable[[], MetadataStore]) -> ServerAuth:
    """The server's authentication for ``settings``, its keys read once already;
    ``InvalidArgumentError`` when keys are required and none is usable."""
    host = settings.serve.host
    security = settings.security
    if not security.auth_required(host):
        return ServerAuth(OFF if is_loopback(host) else INSECURE, None)
    store = open_store()

    def load() -> list[ApiKey]:
        with store.reader() as tx:
            return tx.list_keys()

    book = KeyBook(load, refresh_s=security.keys_refresh_s, close=store.close)
    try:
        book.refresh()
    except BaseException:
        store.close()
        raise
    if book.usable() == 0:
        store.close()
        where = host or "every address"
        raise InvalidArgumentError(
            f"this server requires API keys ({_why(settings, where)}) and the metadata "
            f"database {store.url} has no usable key: create one with `{CREATE_ADMIN}` "
            "(then send Authorization: Bearer <key>), or serve without keys with "
            "--insecure-no-auth (anyone who reaches the server can then call it)",
            field="security.auth",
        )
    return ServerAuth(API_KEYS, book)


def _why(settings: Settings, host: str) -> str:
    if settings.security.auth == "on":
        return '[security] auth = "on"'
    return f"it binds {host}, which other machines can reach"
