"""Loading keys, certificates and CRLs from bytes, and OIN helpers. Pure: no files, no clock.

Callers read the files (or receive the bytes) and pass them in. Our own private key must be RSA
of at least ``MIN_RSA_BITS`` (the Digikoppeling profile); anything else is a configuration error
(``KeyMaterialError``, OSO-E320). Certificates that cannot be parsed raise ``CertificateMalformed``
(OSO-E313), since they usually come from a peer.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

from oso_gateway.errors import CertificateMalformed, KeyMaterialError, OinInvalid
from oso_gateway.protocol import is_oin

#: Smallest RSA modulus accepted for our keys and for peers' certificates (policy).
MIN_RSA_BITS = 3072

_PEM_CRL_RE = re.compile(rb"-----BEGIN X509 CRL-----\r?\n.+?\r?\n-----END X509 CRL-----", re.DOTALL)


def spki(public_key: PublicKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo of a public key: two certificates (or a certificate and a
    private key's public half) hold the same key exactly when these bytes are equal."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def is_valid_oin(value: str) -> bool:
    """True when ``value`` has the OIN shape: exactly 20 ASCII digits."""
    return is_oin(value)


def require_oin(value: str) -> str:
    """Return ``value`` when it is a well-formed OIN, else raise ``OinInvalid`` (OSO-E311)."""
    if not is_valid_oin(value):
        raise OinInvalid("an OIN must be exactly 20 digits")
    return value


def load_private_key(pem: bytes, *, password: bytes | None = None) -> rsa.RSAPrivateKey:
    """Load our RSA private key (PEM, PKCS#8 or PKCS#1). Text before ``-----BEGIN`` is ignored."""
    try:
        key = serialization.load_pem_private_key(bytes(pem), password=password)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(f"private key cannot be loaded: {type(exc).__name__}") from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for odd keys
        raise KeyMaterialError(f"private key cannot be loaded: {type(exc).__name__}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyMaterialError(f"private key must be RSA, not {type(key).__name__}")
    if key.key_size < MIN_RSA_BITS:
        raise KeyMaterialError(
            f"RSA private key of {key.key_size} bits is below the minimum of {MIN_RSA_BITS}"
        )
    return key


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Load one or more certificates: PEM (several blocks allowed) or a single DER certificate."""
    raw = bytes(data)
    try:
        if b"-----BEGIN" in raw:
            certs = x509.load_pem_x509_certificates(raw)
        else:
            certs = [x509.load_der_x509_certificate(raw)]
    except (ValueError, x509.InvalidVersion):  # InvalidVersion is no ValueError
        raise CertificateMalformed("certificate data cannot be parsed") from None
    return certs


def load_certificate(data: bytes) -> x509.Certificate:
    """Load exactly one certificate (PEM or DER)."""
    certs = load_certificates(data)
    if len(certs) != 1:
        raise CertificateMalformed(f"expected one certificate, found {len(certs)}")
    return certs[0]


def load_crls(data: bytes) -> list[x509.CertificateRevocationList]:
    """Load CRLs: PEM (several blocks allowed) or a single DER CRL."""
    raw = bytes(data)
    try:
        if b"-----BEGIN" in raw:
            blocks = _PEM_CRL_RE.findall(raw)
            if not blocks:
                raise ValueError("no X509 CRL block")
            return [x509.load_pem_x509_crl(block) for block in blocks]
        return [x509.load_der_x509_crl(raw)]
    except ValueError:
        raise KeyMaterialError("CRL data cannot be parsed") from None


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """Load exactly one CRL (PEM or DER)."""
    crls = load_crls(data)
    if len(crls) != 1:
        raise KeyMaterialError(f"expected one CRL, found {len(crls)}")
    return crls[0]


def subject_serial_numbers(cert: x509.Certificate) -> list[str]:
    """The values of the subject's serialNumber attributes (where PKIoverheid puts the OIN)."""
    return [
        attr.value if isinstance(attr.value, str) else attr.value.decode("ascii", "replace")
        for attr in cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    ]
