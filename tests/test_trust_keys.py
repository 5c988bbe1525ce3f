"""Loading our own keys and CRLs from bytes (oso_gateway.security.keys): OSO-E320."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from oso_gateway import errors
from oso_gateway.security import keys, pki

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"


def _pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, password: bytes | None = None
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def test_committed_key_with_warning_line_before_the_pem_block_loads() -> None:
    data = (DEV / "gateway-00000001000000000001.key.pem").read_bytes()
    assert data.startswith(pki.DEV_WARNING.encode("utf-8"))
    key = keys.load_private_key(data)
    cert = keys.load_certificate((DEV / "gateway-00000001000000000001.crt.pem").read_bytes())
    assert key.key_size == 3072
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_password_protected_key_loads_with_its_password_only() -> None:
    key = keys.load_private_key((DEV / "tls-localhost.key.pem").read_bytes())
    locked = _pem(key, b"s3cret-for-test")
    assert keys.load_private_key(locked, password=b"s3cret-for-test").key_size == 3072
    with pytest.raises(errors.KeyMaterialError):
        keys.load_private_key(locked)
    with pytest.raises(errors.KeyMaterialError):
        keys.load_private_key(locked, password=b"wrong")


def test_rsa_2048_private_key_is_refused_e320() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(errors.KeyMaterialError) as caught:
        keys.load_private_key(_pem(small))
    assert caught.value.code == "OSO-E320"
    assert caught.value.soap_fault == "Server"


def test_non_rsa_private_key_is_refused() -> None:
    with pytest.raises(errors.KeyMaterialError, match="must be RSA"):
        keys.load_private_key(_pem(ec.generate_private_key(ec.SECP384R1())))


def test_garbage_key_and_crl_bytes_are_refused() -> None:
    with pytest.raises(errors.KeyMaterialError):
        keys.load_private_key(b"not a key")
    with pytest.raises(errors.KeyMaterialError):
        keys.load_crl(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
    with pytest.raises(errors.KeyMaterialError):
        keys.load_crl(b"\x30\x00")
    with pytest.raises(errors.KeyMaterialError):
        keys.load_crls((DEV / "root-ca.crt.pem").read_bytes())  # a certificate, not a CRL


def test_several_pem_crls_in_one_item_load_in_order() -> None:
    both = (DEV / "root-ca.crl.pem").read_bytes() + (DEV / "issuing-ca.crl.pem").read_bytes()
    crls = keys.load_crls(both)
    assert [c.issuer.rfc4514_string() for c in crls] == [
        keys.load_certificate((DEV / name).read_bytes()).subject.rfc4514_string()
        for name in ("root-ca.crt.pem", "issuing-ca.crt.pem")
    ]
    with pytest.raises(errors.KeyMaterialError):
        keys.load_crl(both)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("00000001000000000001", True),
        ("0000000100000000001", False),
        ("0000000100000000000x", False),
        ("０0000001000000000001", False),
        ("00000001000000000001\n", False),
    ],
)
def test_oin_shape_is_exactly_twenty_ascii_digits(value: str, ok: bool) -> None:
    assert keys.is_valid_oin(value) is ok
