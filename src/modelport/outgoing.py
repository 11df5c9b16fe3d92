"""Which URLs modelport may call: the guard against server-side request forgery (SSRF).

modelport calls URLs that come from configuration: registry event webhooks, alert and
retrain webhooks, rollout webhooks, the ``/metrics`` URLs an alert evaluator scrapes and
http(s) artifact stores. Whoever can write that configuration (or a value that ends up in
it) could otherwise point modelport at the cloud metadata service (169.254.169.254), at a
database on the private network, or at a local file. The policy:

* only ``http://`` and ``https://`` (``file://``, ``gopher://``, ... are refused);
* a host must resolve to public addresses only: loopback, private (10/8, 172.16/12,
  192.168/16, fc00::/7), link-local (169.254/16 with the metadata service, fe80::/10),
  shared, multicast and reserved addresses are refused;
* ``allow_private_networks`` lifts that for loopback and private addresses, but not for
  link-local ones; an entry of ``allowed_hosts`` (a host name, ``*.suffix``, an address or
  a network) lifts it for that entry, and a non-empty ``allowed_hosts`` is an allow-list:
  no other host is called at all.

URLs are checked when the configuration is loaded (literal addresses and ``localhost``)
and again at every delivery, after DNS resolution; the sender then connects to the very
address that was checked, so a DNS answer that changes between the check and the
connection (DNS rebinding) cannot slip through. Redirects are never followed.

This module sits below ``config`` (which checks URLs at load), so it imports nothing of
modelport's and its error is a ``ValueError``, the error of configuration validators.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""``resolver(host, port)``: the addresses ``host`` resolves to, as text."""

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LIFTED_BY_PRIVATE = ("loopback", "private network")
FIX = "[outgoing] allowed_hosts = [...] or allow_private_networks = true"


class UrlRefusedError(ValueError):
    """A URL the outgoing policy does not allow; the message names the rule and the fix."""


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system's resolver (getaddrinfo)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UrlRefusedError(f"cannot resolve {host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def address_kind(address: Address) -> str | None:
    """Why ``address`` is not a public one ("loopback", "link-local ...", ...), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (where cloud metadata services live)"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private network"
    if not address.is_global:
        return "non-public"
    return None


def _literal(host: str) -> Address | None:
    if host == "localhost" or host.endswith(".localhost"):
        return ipaddress.IPv4Address("127.0.0.1")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_allowed_host(entry: str) -> str | Network:
    """One ``allowed_hosts`` entry: a lower-case host name (``*.`` prefix allowed) or an
    address or network. Raises ``ValueError`` naming the accepted forms."""
    text = entry.strip().lower()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    name = text.removeprefix("*.")
    labels = name.split(".")
    if name and all(label and label.replace("-", "").isalnum() for label in labels):
        return text
    raise ValueError(
        f"allowed_hosts entry {entry!r}: use a host name (hooks.example.com), a wildcard "
        "(*.example.com), an address (10.0.0.5) or a network (10.0.0.0/24)"
    )


@dataclass(frozen=True)
class OutgoingPolicy:
    """The rules of the module docstring; the default refuses every internal address.

    ``trusted_urls`` are exempt: modelport's own URLs (``serve --monitor`` scrapes the
    server it started), never anything from configuration.
    """

    allowed_hosts: tuple[str, ...] = ()
    allow_private_networks: bool = False
    trusted_urls: frozenset[str] = field(default_factory=frozenset)

    def trusting(self, urls: Sequence[str]) -> OutgoingPolicy:
        """This policy with ``urls`` exempt."""
        return OutgoingPolicy(
            self.allowed_hosts, self.allow_private_networks, self.trusted_urls | set(urls)
        )

    def check_url(self, url: str) -> tuple[str, int]:
        """(host, port) of ``url`` if its scheme, its host and, when the host is an
        address or ``localhost``, that address are allowed; raises ``UrlRefusedError``."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        shown = f"{scheme}://{parts.hostname or ''}"
        if scheme not in SCHEMES:
            raise UrlRefusedError(f"{shown}: only http:// and https:// URLs are called")
        try:
            host, port = parts.hostname, parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise UrlRefusedError(f"{shown}: the port is not a number from 0 to 65535") from None
        if not host:
            raise UrlRefusedError(f"{url!r} has no host")
        if url in self.trusted_urls:
            return host, port
        named = self._name_listed(host)
        literal = _literal(host)
        if self.allowed_hosts and not named and not (literal and self._network_listed(literal)):
            raise UrlRefusedError(f"{host} is not in [outgoing] allowed_hosts")
        if literal is not None:
            self._check_address(host, literal, named)
        return host, port

    def resolve(self, url: str, resolver: Resolver = system_resolver) -> str:
        """The checked address to connect to for ``url``: every address its host
        resolves to must be allowed (one refused address refuses the URL)."""
        host, port = self.check_url(url)
        if url in self.trusted_urls:
            return host
        literal = _literal(host)
        if literal is not None and host != "localhost":
            return str(literal)
        addresses = list(resolver(host, port))
        if not addresses:
            raise UrlRefusedError(f"{host} resolves to no address")
        named = self._name_listed(host)
        for text in addresses:
            self._check_address(host, ipaddress.ip_address(text), named)
        return addresses[0]

    def _check_address(self, host: str, address: Address, named: bool) -> None:
        kind = address_kind(address)
        if kind is None or named or self._network_listed(address):
            return
        if self.allow_private_networks and kind in _LIFTED_BY_PRIVATE:
            return
        where = host if host == str(address) else f"{host} ({address})"
        fix = FIX if kind in _LIFTED_BY_PRIVATE else f"list {address} in [outgoing] allowed_hosts"
        raise UrlRefusedError(
            f"{where} is a {kind} address; modelport does not call it unless allowed ({fix})"
        )

    def _entries(self) -> list[str | Network]:
        return [parse_allowed_host(entry) for entry in self.allowed_hosts]

    def _name_listed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for entry in self._entries():
            if not isinstance(entry, str):
                continue
            if entry == host or (entry.startswith("*.") and host.endswith(entry[1:])):
                return True
        return False

    def _network_listed(self, address: Address) -> bool:
        return any(
            not isinstance(entry, str) and address.version == entry.version and address in entry
            for entry in self._entries()
        )


DEFAULT_POLICY = OutgoingPolicy()
"""No internal address at all: the policy when ``[outgoing]`` is not set."""
