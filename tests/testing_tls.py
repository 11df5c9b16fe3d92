"""A certificate authority made by the test (``cryptography``): server and client
certificates for 127.0.0.1 and localhost, expired ones, and a second CA nobody trusts.

Every key is EC P-256 (fast to make); files are PEM, written under the test's
directory: ``pki.ca`` to trust, ``pki.server_cert``/``server_key`` for the server,
``pki.client(...)`` for mutual TLS.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOW = datetime.datetime.now(datetime.UTC)
_DAY = datetime.timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


class CertificateAuthority:
    """A CA whose certificate is ``cert`` (a PEM file) and that issues leaf certificates."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - _DAY)
            .not_valid_after(_NOW + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert = _write_cert(self._cert, directory / f"{name}-ca.pem")

    def issue(
        self, common_name: str, *, client: bool = False, expired: bool = False
    ) -> tuple[Path, Path]:
        """A leaf certificate and its key (files): a server's for 127.0.0.1 and
        localhost, or a client's; ``expired`` ended yesterday."""
        key = ec.generate_private_key(ec.SECP256R1())
        not_after = _NOW - _DAY if expired else _NOW + 7 * _DAY
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - 2 * _DAY)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if not client:
            names: list[x509.GeneralName] = [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        slug = f"{self.name}-{common_name}"
        return (
            _write_cert(cert, self.directory / f"{slug}.pem"),
            _write_key(key, self.directory / f"{slug}-key.pem"),
        )


@dataclass(frozen=True)
class Pki:
    """The test's CA, the server's certificate, and a CA that nobody trusts."""

    ca: CertificateAuthority
    other_ca: CertificateAuthority
    server_cert: Path
    server_key: Path

    def client_context(
        self, cert: tuple[Path, Path] | None = None, *, trust: Path | None = None
    ) -> ssl.SSLContext:
        """A client's context trusting our CA (or ``trust``), with a client certificate."""
        context = ssl.create_default_context(cafile=str(trust or self.ca.cert))
        if cert is not None:
            context.load_cert_chain(cert[0], cert[1])
        return context


def make_pki(directory: Path) -> Pki:
    """A fresh CA and server certificate under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(directory, "test")
    server_cert, server_key = ca.issue("server")
    return Pki(ca, CertificateAuthority(directory, "other"), server_cert, server_key)
