"""XML Encryption, narrowed to the profile: AES-256-GCM element content, RSA-OAEP key transport.

``EncryptedData`` carries ``IV || ciphertext || tag`` (xmlenc 1.1 AES-GCM); ``EncryptedKey`` wraps
the one-off content key for the recipient's certificate and points at the data with a
``ReferenceList``. The CipherValue of the (large) EncryptedData is written as a placeholder and
spliced into the serialised envelope by the caller, so the base64 text is never copied into the
tree and out again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from oso_gateway.errors import (
    CipherDataMalformed,
    DataEncryptionRejected,
    DecryptionFailed,
    KeyTransportRejected,
    SecurityHeaderInvalid,
)
from oso_gateway.security import largetext, primitives
from oso_gateway.security.namespaces import (
    DIGEST_SHA1,
    DIGEST_SHA256,
    DS,
    ENC_AES256_GCM,
    ENC_TYPE_CONTENT,
    ENCODING_BASE64,
    KT_RSA_1_5,
    KT_RSA_OAEP,
    KT_RSA_OAEP_MGF1P,
    MGF1_SHA1,
    MGF1_SHA256,
    VALUE_SKI,
    WSSE,
    XENC,
    XENC11,
    q,
)
from oso_gateway.security.xmldsig import elements, text_only

RecipientReference = Literal["ski", "issuer_serial"]

#: placeholder text of the EncryptedData CipherValue until the caller splices the real base64 in
CIPHER_PLACEHOLDER = "@@OSO-CIPHERVALUE@@"

_DIGESTS = {DIGEST_SHA1: "sha1", DIGEST_SHA256: "sha256"}
_MGFS = {MGF1_SHA1: "sha1", MGF1_SHA256: "sha256"}


#: Clark names the open path compares tags with (built once, not per message)
_DS_DIGEST_METHOD = q(DS, "DigestMethod")
_DS_KEY_INFO = q(DS, "KeyInfo")
_WSSE_KEY_IDENTIFIER = q(WSSE, "KeyIdentifier")
_WSSE_SECURITY_TOKEN_REFERENCE = q(WSSE, "SecurityTokenReference")
_XENC11_MGF = q(XENC11, "MGF")
_XENC_CARRIED_KEY_NAME = q(XENC, "CarriedKeyName")
_XENC_CIPHER_DATA = q(XENC, "CipherData")
_XENC_CIPHER_VALUE = q(XENC, "CipherValue")
_XENC_DATA_REFERENCE = q(XENC, "DataReference")
_XENC_ENCRYPTION_METHOD = q(XENC, "EncryptionMethod")
_XENC_ENCRYPTION_PROPERTIES = q(XENC, "EncryptionProperties")
_XENC_REFERENCE_LIST = q(XENC, "ReferenceList")


def _sub(parent: etree._Element, ns: str, local: str, **attrib: str) -> etree._Element:
    return etree.SubElement(parent, q(ns, local), attrib)


def build_encrypted_data(parent: etree._Element, *, data_id: str) -> etree._Element:
    """Append an EncryptedData (Type Content, AES-256-GCM) whose CipherValue is the placeholder."""
    ed = _sub(parent, XENC, "EncryptedData", Id=data_id, Type=ENC_TYPE_CONTENT)
    _sub(ed, XENC, "EncryptionMethod", Algorithm=ENC_AES256_GCM)
    cipher_data = _sub(ed, XENC, "CipherData")
    _sub(cipher_data, XENC, "CipherValue").text = CIPHER_PLACEHOLDER
    return ed


def build_encrypted_key(
    *,
    key_id: str,
    recipient: x509.Certificate,
    content_key: bytes,
    data_ids: tuple[str, ...],
    key_transport: str,
    reference: RecipientReference = "ski",
) -> etree._Element:
    """An EncryptedKey wrapping ``content_key`` for ``recipient`` (RSA-OAEP)."""
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("recipient certificate does not hold an RSA key")
    ek = etree.Element(q(XENC, "EncryptedKey"), Id=key_id)
    method = _sub(ek, XENC, "EncryptionMethod", Algorithm=key_transport)
    if key_transport == KT_RSA_OAEP:
        _sub(method, DS, "DigestMethod", Algorithm=DIGEST_SHA256)
        _sub(method, XENC11, "MGF", Algorithm=MGF1_SHA256)
        digest, mgf = "sha256", "sha256"
    elif key_transport == KT_RSA_OAEP_MGF1P:
        _sub(method, DS, "DigestMethod", Algorithm=DIGEST_SHA1)
        digest, mgf = "sha1", "sha1"
    else:
        raise ValueError("unsupported key transport")
    key_info = _sub(ek, DS, "KeyInfo")
    token_ref = _sub(key_info, WSSE, "SecurityTokenReference")
    if reference == "ski":
        ski = _sub(token_ref, WSSE, "KeyIdentifier", EncodingType=ENCODING_BASE64)
        ski.set("ValueType", VALUE_SKI)
        ski.text = primitives.b64encode(primitives.subject_key_identifier(recipient)).decode()
    else:
        data = _sub(token_ref, DS, "X509Data")
        issuer_serial = _sub(data, DS, "X509IssuerSerial")
        _sub(issuer_serial, DS, "X509IssuerName").text = recipient.issuer.rfc4514_string()
        _sub(issuer_serial, DS, "X509SerialNumber").text = str(recipient.serial_number)
    wrapped = primitives.oaep_wrap(public_key, content_key, digest=digest, mgf_digest=mgf)
    cipher_data = _sub(ek, XENC, "CipherData")
    _sub(cipher_data, XENC, "CipherValue").text = primitives.b64encode(wrapped).decode()
    refs = _sub(ek, XENC, "ReferenceList")
    for data_id in data_ids:
        _sub(refs, XENC, "DataReference", URI="#" + data_id)
    return ek


# --- receiving --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ParsedEncryptedKey:
    key_id: str | None
    algorithm: str
    digest: str
    mgf_digest: str
    wrapped: bytes
    ski: bytes | None
    issuer_name: str | None
    serial_number: int | None
    data_ids: tuple[str, ...]

    def addresses(self, cert: x509.Certificate) -> bool:
        """True when this key is addressed to ``cert`` (by SKI or issuer + serial)."""
        if self.ski is not None:
            return self.ski == primitives.subject_key_identifier(cert)
        return (
            self.issuer_name is not None
            and self.serial_number == cert.serial_number
            and _norm_name(self.issuer_name) == _norm_name(cert.issuer.rfc4514_string())
        )


def _norm_name(name: str) -> str:
    return "".join(name.split()).casefold()


def parse_encrypted_key(ek: etree._Element, *, allowed: frozenset[str]) -> ParsedEncryptedKey:
    """Strictly parse an EncryptedKey; raise a typed error for anything outside the profile."""
    kids = elements(ek)
    tags = [k.tag for k in kids]
    if _XENC_CARRIED_KEY_NAME in tags or _XENC_ENCRYPTION_PROPERTIES in tags:
        raise SecurityHeaderInvalid("EncryptedKey has elements outside the profile")
    if tags != [
        _XENC_ENCRYPTION_METHOD,
        _DS_KEY_INFO,
        _XENC_CIPHER_DATA,
        _XENC_REFERENCE_LIST,
    ]:
        raise SecurityHeaderInvalid(
            "EncryptedKey must hold EncryptionMethod, KeyInfo, CipherData, ReferenceList"
        )
    method, key_info, cipher_data, ref_list = kids
    algorithm, digest, mgf = _key_transport(method, allowed)
    ski, issuer, serial = _recipient_reference(key_info)
    cipher_value = elements(cipher_data)
    if len(cipher_value) != 1 or cipher_value[0].tag != _XENC_CIPHER_VALUE:
        raise SecurityHeaderInvalid("EncryptedKey CipherData must hold one CipherValue")
    try:
        wrapped = primitives.b64decode(text_only(cipher_value[0], "EncryptedKey CipherValue"))
    except ValueError:
        raise CipherDataMalformed("EncryptedKey CipherValue is not valid base64") from None
    data_ids = []
    for ref in elements(ref_list):
        uri = ref.get("URI") or ""
        if ref.tag != _XENC_DATA_REFERENCE or not uri.startswith("#") or len(uri) < 2:
            raise SecurityHeaderInvalid("ReferenceList must hold DataReference URI='#id' only")
        data_ids.append(uri[1:])
    return ParsedEncryptedKey(
        key_id=ek.get("Id"),
        algorithm=algorithm,
        digest=digest,
        mgf_digest=mgf,
        wrapped=wrapped,
        ski=ski,
        issuer_name=issuer,
        serial_number=serial,
        data_ids=tuple(data_ids),
    )


def _key_transport(method: etree._Element, allowed: frozenset[str]) -> tuple[str, str, str]:
    algorithm = method.get("Algorithm") or ""
    if algorithm == KT_RSA_1_5:
        raise KeyTransportRejected("RSA PKCS#1 v1.5 key transport (rsa-1_5) is not accepted")
    if algorithm not in allowed or algorithm not in (KT_RSA_OAEP, KT_RSA_OAEP_MGF1P):
        raise KeyTransportRejected("key transport algorithm is not accepted by policy")
    digest, mgf = "sha1", "sha1"  # the defaults of both OAEP identifiers
    for param in elements(method):
        alg = param.get("Algorithm") or ""
        if param.tag == _DS_DIGEST_METHOD and alg in _DIGESTS:
            digest = _DIGESTS[alg]
        elif param.tag == _XENC11_MGF and algorithm == KT_RSA_OAEP and alg in _MGFS:
            mgf = _MGFS[alg]
        else:
            raise KeyTransportRejected("unsupported RSA-OAEP parameter (digest, MGF or label)")
    return algorithm, digest, mgf


def _recipient_reference(key_info: etree._Element) -> tuple[bytes | None, str | None, int | None]:
    kids = elements(key_info)
    if len(kids) == 1 and kids[0].tag == _WSSE_SECURITY_TOKEN_REFERENCE:
        kids = elements(kids[0])
    if len(kids) != 1:
        raise SecurityHeaderInvalid("EncryptedKey KeyInfo must name one recipient certificate")
    ref = kids[0]
    if ref.tag == _WSSE_KEY_IDENTIFIER:
        if ref.get("ValueType") != VALUE_SKI or ref.get("EncodingType", ENCODING_BASE64) != (
            ENCODING_BASE64
        ):
            raise SecurityHeaderInvalid("KeyIdentifier must be a base64 X509SubjectKeyIdentifier")
        try:
            return primitives.b64decode(text_only(ref, "KeyIdentifier")), None, None
        except ValueError:
            raise SecurityHeaderInvalid("KeyIdentifier is not valid base64") from None
    if ref.tag == q(DS, "X509Data"):
        serial_el = ref.find(f"{q(DS, 'X509IssuerSerial')}/{q(DS, 'X509SerialNumber')}")
        issuer_el = ref.find(f"{q(DS, 'X509IssuerSerial')}/{q(DS, 'X509IssuerName')}")
        if serial_el is None or issuer_el is None:
            raise SecurityHeaderInvalid("X509IssuerSerial is incomplete")
        text = text_only(serial_el, "X509SerialNumber").strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 60:  # "²".isdigit() is True
            raise SecurityHeaderInvalid("X509SerialNumber is not a decimal number")
        return None, text_only(issuer_el, "X509IssuerName"), int(text)
    raise SecurityHeaderInvalid("EncryptedKey KeyInfo is neither an SKI nor an issuer+serial")


def unwrap_key(parsed: ParsedEncryptedKey, private_key: rsa.RSAPrivateKey) -> bytes:
    """The content key; ``DecryptionFailed`` when OAEP fails or the key is not 256 bits."""
    try:
        key = primitives.oaep_unwrap(
            private_key, parsed.wrapped, digest=parsed.digest, mgf_digest=parsed.mgf_digest
        )
    except ValueError:
        raise DecryptionFailed("the EncryptedKey does not decrypt with our key") from None
    if len(key) != primitives.AES256_KEY_BYTES:
        raise DecryptionFailed("the transported key is not an AES-256 key")
    return key


def cipher_value_of(ed: etree._Element) -> etree._Element:
    """Check an EncryptedData against the profile and return its CipherValue element."""
    if ed.get("Type") != ENC_TYPE_CONTENT:
        raise SecurityHeaderInvalid("EncryptedData must encrypt element content (Type #Content)")
    kids = elements(ed)
    tags = [k.tag for k in kids]
    if not tags or tags[0] != _XENC_ENCRYPTION_METHOD:
        raise SecurityHeaderInvalid("EncryptedData has no EncryptionMethod")
    algorithm = kids[0].get("Algorithm") or ""
    if algorithm != ENC_AES256_GCM:
        kind = "CBC mode" if algorithm.endswith("-cbc") else "an unsupported algorithm"
        raise DataEncryptionRejected(f"data encryption with {kind} is not accepted")
    if elements(kids[0]):
        raise DataEncryptionRejected("EncryptionMethod parameters are not accepted")
    rest = tags[1:]
    if rest and rest[0] == _DS_KEY_INFO:
        rest = rest[1:]
    if rest != [_XENC_CIPHER_DATA]:
        raise SecurityHeaderInvalid("EncryptedData must hold CipherData (and nothing else)")
    values = elements(kids[-1])
    if len(values) != 1 or values[0].tag != _XENC_CIPHER_VALUE:
        raise SecurityHeaderInvalid("EncryptedData must carry its CipherValue inline")
    return values[0]


def decode_cipher_value(cipher_text: str) -> bytes:
    """base64(IV || ciphertext || tag) to bytes; ``CipherDataMalformed`` when malformed or short.

    Needs no key: call it before unwrapping, so that no structural fault code depends on
    whether the key unwrapped.
    """
    try:
        raw = primitives.b64decode(cipher_text)
    except ValueError:
        raise CipherDataMalformed("EncryptedData CipherValue is not valid base64") from None
    if len(raw) < primitives.GCM_IV_BYTES + primitives.GCM_TAG_BYTES:
        raise CipherDataMalformed("EncryptedData is shorter than IV + tag")
    return raw


def decode_cipher_bytes(text: memoryview, *, decoded: bytes | None = None) -> bytes | bytearray:
    """``decode_cipher_value`` of a CipherValue's text read from the message's bytes: decoded
    piecewise into one buffer, without a copy of the text (``largetext``). ``decoded``: the
    text's strict decode when it was already made (``largetext.Cut.decoded``)."""
    try:
        raw = largetext.decode_base64(text) if decoded is None else decoded
    except ValueError:
        raise CipherDataMalformed("EncryptedData CipherValue is not valid base64") from None
    if len(raw) < primitives.GCM_IV_BYTES + primitives.GCM_TAG_BYTES:
        raise CipherDataMalformed("EncryptedData is shorter than IV + tag")
    return raw


def decrypt(key: bytes, raw: bytes | bytearray) -> bytes:
    """AES-256-GCM decrypt ``IV || ciphertext || tag``; ``DecryptionFailed`` for a bad tag."""
    try:
        return primitives.aes_gcm_decrypt(key, raw)
    except InvalidTag:
        raise DecryptionFailed("the AES-GCM tag does not verify") from None


def decrypt_content(key: bytes, cipher_text: str) -> bytes:
    """Decrypt base64(IV || ciphertext || tag); typed errors for malformed data and a bad tag."""
    return decrypt(key, decode_cipher_value(cipher_text))
