"""The server's TLS: an ``ssl.SSLContext`` from ``[serve.tls]``, or an error naming the file.

The supervisor builds the context once before it starts any worker, so that a missing,
unreadable or mismatched certificate or key fails ``modelport serve`` with one line that
names the file and the option; each worker then builds its own from the same files
(an ``SSLContext`` cannot cross a process boundary).

The context is a server context (``PROTOCOL_TLS_SERVER``) with Python's defaults
(no compression, forward-secret ciphers only), no renegotiation, TLS 1.2 at least
(``serve.tls.min_version``), and ALPN offering only ``http/1.1``, the one protocol the
server speaks. With ``client_ca`` every client must present a certificate signed by
one of those CAs and valid now (mutual TLS); a connection without one fails its
handshake before any HTTP is read.

How long a connection may take to shake hands and to close are settings of the
listening socket, not of the context: see ``handshake_timeout`` and
``SHUTDOWN_TIMEOUT_S``.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from modelport.config import ConnectionSettings, TlsSettings
from modelport.errors import InvalidArgumentError

# How long closing a TLS connection waits for the client's close_notify before the
# socket is closed anyway. Many clients never send one; asyncio's default (30 s) kept
# drained connections open that long.
SHUTDOWN_TIMEOUT_S = 2.0

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_OPTIONS = {
    "cert": ("--tls-cert", "serve.tls.cert"),
    "key": ("--tls-key", "serve.tls.key"),
    "client_ca": ("--tls-client-ca", "serve.tls.client_ca"),
}


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """The server's TLS context; ``InvalidArgumentError`` naming the file and its option
    when a certificate, key or CA file cannot be used. ``tls.cert`` must be set."""
    if tls.cert is None:
        raise InvalidArgumentError("TLS needs a certificate (--tls-cert)", field="serve.tls.cert")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[tls.min_version]
    context.options |= ssl.OP_NO_RENEGOTIATION  # a TLS 1.2 client cannot make us redo it
    context.set_alpn_protocols(["http/1.1"])
    _load_chain(context, tls.cert, tls.key)
    if tls.client_ca is not None:
        _load_client_ca(context, tls.client_ca)
    return context


def handshake_timeout(limits: ConnectionSettings) -> float:
    """How long a new connection may take to complete its TLS handshake: the header
    timeout, which bounds the same wait for a plain connection's first request (a
    client that opens a connection and sends nothing is cut off either way)."""
    return limits.header_timeout_s


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path | None) -> None:
    cert_text = _read("cert", cert)
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        raise _unusable("cert", cert, "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    key_kind, key_path = ("cert", cert) if key is None else ("key", key)
    key_text = cert_text if key is None else _read("key", key)
    if "PRIVATE KEY-----" not in key_text:
        hint = " (give the key with --tls-key)" if key is None else ""
        raise _unusable(key_kind, key_path, f"it holds no PEM private key{hint}")
    if "ENCRYPTED" in key_text:
        raise _unusable(
            key_kind,
            key_path,
            "the private key is encrypted; give the server an unencrypted key file "
            "readable only by its user (chmod 600)",
        )
    try:
        context.load_cert_chain(cert.expanduser(), key.expanduser() if key else None, _no_password)
    except ssl.SSLError as exc:
        raise _chain_error(cert, key, exc) from None


def _no_password() -> str:
    # Never prompt on the terminal: encrypted keys are refused above.
    raise InvalidArgumentError("the private key is encrypted", field="serve.tls.key")


def _chain_error(cert: Path, key: Path | None, exc: ssl.SSLError) -> InvalidArgumentError:
    reason = exc.reason or str(exc)
    if reason == "KEY_VALUES_MISMATCH":
        source = f"the private key in {key}" if key else "the private key"
        return InvalidArgumentError(
            f"{source} does not match the certificate in {cert} (--tls-cert, --tls-key)",
            field="serve.tls.key",
        )
    if key is not None and "PEM" in str(exc) and "key" in str(exc).lower():
        return _unusable("key", key, f"the private key cannot be read ({reason})")
    return _unusable("cert", cert, f"the certificate or key cannot be read ({reason})")


def _load_client_ca(context: ssl.SSLContext, client_ca: Path) -> None:
    text = _read("client_ca", client_ca)
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise _unusable(
            "client_ca", client_ca, "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )
    try:
        context.load_verify_locations(cafile=client_ca.expanduser())
    except ssl.SSLError as exc:
        reason = f"it cannot be read ({exc.reason or exc})"
        raise _unusable("client_ca", client_ca, reason) from None
    if not context.get_ca_certs():
        raise _unusable(
            "client_ca", client_ca, "it holds no CA certificate (basicConstraints CA:TRUE)"
        )
    context.verify_mode = ssl.CERT_REQUIRED


def _read(kind: str, path: Path) -> str:
    try:
        return path.expanduser().read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise _unusable(kind, path, "no such file") from None
    except IsADirectoryError:
        raise _unusable(kind, path, "it is a directory") from None
    except OSError as exc:
        raise _unusable(kind, path, exc.strerror or str(exc)) from None


def _unusable(kind: str, path: Path, reason: str) -> InvalidArgumentError:
    option, field = _OPTIONS[kind]
    what = {"cert": "certificate", "key": "private key", "client_ca": "client CA"}[kind]
    return InvalidArgumentError(
        f"cannot use the TLS {what} file {path} ({option}, {field}): {reason}", field=field
    )
