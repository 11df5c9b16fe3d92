"""The server's TLS context from ``[serve.tls]``: files that cannot be used fail the
start with one message naming the file and its option."""

from __future__ import annotations

import ssl
import tomllib
from pathlib import Path

import pytest

from modelport.cli.serve import build_settings
from modelport.config import TlsSettings
from modelport.errors import InvalidArgumentError
from modelport.server.process.tls import server_context
from testing_tls import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def refusal(**files: Path | None) -> str:
    with pytest.raises(InvalidArgumentError) as caught:
        server_context(TlsSettings(**files))  # type: ignore[arg-type]
    return caught.value.message


def test_a_certificate_and_key_give_a_server_context(pki: Pki) -> None:
    context = server_context(TlsSettings(cert=pki.server_cert, key=pki.server_key))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE  # no client certificates asked for
    assert context.options & ssl.OP_NO_RENEGOTIATION


def test_the_key_may_be_in_the_certificate_file(pki: Pki, tmp_path: Path) -> None:
    both = tmp_path / "both.pem"
    both.write_bytes(pki.server_cert.read_bytes() + pki.server_key.read_bytes())
    server_context(TlsSettings(cert=both))


def test_a_client_ca_requires_client_certificates(pki: Pki) -> None:
    tls = TlsSettings(cert=pki.server_cert, key=pki.server_key, client_ca=pki.ca.cert)
    assert server_context(tls).verify_mode == ssl.CERT_REQUIRED


def test_tls_1_3_only(pki: Pki) -> None:
    tls = TlsSettings(cert=pki.server_cert, key=pki.server_key, min_version="1.3")
    assert server_context(tls).minimum_version == ssl.TLSVersion.TLSv1_3


def test_a_missing_certificate_is_named(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    assert refusal(cert=missing, key=pki.server_key) == (
        f"cannot use the TLS certificate file {missing} (--tls-cert, serve.tls.cert): no such file"
    )


def test_a_missing_key_is_named(pki: Pki, tmp_path: Path) -> None:
    message = refusal(cert=pki.server_cert, key=tmp_path / "nope.pem")
    assert message.startswith(f"cannot use the TLS private key file {tmp_path / 'nope.pem'}")
    assert "(--tls-key, serve.tls.key): no such file" in message


def test_a_key_given_as_the_certificate_is_named(pki: Pki) -> None:
    message = refusal(cert=pki.server_key, key=pki.server_key)
    assert f"TLS certificate file {pki.server_key}" in message
    assert "holds no PEM certificate" in message


def test_a_certificate_without_its_key_says_to_give_it(pki: Pki) -> None:
    message = refusal(cert=pki.server_cert)
    assert f"TLS certificate file {pki.server_cert}" in message
    assert "holds no PEM private key (give the key with --tls-key)" in message


def test_the_wrong_key_is_named(pki: Pki, tmp_path: Path) -> None:
    _, other_key = pki.other_ca.issue("elsewhere")
    assert refusal(cert=pki.server_cert, key=other_key) == (
        f"the private key in {other_key} does not match the certificate in "
        f"{pki.server_cert} (--tls-cert, --tls-key)"
    )


def test_an_encrypted_key_is_refused_without_prompting(pki: Pki, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    message = refusal(cert=pki.server_cert, key=encrypted)
    assert f"TLS private key file {encrypted}" in message
    assert "encrypted" in message


def test_a_corrupt_certificate_is_named(pki: Pki, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pem"
    corrupt.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    message = refusal(cert=corrupt, key=pki.server_key)
    assert message.startswith(f"cannot use the TLS certificate file {corrupt} (--tls-cert")


def test_a_client_ca_that_is_not_a_ca_is_named(pki: Pki) -> None:
    message = refusal(cert=pki.server_cert, key=pki.server_key, client_ca=pki.server_cert)
    assert f"TLS client CA file {pki.server_cert} (--tls-client-ca" in message
    assert "holds no CA certificate" in message


def test_a_directory_is_named(pki: Pki, tmp_path: Path) -> None:
    message = refusal(cert=pki.server_cert, key=pki.server_key, client_ca=tmp_path)
    assert message.endswith("it is a directory")


def test_a_key_without_a_certificate_is_a_settings_error(pki: Pki) -> None:
    with pytest.raises(InvalidArgumentError, match="need tls.cert"):
        build_settings(None, tls_key=pki.server_key)


def test_the_options_reach_the_settings_over_the_config_file(pki: Pki, tmp_path: Path) -> None:
    config = tmp_path / "modelport.toml"
    config.write_text(f'[serve.tls]\ncert = "{pki.server_cert}"\nkey = "elsewhere.pem"\n')
    tls = build_settings(config, tls_key=pki.server_key, tls_client_ca=pki.ca.cert).serve.tls
    assert (tls.cert, tls.key, tls.client_ca) == (pki.server_cert, pki.server_key, pki.ca.cert)


def test_the_documented_tls_table_is_valid_settings() -> None:
    docs = Path(__file__).resolve().parents[4] / "docs" / "security.md"
    blocks = [
        part.split("```", 1)[0] for part in docs.read_text(encoding="utf-8").split("```toml\n")
    ]
    block = next(block for block in blocks[1:] if "[serve.tls]" in block)
    tls = TlsSettings.model_validate(tomllib.loads(block)["serve"]["tls"])
    assert tls.enabled and tls.client_ca == Path("/etc/modelport/clients-ca.pem")
