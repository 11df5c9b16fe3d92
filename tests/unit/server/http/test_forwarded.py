"""Behind a proxy: the client's address and scheme from X-Forwarded-For and
X-Forwarded-Proto, believed only from the configured proxies, as Front applies them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from modelport.server.http.asgi import Message, Receive, Scope, Send
from modelport.server.http.connections import ConnectionRecycler
from modelport.server.http.forwarded import TrustedProxies
from modelport.server.http.front import Front

PROXY = "10.0.0.5"


def scope(peer: str, *headers: tuple[str, str], port: int = 40000) -> Scope:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": "/whoami",
        "scheme": "http",
        "client": (peer, port),
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
    }


def seen(proxies: TrustedProxies, request: Scope) -> tuple[str, str]:
    proxies.apply(request)
    return request["client"][0], request["scheme"]


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    proxies = TrustedProxies(["10.0.0.5/32"])
    request = scope("203.0.113.9", ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https"))
    assert seen(proxies, request) == ("203.0.113.9", "http")


def test_a_trusted_proxy_gives_the_client_and_the_scheme() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    request = scope(PROXY, ("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-Proto", "https"))
    assert seen(proxies, request) == ("198.51.100.7", "https")


def test_addresses_the_client_wrote_itself_are_not_believed() -> None:
    # The client sent "X-Forwarded-For: 127.0.0.1"; the proxy appended its real address.
    proxies = TrustedProxies(["10.0.0.5/32", "127.0.0.1/32"])
    request = scope(PROXY, ("X-Forwarded-For", "127.0.0.1, 198.51.100.7"))
    assert seen(proxies, request)[0] == "198.51.100.7"


def test_a_chain_of_trusted_proxies_is_walked_to_the_first_untrusted_address() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    headers = [("X-Forwarded-For", "198.51.100.7, 10.0.0.9"), ("X-Forwarded-For", "10.0.0.8")]
    assert seen(proxies, scope(PROXY, *headers))[0] == "198.51.100.7"


def test_a_garbage_entry_ends_the_walk() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    request = scope(PROXY, ("X-Forwarded-For", "<script>, 10.0.0.9"))
    assert seen(proxies, request)[0] == "10.0.0.9"


def test_ports_after_addresses_are_dropped() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    request = scope(PROXY, ("X-Forwarded-For", "198.51.100.7:5123"))
    assert seen(proxies, request)[0] == "198.51.100.7"
    request = scope(PROXY, ("X-Forwarded-For", "[2001:db8::7]:5123, 10.0.0.9"))
    assert seen(proxies, request)[0] == "2001:db8::7"
    request = scope(PROXY, ("X-Forwarded-For", "2001:db8::8"))
    assert seen(proxies, request)[0] == "2001:db8::8"


def test_an_unknown_scheme_is_ignored_and_the_last_one_counts() -> None:
    proxies = TrustedProxies(["*"])
    assert seen(proxies, scope(PROXY, ("X-Forwarded-Proto", "gopher")))[1] == "http"
    assert seen(proxies, scope(PROXY, ("X-Forwarded-Proto", "http, HTTPS")))[1] == "https"


def test_ipv4_mapped_peers_match_ipv4_networks() -> None:
    assert TrustedProxies(["10.0.0.0/8"]).trusts("::ffff:10.0.0.5")
    assert not TrustedProxies(["10.0.0.0/8"]).trusts("::ffff:11.0.0.5")
    assert not TrustedProxies(["10.0.0.0/8"]).trusts("unix-socket")


class Recorder:
    """The router: remembers the scope it was given and answers 200."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(dict(scope))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def call(app: Any, request: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(request, receive, send))
    return sent


def test_front_counts_the_connection_by_its_peer_then_shows_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = Recorder()
    recycler = ConnectionRecycler(router, max_requests=2)
    front = Front(
        {}, router, recycler=recycler, access_log=True, proxies=TrustedProxies(["10.0.0.5"])
    )
    with caplog.at_level(logging.INFO, logger="modelport.access"):
        for client in ("198.51.100.7", "198.51.100.8"):  # two clients, one proxy connection
            sent = call(front, scope(PROXY, ("X-Forwarded-For", client)))
    assert [s["client"][0] for s in router.scopes] == ["198.51.100.7", "198.51.100.8"]
    # The proxy's connection reached max_requests: its second answer closes it.
    assert (b"connection", b"close") in sent[0]["headers"]
    assert [record.client for record in caplog.records] == ["198.51.100.7", "198.51.100.8"]


def test_front_without_proxies_leaves_the_peer() -> None:
    router = Recorder()
    front = Front({}, router, recycler=None, access_log=False)
    call(front, scope(PROXY, ("X-Forwarded-For", "198.51.100.7")))
    assert router.scopes[0]["client"] == (PROXY, 40000)
