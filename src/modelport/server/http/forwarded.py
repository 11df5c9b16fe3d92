"""Behind a TLS-terminating proxy: the client's address and the request's scheme from
``X-Forwarded-For`` and ``X-Forwarded-Proto``, believed only from trusted proxies.

Anyone can send these headers, so they count only when the connection itself comes
from an address in ``serve.forwarded_allow_ips`` (``--behind-proxy``; off by default).
Then ``scope["scheme"]`` becomes the last ``X-Forwarded-Proto`` value (what the proxy
that connected to us saw), and ``scope["client"]`` the rightmost address of
``X-Forwarded-For`` that is not itself a trusted proxy: each proxy appends the address
it received the request from, so entries left of the first untrusted one may be
forged by the client. A port after an address is dropped; an entry that is not an IP
address ends the walk (the last address read stays the client).

``Front`` applies this after the connection recycler has counted the request, which
keys on the real peer (``server.http.connections``); everything after sees the client.
uvicorn's own ``proxy_headers`` stays off for that reason.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from modelport.server.http.asgi import Scope

_FORWARDED_FOR = b"x-forwarded-for"
_FORWARDED_PROTO = b"x-forwarded-proto"
_SCHEMES = {"http": "http", "https": "https"}
_MAX_CACHED = 1024  # peer addresses remembered as trusted or not


class TrustedProxies:
    """The proxies whose ``X-Forwarded-*`` headers are believed (module docstring)."""

    def __init__(self, allowed: Sequence[str]) -> None:
        self._any = "*" in allowed
        self._networks = tuple(ipaddress.ip_network(a, strict=False) for a in allowed if a != "*")
        self._trusted: dict[str, bool] = {}

    def trusts(self, host: str) -> bool:
        """Whether ``host`` (an IP address) is a trusted proxy."""
        known = self._trusted.get(host)
        if known is not None:
            return known
        trusted = self._any or _within(host, self._networks)
        if len(self._trusted) >= _MAX_CACHED:
            self._trusted.clear()
        self._trusted[host] = trusted
        return trusted

    def apply(self, scope: Scope) -> None:
        """Set the scope's ``client`` and ``scheme`` from a trusted proxy's headers."""
        peer = scope.get("client")
        if not peer or not self.trusts(peer[0]):
            return
        forwarded_for: list[str] = []
        proto = ""
        for name, value in scope["headers"]:
            if name == _FORWARDED_FOR:
                forwarded_for.extend(value.decode("latin-1").split(","))
            elif name == _FORWARDED_PROTO:
                proto = value.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
        scheme = _SCHEMES.get(proto)
        if scheme is not None:
            scope["scheme"] = scheme
        if forwarded_for:
            scope["client"] = (self._client(peer[0], forwarded_for), 0)

    def _client(self, peer: str, entries: list[str]) -> str:
        client = peer
        for entry in reversed(entries):
            try:
                client = str(ipaddress.ip_address(_host(entry.strip())))
            except ValueError:
                break
            if not self.trusts(client):
                break
        return client


def _host(entry: str) -> str:
    """The address of an ``X-Forwarded-For`` entry, without the port some proxies add
    (``203.0.113.7:51234``, ``[2001:db8::7]:51234``)."""
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry


def _within(host: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # not an IP address (a Unix socket's path): not a proxy we know
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.5 on a dual-stack socket
    return any(address in network for network in networks)
