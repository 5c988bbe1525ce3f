"""Shared helpers for the WS-Security tests: the committed dev PKI, extra test certificates.

RSA key generation is slow, so everything is cached for the session.
"""

from __future__ import annotations

import functools
import tomllib
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree

from oso_gateway.security.keys import load_certificate, load_private_key
from oso_gateway.security.trust import TrustConfig
from oso_gateway.security.wss import Identity, OpenPolicy, SealedMessage, seal

DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"
OIN1 = "00000001000000000001"
OIN2 = "00000001000000000002"
OIN3 = "00000001000000000003"
OIN_EXPIRED = "00000001000000000008"
OIN_REVOKED = "00000001000000000009"
ENDPOINT2 = "https://gateway2.example/oso"
ACTION = "urn:oso:deliver"
#: strings planted in payloads; they must never show up in any error text
MARKERS = ("Zwartepietje-Marker", "999990019", "Geheimstraat 13")


@functools.cache
def _manifest() -> dict[str, object]:
    return tomllib.loads((DEV / "identities.toml").read_text("utf-8"))


@functools.cache
def dev_now() -> datetime:
    """A fixed instant at which the dev PKI is valid (an hour after it was generated)."""
    generated = datetime.fromisoformat(str(_manifest()["generated_at"]))
    return generated + timedelta(hours=1)


@functools.cache
def identity(oin: str) -> Identity:
    key = load_private_key((DEV / f"gateway-{oin}.key.pem").read_bytes())
    cert = load_certificate((DEV / f"gateway-{oin}.crt.pem").read_bytes())
    return Identity(oin=oin, private_key=key, certificate=cert)


@functools.cache
def dev_trust() -> TrustConfig:
    return TrustConfig.from_pem(
        anchors=[(DEV / "root-ca.crt.pem").read_bytes()],
        intermediates=[(DEV / "issuing-ca.crt.pem").read_bytes()],
        crls=[(DEV / "root-ca.crl.pem").read_bytes(), (DEV / "issuing-ca.crl.pem").read_bytes()],
    )


def policy(**overrides: object) -> OpenPolicy:
    values: dict[str, object] = {"expected_to": ENDPOINT2}
    values.update(overrides)
    return OpenPolicy(**values)  # type: ignore[arg-type]


def sample_payload(marker: str = "") -> etree._Element:
    """A small synthetic dossier-like element; ``marker`` lands in name, BSN and address."""
    ns = "http://www.edustandaard.nl/oso_gegevensset/2019/dossier"
    root = etree.Element(f"{{{ns}}}dossier", nsmap={None: ns})
    leerling = etree.SubElement(root, f"{{{ns}}}leerling")
    etree.SubElement(leerling, f"{{{ns}}}achternaam").text = "Jansen" + marker
    etree.SubElement(leerling, f"{{{ns}}}bsn").text = MARKERS[1] if marker else "123456782"
    etree.SubElement(leerling, f"{{{ns}}}straat").text = MARKERS[2] if marker else "Dorpsweg 1"
    etree.SubElement(root, f"{{{ns}}}opmerking").text = "ü ñ € & < > \" '"
    return root


def seal_1_to_2(payload: etree._Element, **overrides: object) -> SealedMessage:
    """School 1 seals ``payload`` for school 2 at ``dev_now()``."""
    args: dict[str, object] = {
        "sender": identity(OIN1),
        "recipient_certificate": identity(OIN2).certificate,
        "to": ENDPOINT2,
        "action": ACTION,
        "message_id": "urn:uuid:6b1f7c2e-9a53-4d8e-8f0a-2c4b1e7d9a01",
        "now": dev_now(),
    }
    args.update(overrides)
    return seal(payload, **args)  # type: ignore[arg-type]


# --- extra certificates signed by the dev issuing CA (for trust mapping tests) ----------------


@functools.cache
def _spare_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


@functools.cache
def _issuing_ca() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert = load_certificate((DEV / "issuing-ca.crt.pem").read_bytes())
    key = serialization.load_pem_private_key(
        (DEV / "issuing-ca.key.pem").read_bytes(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    return cert, key


def special_identity(kind: str, oin: str = "00000001000000000007") -> Identity:
    """An identity whose certificate is wrong in one way: 'ca', 'usage', 'future', 'selfsigned'."""
    key = _spare_key()
    ca_cert, ca_key = _issuing_ca()
    now = dev_now()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Test {kind}"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, oin),
        ]
    )
    not_before = now - timedelta(days=1)
    if kind == "future":
        not_before = now + timedelta(days=10)
    issuer_name, signing_key = ca_cert.subject, ca_key
    if kind == "selfsigned":
        issuer_name, signing_key = subject, key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + timedelta(days=300))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            False,
        )
    )
    if kind != "selfsigned":
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    usage = {
        "digital_signature": kind != "usage",
        "content_commitment": False,
        "key_encipherment": True,
        "data_encipherment": False,
        "key_agreement": False,
        "key_cert_sign": kind == "ca",
        "crl_sign": False,
        "encipher_only": False,
        "decipher_only": False,
    }
    builder = builder.add_extension(x509.KeyUsage(**usage), True)
    builder = builder.add_extension(x509.BasicConstraints(ca=kind == "ca", path_length=None), True)
    cert = builder.sign(signing_key, hashes.SHA256())
    return Identity(oin=oin, private_key=key, certificate=cert)


def decrypted_envelope(data: bytes, holder: str = OIN2) -> etree._Element:
    """What a receiver holds after decryption: the envelope with the plaintext Body content."""
    from oso_gateway.security import xmlenc
    from oso_gateway.security.namespaces import (
        KT_RSA_OAEP,
        KT_RSA_OAEP_MGF1P,
        SOAP,
        WSSE,
        XENC,
        q,
    )

    root = etree.fromstring(data)
    ek = root.find(f"{q(SOAP, 'Header')}/{q(WSSE, 'Security')}/{q(XENC, 'EncryptedKey')}")
    assert ek is not None
    parsed = xmlenc.parse_encrypted_key(ek, allowed=frozenset({KT_RSA_OAEP, KT_RSA_OAEP_MGF1P}))
    key = xmlenc.unwrap_key(parsed, identity(holder).private_key)
    body = root.find(q(SOAP, "Body"))
    assert body is not None
    value = body[0].find(f"{q(XENC, 'CipherData')}/{q(XENC, 'CipherValue')}")
    assert value is not None
    body.replace(body[0], etree.fromstring(xmlenc.decrypt_content(key, value.text or "")))
    return root
