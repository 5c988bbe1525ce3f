"""The cryptographic primitives of the message profile, in one place (pyca/cryptography).

Nothing here knows XML. Failures surface as ``cryptography`` exceptions or ``ValueError`` and are
mapped to typed errors by the callers (``xmldsig``, ``xmlenc``).
"""

from __future__ import annotations

import binascii
import hashlib
import os
from collections.abc import Iterator
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AES256_KEY_BYTES: Final = 32
GCM_IV_BYTES: Final = 12
GCM_TAG_BYTES: Final = 16

_OAEP_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
}


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rsa_sha256_sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256 (XMLDSig ``rsa-sha256``)."""
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def rsa_sha256_verify(key: rsa.RSAPublicKey, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is a valid ``rsa-sha256`` signature of ``data``."""
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def new_content_key() -> bytes:
    """A fresh AES-256 key (one per message)."""
    return AESGCM.generate_key(bit_length=256)


def aes_gcm_encrypt_pieces(
    key: bytes, plaintext: bytes, *, piece: int, aad: bytes = b""
) -> tuple[bytes, Iterator[bytes]]:
    """Encrypt with a fresh 96-bit IV, a piece at a time: ``(iv, pieces)``, where the pieces
    (``piece`` bytes of ciphertext each, then the last, then the 16-byte tag) concatenate to
    ``ciphertext || tag``, authenticating ``aad`` too. A large plaintext then never has a
    ciphertext-sized copy."""
    iv = os.urandom(GCM_IV_BYTES)
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    if aad:
        encryptor.authenticate_additional_data(aad)

    def pieces() -> Iterator[bytes]:
        view = memoryview(plaintext)
        try:
            for start in range(0, len(view), piece):
                yield encryptor.update(view[start : start + piece])
        finally:
            view.release()
        yield encryptor.finalize()
        yield encryptor.tag

    return iv, pieces()


def aes_gcm_decrypt(key: bytes, data: bytes | bytearray | memoryview) -> bytes:
    """Decrypt ``IV || ciphertext || tag`` (xmlenc11 aes-gcm CipherValue layout).

    Raises ``ValueError`` when the data is too short and ``cryptography.exceptions.InvalidTag``
    when the tag does not verify.
    """
    view = memoryview(data)
    if len(view) < GCM_IV_BYTES + GCM_TAG_BYTES:
        raise ValueError("AES-GCM data shorter than IV + tag")
    return AESGCM(key).decrypt(view[:GCM_IV_BYTES], view[GCM_IV_BYTES:], None)


def _oaep(digest: str, mgf_digest: str) -> padding.OAEP:
    return padding.OAEP(
        mgf=padding.MGF1(_OAEP_HASHES[mgf_digest]()),
        algorithm=_OAEP_HASHES[digest](),
        label=None,
    )


def oaep_wrap(key: rsa.RSAPublicKey, secret: bytes, *, digest: str, mgf_digest: str) -> bytes:
    """RSA-OAEP encrypt ``secret``; ``digest`` / ``mgf_digest`` are "sha1" or "sha256"."""
    return key.encrypt(secret, _oaep(digest, mgf_digest))


def oaep_unwrap(key: rsa.RSAPrivateKey, wrapped: bytes, *, digest: str, mgf_digest: str) -> bytes:
    """RSA-OAEP decrypt; raises ``ValueError`` on any failure."""
    return key.decrypt(wrapped, _oaep(digest, mgf_digest))


def b64encode(data: bytes | memoryview) -> bytes:
    """Base64 without line breaks."""
    return binascii.b2a_base64(data, newline=False)


def b64decode(text: str | bytes) -> bytes:
    """Strict base64; whitespace (line wrapping, as xmlsec1 writes it) is allowed and ignored.

    Raises ``ValueError`` on any other non-alphabet character, bad padding or trailing data.
    """
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        pass
    compact = "".join(text.split()) if isinstance(text, str) else b"".join(text.split())
    try:
        return binascii.a2b_base64(compact, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError("malformed base64") from exc


def subject_key_identifier(cert: x509.Certificate) -> bytes:
    """The certificate's subjectKeyIdentifier, or the RFC 5280 method-1 value when absent."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
