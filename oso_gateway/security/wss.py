"""The secure transfer message: WS-Security sign + encrypt per Digikoppeling WUS 2W-be-SE.

``seal`` signs (exclusive C14N, RSA-SHA256, SHA-256 references by ``wsu:Id``) and then encrypts
the content of ``soap:Body`` (AES-256-GCM, key transported with RSA-OAEP to the recipient's
certificate). ``open_message`` undoes it, checking the cheap things and the signer before it
decrypts, and returns only what it verified. Pure: no I/O, ``now`` is an argument. The profile
is described for other implementers in ``docs/protocol.md``.
"""

from __future__ import annotations

import functools
import io
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import cast

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from lxml import etree

from oso_gateway.errors import (
    CrlInvalid,
    CrlMissing,
    CrlStale,
    DecryptedContentInvalid,
    DecryptionFailed,
    DigestMismatch,
    DuplicateId,
    NotAddressedToUs,
    RecipientMismatch,
    ReferenceInvalid,
    SealError,
    SecurityHeaderInvalid,
    SenderOinMismatch,
    SignatureCountInvalid,
    SignedPartMissing,
    SignerTokenInvalid,
    SignerUntrusted,
    TimestampExpired,
    TimestampInFuture,
    TimestampTooLong,
    TrustError,
    XmlForbiddenConstruct,
    XmlLimitExceeded,
    XmlParseError,
)
from oso_gateway.limits import MAX_MESSAGE_BYTES
from oso_gateway.protocol import MESSAGE_ID_PATTERN, is_oin
from oso_gateway.security import largetext, primitives, xmldsig, xmlenc
from oso_gateway.security.c14n import (
    Canonical,
    exc_c14n,
    is_canonical,
    wrapped_c14n_digest,
    wrapped_canonical_digest,
)
from oso_gateway.security.keys import MIN_RSA_BITS
from oso_gateway.security.namespaces import (
    DS,
    ENCODING_BASE64,
    KT_RSA_OAEP,
    KT_RSA_OAEP_MGF1P,
    SOAP,
    VALUE_X509V3,
    WSA,
    WSA_ANONYMOUS,
    WSSE,
    WSSE11,
    WSU,
    XENC,
    XENC11,
    XML,
    local_name,
    q,
)
from oso_gateway.security.trust import TrustConfig, VerifiedCertificate, verify_certificate
from oso_gateway.security.xmldsig import elements, text_only
from oso_gateway.security.xmlparse import ParseLimits, count_markup, parse_xml

__all__ = [
    "KT_RSA_OAEP",
    "KT_RSA_OAEP_MGF1P",
    "Identity",
    "OpenPolicy",
    "OpenedMessage",
    "SealedMessage",
    "from_address",
    "open_message",
    "seal",
]

_WSU_ID = q(WSU, "Id")
_MUST_UNDERSTAND = q(SOAP, "mustUnderstand")
_DATETIME_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,12}))?(Z|[+-]\d{2}:\d{2})"
)
_MAX_HEADER_TEXT = 2048
#: bytes of ciphertext encrypted and base64-encoded at a time while writing a sealed message (a
#: multiple of 3, so the pieces concatenate without padding). Small enough that the allocator
#: serves each piece and its base64 from memory it keeps: pieces of megabytes took fresh pages
#: from the system every time (~1 300 page faults per 2 MB sealing, a quarter of its time here)
_B64_CHUNK = 192 * 1024
#: a CipherValue of at least this many bytes is decoded straight from the message's bytes, not
#: parsed into the envelope's tree first (``largetext``)
_CUT_MIN = 1024 * 1024
_UUID_URN_RE = re.compile(MESSAGE_ID_PATTERN)


#: Clark names the open path compares tags with (built once, not per message)
_DS_SIGNATURE = q(DS, "Signature")
_SOAP_BODY = q(SOAP, "Body")
_SOAP_ENVELOPE = q(SOAP, "Envelope")
_SOAP_HEADER = q(SOAP, "Header")
_WSA_ADDRESS = q(WSA, "Address")
_WSSE11_SIGNATURE_CONFIRMATION = q(WSSE11, "SignatureConfirmation")
_WSSE_BINARY_SECURITY_TOKEN = q(WSSE, "BinarySecurityToken")
_WSSE_SECURITY = q(WSSE, "Security")
_WSU_CREATED = q(WSU, "Created")
_WSU_EXPIRES = q(WSU, "Expires")
_WSU_TIMESTAMP = q(WSU, "Timestamp")
_XENC_ENCRYPTED_DATA = q(XENC, "EncryptedData")
_XENC_ENCRYPTED_KEY = q(XENC, "EncryptedKey")


@dataclass(frozen=True, kw_only=True)
class Identity:
    """One gateway key (a gateway may hold several, e.g. during rollover)."""

    oin: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SealedMessage:
    data: bytes
    message_id: str
    signature_value: bytes
    payload_digest: str


@dataclass(frozen=True, kw_only=True)
class OpenPolicy:
    #: the largest sealed message (``oso_gateway.limits``), above the dossier's own limit
    max_bytes: int = MAX_MESSAGE_BYTES
    max_depth: int = 64
    #: The envelope outside the encrypted Body is a few dozen elements and attributes: a flood in
    #: an ignored header block is refused before the envelope costs more than a small dossier.
    max_envelope_markup: int = 10_000
    max_envelope_elements: int = 2_000
    clock_skew: timedelta = timedelta(minutes=2)
    max_ttl: timedelta = timedelta(minutes=15)
    key_transports: frozenset[str] = frozenset({KT_RSA_OAEP, KT_RSA_OAEP_MGF1P})
    expected_to: str | None = None


@dataclass(frozen=True, kw_only=True)
class OpenedMessage:
    message_id: str
    action: str
    to: str
    from_oin: str
    relates_to: str | None
    created: datetime
    expires: datetime
    signer: VerifiedCertificate
    signature_value: bytes
    signature_confirmation: bytes | None
    payload: etree._Element
    payload_digest: str
    recipient_oin: str
    #: the payload's exclusive C14N: the bytes the Body digest and ``payload_digest`` cover
    payload_c14n: bytes = b""


def from_address(oin: str) -> str:
    """The ``wsa:From/wsa:Address`` of a gateway identity."""
    return f"{WSA_ANONYMOUS}?oin={oin}"


# ============================================================================================
# seal
# ============================================================================================


def _new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


def _xs_datetime(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _sub(parent: etree._Element, ns: str, local: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, q(ns, local))
    if text is not None:
        el.text = text
    return el


def _check_seal_args(
    payload: etree._Element | Canonical,
    sender: Identity,
    recipient_certificate: x509.Certificate,
    header_values: Iterable[str],
    now: datetime,
    key_transport: str,
    ttl: timedelta,
) -> None:
    if isinstance(payload, Canonical):
        if not payload.data.startswith(b"<"):
            raise SealError("the canonical payload must be an element's canonical form")
    elif not isinstance(payload, etree._Element) or not isinstance(payload.tag, str):
        raise SealError("the payload must be an element")
    if now.tzinfo is None:
        raise SealError("now must be timezone-aware")
    if not is_oin(sender.oin):
        raise SealError("the sender OIN must be 20 digits")
    if key_transport not in (KT_RSA_OAEP, KT_RSA_OAEP_MGF1P):
        raise SealError("unsupported key transport")
    if ttl <= timedelta(0):
        raise SealError("ttl must be positive")
    for value in header_values:
        if not value or len(value) > _MAX_HEADER_TEXT or xmlenc.CIPHER_PLACEHOLDER in value:
            raise SealError("a WS-Addressing value is empty or too long")
    recipient_key = recipient_certificate.public_key()
    if not isinstance(recipient_key, rsa.RSAPublicKey) or recipient_key.key_size < MIN_RSA_BITS:
        raise SealError(f"the recipient certificate does not hold an RSA-{MIN_RSA_BITS}+ key")
    if sender.private_key.key_size < MIN_RSA_BITS:
        raise SealError(f"the sender key is shorter than {MIN_RSA_BITS} bits")
    ours = sender.private_key.public_key().public_numbers()
    if sender.certificate.public_key().public_numbers() != ours:  # type: ignore[union-attr]
        raise SealError("the sender's private key does not match its certificate")


def _security_header(
    header: etree._Element,
    sender: Identity,
    now: datetime,
    ttl: timedelta,
    signature_confirmation: bytes | None,
    signed: list[etree._Element],
) -> tuple[etree._Element, str]:
    """Append wsse:Security with the Timestamp, the SignatureConfirmation (if any) and the
    sender's token; the parts to sign are added to ``signed``. Returns it and the token's id."""
    security = _sub(header, WSSE, "Security")
    security.set(_MUST_UNDERSTAND, "1")
    created = now.astimezone(UTC).replace(microsecond=now.microsecond // 1000 * 1000)
    timestamp = _sub(security, WSU, "Timestamp")
    timestamp.set(_WSU_ID, _new_id("TS"))
    _sub(timestamp, WSU, "Created", _xs_datetime(created))
    _sub(timestamp, WSU, "Expires", _xs_datetime(created + ttl))
    signed.append(timestamp)
    if signature_confirmation is not None:
        confirmation = _sub(security, WSSE11, "SignatureConfirmation")
        confirmation.set(_WSU_ID, _new_id("SC"))
        confirmation.set("Value", primitives.b64encode(signature_confirmation).decode())
        signed.append(confirmation)
    token = _sub(security, WSSE, "BinarySecurityToken")
    token_id = _new_id("X509")
    token.set(_WSU_ID, token_id)
    token.set("EncodingType", ENCODING_BASE64)
    token.set("ValueType", VALUE_X509V3)
    der = sender.certificate.public_bytes(serialization.Encoding.DER)
    token.text = primitives.b64encode(der).decode()
    return security, token_id


def seal(
    payload: etree._Element | Canonical,
    *,
    sender: Identity,
    recipient_certificate: x509.Certificate,
    to: str,
    action: str,
    message_id: str,
    now: datetime,
    relates_to: str | None = None,
    signature_confirmation: bytes | None = None,
    key_transport: str = KT_RSA_OAEP,
    ttl: timedelta = timedelta(minutes=5),
    recipient_reference: xmlenc.RecipientReference = "ski",
) -> SealedMessage:
    """Sign, then encrypt ``payload`` into a SOAP envelope for ``recipient_certificate``.

    ``payload``: the element, or its exclusive C14N (``c14n.canonical``): a large payload is then
    sealed without its tree alive (the caller can drop the tree first).

    ``recipient_reference`` chooses how the EncryptedKey names the recipient's certificate:
    by subject key identifier (default) or by issuer and serial number.
    """
    addressing = [to, action, message_id] + ([relates_to] if relates_to is not None else [])
    _check_seal_args(payload, sender, recipient_certificate, addressing, now, key_transport, ttl)
    nsmap = {"soap": SOAP, "wsa": WSA, "wsse": WSSE, "wsu": WSU, "ds": DS, "xenc": XENC}
    if key_transport == KT_RSA_OAEP:
        nsmap["xenc11"] = XENC11
    if signature_confirmation is not None:
        nsmap["wsse11"] = WSSE11
    envelope = etree.Element(q(SOAP, "Envelope"), nsmap=nsmap)
    header = _sub(envelope, SOAP, "Header")
    signed: list[etree._Element] = []

    def wsa(local: str, text: str | None) -> etree._Element:
        el = _sub(header, WSA, local, text)
        el.set(_WSU_ID, _new_id(local))
        signed.append(el)
        return el

    wsa("To", to)
    wsa("Action", action)
    wsa("MessageID", message_id)
    if relates_to is not None:
        wsa("RelatesTo", relates_to)
    from_el = wsa("From", None)
    _sub(from_el, WSA, "Address", from_address(sender.oin))

    security, token_id = _security_header(header, sender, now, ttl, signature_confirmation, signed)

    body = _sub(envelope, SOAP, "Body")
    body_id = _new_id("Body")
    body.set(_WSU_ID, body_id)

    # --- sign: the Body is digested as if it held the payload (it is never copied in) ---------
    if isinstance(payload, Canonical):
        payload_c14n = payload.data
        body_digest = wrapped_canonical_digest(body, payload, _parse_own)
    else:
        payload_c14n = exc_c14n(payload)
        body_digest = wrapped_c14n_digest(body, payload, payload_c14n)
    del payload
    payload_digest = primitives.sha256_hex(payload_c14n)
    references = [(body_id, body_digest)]
    for el in signed:
        references.append((el.get(_WSU_ID) or "", primitives.sha256(exc_c14n(el))))
    signature = xmldsig.build_signature(security, references=references, token_id=token_id)
    signature_value = xmldsig.sign(signature, sender.private_key)

    # --- then encrypt the Body content --------------------------------------------------------
    content_key = primitives.new_content_key()
    # The plaintext is the payload's canonical form: exactly what the Body digest covers.
    iv, pieces = primitives.aes_gcm_encrypt_pieces(content_key, payload_c14n, piece=_B64_CHUNK)
    del payload_c14n  # the caller's reference (if any) keeps it; ours must not outlive this
    data_id = _new_id("ED")
    xmlenc.build_encrypted_data(body, data_id=data_id)
    encrypted_key = xmlenc.build_encrypted_key(
        key_id=_new_id("EK"),
        recipient=recipient_certificate,
        content_key=content_key,
        data_ids=(data_id,),
        key_transport=key_transport,
        reference=recipient_reference,
    )
    signature.addprevious(encrypted_key)
    return SealedMessage(
        data=_write_message(envelope, iv, pieces),
        message_id=message_id,
        signature_value=signature_value,
        payload_digest=payload_digest,
    )


def _write_message(envelope: etree._Element, iv: bytes, pieces: Iterable[bytes]) -> bytes:
    """The sealed message: the envelope with the CipherValue placeholder replaced by the base64
    of ``iv`` + the ciphertext pieces.

    The message is written once, the ciphertext encrypted and base64-encoded a piece at a time
    straight into it: the message is the only large buffer sealing adds (no ciphertext, no
    separate base64 copy to join), and getvalue() hands it over without copying it.
    """
    skeleton = etree.tostring(envelope, encoding="UTF-8", xml_declaration=True)
    parts = skeleton.split(xmlenc.CIPHER_PLACEHOLDER.encode("ascii"))
    if len(parts) != 2:
        raise SealError("the envelope skeleton is ambiguous")
    out = io.BytesIO()
    out.write(parts[0])
    _write_b64(out, iv, pieces)
    out.write(parts[1])
    return out.getvalue()


def _write_b64(out: io.BytesIO, iv: bytes, pieces: Iterable[bytes]) -> None:
    """Base64 of ``iv`` + the pieces, written piecewise (pieces that are not a multiple of 3 bytes
    long carry their last one or two bytes over, so the parts concatenate without padding)."""
    carry = iv
    for piece in pieces:
        with memoryview(piece) as view:
            if carry:  # complete the carried group with the piece's first bytes (no copy of it)
                take = min(len(view), -len(carry) % 3)
                carry += view[:take]
                if len(carry) % 3:
                    continue  # a piece of one byte: still not a whole group
                out.write(primitives.b64encode(carry))
                view = view[take:]  # the rest of the same piece
            whole = len(view) - len(view) % 3
            out.write(primitives.b64encode(view[:whole]))
            carry = bytes(view[whole:])
    out.write(primitives.b64encode(carry))


def _parse_own(data: bytes) -> etree._Element:
    """Our own canonical payload back into a tree (the rare careful path of the Body digest)."""
    return parse_xml(data, limits=ParseLimits(max_bytes=max(len(data), 1))).getroot()


# ============================================================================================
# open
# ============================================================================================


@dataclass(kw_only=True)
class _Shape:
    envelope: etree._Element
    header: etree._Element
    body: etree._Element
    security: etree._Element
    addressing: dict[str, etree._Element]
    timestamp: etree._Element
    token: etree._Element
    encrypted_key: etree._Element
    signature: etree._Element
    confirmation: etree._Element | None
    encrypted_data: etree._Element


_SECURITY_CHILDREN = {
    _WSU_TIMESTAMP: "Timestamp",
    _WSSE_BINARY_SECURITY_TOKEN: "BinarySecurityToken",
    _XENC_ENCRYPTED_KEY: "EncryptedKey",
    _DS_SIGNATURE: "Signature",
    _WSSE11_SIGNATURE_CONFIRMATION: "SignatureConfirmation",
}
_ADDRESSING = ("To", "Action", "MessageID", "RelatesTo", "From")
#: the addressing headers by Clark name (a dict look-up, not a QName object per header block)
_ADDRESSING_TAGS = {q(WSA, name): name for name in _ADDRESSING}


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip() in ("1", "true")


def _check_shape(root: etree._Element) -> _Shape:
    if root.tag != _SOAP_ENVELOPE:
        raise SecurityHeaderInvalid("the document is not a SOAP 1.1 Envelope")
    kids = elements(root)
    if [k.tag for k in kids] != [_SOAP_HEADER, _SOAP_BODY]:
        raise SecurityHeaderInvalid("the Envelope must hold exactly a Header and a Body")
    header, body = kids
    addressing: dict[str, etree._Element] = {}
    securities: list[etree._Element] = []
    for child in elements(header):
        name = _ADDRESSING_TAGS.get(child.tag)
        if name is not None:
            if name in addressing:
                raise SecurityHeaderInvalid(f"more than one wsa:{name} header")
            addressing[name] = child
        elif child.tag == _WSSE_SECURITY:
            securities.append(child)
        elif _is_true(child.get(_MUST_UNDERSTAND)):
            raise SecurityHeaderInvalid("a header block we do not understand is mustUnderstand")
    for required in ("To", "Action", "MessageID", "From"):
        if required not in addressing:
            raise SecurityHeaderInvalid(f"the wsa:{required} header is missing")
    if len(securities) != 1:
        raise SecurityHeaderInvalid(f"{len(securities)} wsse:Security headers (need exactly one)")
    security = securities[0]
    if not _is_true(security.get(_MUST_UNDERSTAND)):
        raise SecurityHeaderInvalid("wsse:Security is not mustUnderstand")
    found: dict[str, list[etree._Element]] = {name: [] for name in _SECURITY_CHILDREN.values()}
    for child in elements(security):
        kind = _SECURITY_CHILDREN.get(child.tag)
        if kind is None:
            raise SecurityHeaderInvalid("wsse:Security holds an element outside the profile")
        found[kind].append(child)
    signatures = list(header.iter(_DS_SIGNATURE))
    if len(signatures) != 1 or len(found["Signature"]) != 1:
        raise SignatureCountInvalid(
            f"{len(signatures)} ds:Signature elements in the Header (need exactly one, "
            "in wsse:Security)"
        )
    for name in ("Timestamp", "BinarySecurityToken", "EncryptedKey"):
        if len(found[name]) != 1:
            raise SecurityHeaderInvalid(f"wsse:Security must hold exactly one {name}")
    if len(found["SignatureConfirmation"]) > 1:
        raise SecurityHeaderInvalid("more than one SignatureConfirmation")
    body_kids = elements(body)
    if len(body_kids) != 1 or body_kids[0].tag != _XENC_ENCRYPTED_DATA:
        raise SecurityHeaderInvalid("the Body must hold exactly one xenc:EncryptedData")
    if (body.text or "").strip() or (body_kids[0].tail or "").strip():
        raise SecurityHeaderInvalid("the Body holds text besides the EncryptedData")
    if len(body) != 1:
        raise SecurityHeaderInvalid("the Body holds comments besides the EncryptedData")
    return _Shape(
        envelope=root,
        header=header,
        body=body,
        security=security,
        addressing=addressing,
        timestamp=found["Timestamp"][0],
        token=found["BinarySecurityToken"][0],
        encrypted_key=found["EncryptedKey"][0],
        signature=found["Signature"][0],
        confirmation=found["SignatureConfirmation"][0] if found["SignatureConfirmation"] else None,
        encrypted_data=body_kids[0],
    )


def _parse_datetime(text: str, what: str) -> datetime:
    match = _DATETIME_RE.fullmatch(text.strip())
    if match is None:
        raise SecurityHeaderInvalid(f"Timestamp {what} is not an xs:dateTime with a time zone")
    base, fraction, zone = match.groups()
    micro = (fraction or "")[:6].ljust(6, "0")
    try:
        value = datetime.fromisoformat(f"{base}.{micro}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        raise SecurityHeaderInvalid(f"Timestamp {what} is not a valid date") from None
    return value.astimezone(UTC)


def _check_timestamp(
    timestamp: etree._Element, now: datetime, policy: OpenPolicy
) -> tuple[datetime, datetime]:
    kids = elements(timestamp)
    if [k.tag for k in kids] != [_WSU_CREATED, _WSU_EXPIRES]:
        raise SecurityHeaderInvalid("wsu:Timestamp must hold Created and Expires")
    created = _parse_datetime(text_only(kids[0], "wsu:Created"), "Created")
    expires = _parse_datetime(text_only(kids[1], "wsu:Expires"), "Expires")
    if created > now + policy.clock_skew:
        raise TimestampInFuture(
            f"Created {created.isoformat()} is after now {now.isoformat()} + skew"
        )
    if expires <= now - policy.clock_skew:
        raise TimestampExpired(f"Expires {expires.isoformat()} has passed (now {now.isoformat()})")
    if expires <= created:
        raise SecurityHeaderInvalid("Timestamp Expires is not after Created")
    if expires - created > policy.max_ttl:
        raise TimestampTooLong(f"lifetime {expires - created} exceeds {policy.max_ttl}")
    return created, expires


#: The ID-like attributes: wsu:Id, and unqualified Id, ID, id, and xml:id (Clark names).
_ID_NAMES = frozenset({"Id", "ID", "id", _WSU_ID, q(XML, "id")})
#: Every attribute of the subtree, in one walk inside libxml2 (a string function per attribute
#: costs more than the walk); their names are then looked up in ``_ID_NAMES``. The cheaper way
#: for a large tree with few attributes (a dossier). An attribute flood is bounded by the
#: parser's markup limit.
_ATTRIBUTES = etree.XPath("descendant-or-self::*/@*")
#: Only the ID-like attributes, one walk per name: the cheaper way for a small tree in which
#: most elements carry attributes (an envelope's ~60 elements: about half the time of
#: ``_ATTRIBUTES``, which makes an object of every attribute). The same attributes as
#: ``_ATTRIBUTES`` filtered by ``_ID_NAMES`` (a test holds the two to it).
_ID_ATTRIBUTES = etree.XPath(
    " | ".join(f"descendant-or-self::*/@{name}" for name in ("Id", "ID", "id", "wsu:Id", "xml:id")),
    namespaces={"wsu": WSU},
)


def _id_index(*roots: etree._Element, by_name: bool = False) -> dict[str, list[etree._Element]]:
    """Every element carrying an ID-like attribute, by value (one element may carry several).
    ``by_name``: walk once per ID name (``_ID_ATTRIBUTES``, for the envelope) instead of once
    over every attribute."""
    index: dict[str, list[etree._Element]] = {}
    walk = _ID_ATTRIBUTES if by_name else _ATTRIBUTES
    for root in roots:
        for attribute in cast("list[etree._ElementUnicodeResult]", walk(root)):
            if attribute.attrname in _ID_NAMES:
                el = cast(etree._Element, attribute.getparent())
                elements_with_it = index.setdefault(str(attribute), [])
                if not any(other is el for other in elements_with_it):  # Id="a" id="a": once
                    elements_with_it.append(el)
    return index


@functools.lru_cache(maxsize=256)
def _load_certificate(der: bytes) -> tuple[x509.Certificate, PublicKeyTypes]:
    """The certificate of exactly these DER bytes and its public key (a pure function of the
    bytes, kept for the few peers a gateway sees again and again: the same object comes back, so
    the trust config's caches find it without encoding it again). A failure is not kept."""
    cert = x509.load_der_x509_certificate(der)
    return cert, cert.public_key()  # the key is decoded lazily: an odd one fails here


def _token_certificate(token: etree._Element) -> tuple[x509.Certificate, rsa.RSAPublicKey]:
    """The signer's certificate and its RSA public key; E224 for anything unusable."""
    if token.get("ValueType") != VALUE_X509V3 or token.get("EncodingType") != ENCODING_BASE64:
        raise SignerTokenInvalid("the BinarySecurityToken is not a base64 X509v3 token")
    text = text_only(token, "wsse:BinarySecurityToken")
    try:
        cert, key = _load_certificate(primitives.b64decode(text))
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion):
        # InvalidVersion (a version field other than v1 or v3) is no ValueError (found by fuzzing)
        raise SignerTokenInvalid("the BinarySecurityToken holds no usable certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignerTokenInvalid("the signer certificate does not hold an RSA key")
    return cert, key


def _text(el: etree._Element, what: str) -> str:
    value = text_only(el, f"wsa:{what}").strip()
    if not value or len(value) > _MAX_HEADER_TEXT:
        raise SecurityHeaderInvalid(f"wsa:{what} is empty or too long")
    return value


def _uuid_urn(el: etree._Element, what: str) -> str:
    """A MessageID / RelatesTo value: ``urn:uuid:`` and a lowercase UUID (E204, value not shown)."""
    value = _text(el, what)
    if not _UUID_URN_RE.fullmatch(value):
        raise SecurityHeaderInvalid(f"wsa:{what} is not urn:uuid: and a lowercase UUID")
    return value


def _from_oin(from_el: etree._Element) -> str:
    kids = elements(from_el)
    if len(kids) != 1 or kids[0].tag != _WSA_ADDRESS:
        raise SecurityHeaderInvalid("wsa:From must hold one wsa:Address")
    address = text_only(kids[0], "wsa:From/wsa:Address").strip()
    prefix = WSA_ANONYMOUS + "?oin="
    oin = address[len(prefix) :] if address.startswith(prefix) else ""
    if not is_oin(oin):
        raise SecurityHeaderInvalid("wsa:From/wsa:Address does not carry a 20-digit OIN")
    return oin


def _leading_ws(data: bytes) -> int:
    match = re.match(rb"[ \t\r\n]*", data)
    return match.end() if match else 0


def _trailing_ws(data: bytes) -> int:
    n = len(data)
    i = n
    while i > 0 and data[i - 1] in b" \t\r\n":
        i -= 1
    return n - i


def _unwrap_and_decrypt(
    ek: xmlenc.ParsedEncryptedKey, private_key: rsa.RSAPrivateKey, raw: bytes | bytearray
) -> bytes:
    """Unwrap the content key and decrypt ``raw``, failing alike whether or not OAEP succeeded.

    A failed unwrap goes on with a random key (so the GCM pass runs either way) and raises the
    same DecryptionFailed (E210) as a bad tag: neither the fault code nor the work done tells
    the peer whether its EncryptedKey unwrapped.
    """
    try:
        key = xmlenc.unwrap_key(ek, private_key)
        unwrap_error: DecryptionFailed | None = None
    except DecryptionFailed as exc:
        key, unwrap_error = primitives.new_content_key(), exc
    try:
        plaintext = xmlenc.decrypt(key, raw)
    except DecryptionFailed as exc:
        raise (unwrap_error or exc) from None
    if unwrap_error is not None:  # a random key whose tag verified: 2**-128, still refused
        raise unwrap_error
    return plaintext


def open_message(
    data: bytes | bytearray,
    *,
    identities: Sequence[Identity],
    trust: TrustConfig,
    policy: OpenPolicy = OpenPolicy(),
    now: datetime,
) -> OpenedMessage:
    """Decrypt and verify a sealed message; return only verified data or raise a typed error.

    The checks run cheapest first, so that a message that can be refused costs little (see
    ``docs/security.md``): the bounded parse and the envelope's shape, the timestamp and the
    identifiers, the key's addressing, the signature's structure and where each reference points,
    the signer's certificate path and the SignatureValue over SignedInfo; only a message signed
    by a trusted signer is then decrypted and has its references' digests computed.

    A ``bytearray`` is taken over: it is emptied as soon as the ciphertext is out of it, so that
    the largest message is not held twice (bytes are left alone).
    """
    if now.tzinfo is None:
        raise TypeError("now must be timezone-aware")
    now = now.astimezone(UTC)
    limits, envelope_limits = _parse_limits(policy)
    root, message = _parse_envelope(data, envelope_limits)
    del data  # the message's bytes live on in ``message`` until the ciphertext is decoded
    shape = _check_shape(root)
    header = _check_headers(shape, now, policy)
    ek, identity = _addressed_key(shape, identities, policy)
    signed = _check_signature_structure(shape)
    signer = _authenticate_signer(shape, signed, header, trust, now)
    content = _decrypt_body(shape, ek, identity, limits, message)
    _check_digests(shape, signed, content)
    to = _text(shape.addressing["To"], "To")
    if policy.expected_to is not None and to != policy.expected_to:
        raise RecipientMismatch("the signed wsa:To is not this endpoint")
    return OpenedMessage(
        message_id=header.message_id,
        action=header.action,
        to=to,
        from_oin=header.from_oin,
        relates_to=header.relates_to,
        created=header.created,
        expires=header.expires,
        signer=signer,
        signature_value=signed.parsed.signature_value,
        signature_confirmation=header.confirmation,
        payload=content.payload,
        payload_digest=content.payload_digest,
        recipient_oin=identity.oin,
        payload_c14n=content.payload_c14n,
    )


@functools.lru_cache(maxsize=16)
def _parse_limits(policy: OpenPolicy) -> tuple[ParseLimits, ParseLimits]:
    """The parse limits of the decrypted content and of the envelope under ``policy`` (both
    frozen, made once per policy: building them cost ~4 us per message)."""
    limits = ParseLimits(
        max_bytes=policy.max_bytes, max_depth=policy.max_depth, max_text=policy.max_bytes
    )
    envelope_limits = replace(
        limits, max_markup=policy.max_envelope_markup, max_elements=policy.max_envelope_elements
    )
    return limits, envelope_limits


@dataclass(kw_only=True)
class _Message:
    """The message's bytes while its ciphertext is still read from them (a cut message)."""

    data: bytes | bytearray | None
    cut: largetext.Cut | None = None
    #: the CipherValue element whose text was cut out of the envelope
    holder: etree._Element | None = None
    #: that text decoded when the cut's check decoded it (``largetext.Cut.decoded``)
    decoded: bytes | None = None

    def ciphertext(self, cipher_value: etree._Element) -> bytes | bytearray:
        """The decoded CipherValue (E206 when malformed), read from the message's bytes."""
        if self.cut is None or self.data is None or cipher_value is not self.holder:
            raise SecurityHeaderInvalid("the CipherValue is not the one cut from the message")
        decoded, self.decoded = self.decoded, None  # held once: by the caller only
        with memoryview(self.data) as view:
            text = view[self.cut.run_start : self.cut.run_end]
            return xmlenc.decode_cipher_bytes(text, decoded=decoded)

    def release(self) -> None:
        """Let go of the message's bytes (a bytearray handed to ``open_message`` is emptied)."""
        if isinstance(self.data, bytearray):
            self.data.clear()
        self.data = None
        self.decoded = None


def _parse_envelope(
    data: bytes | bytearray, limits: ParseLimits
) -> tuple[etree._Element, _Message]:
    """The envelope's root: parsed without its large CipherValue text when ``largetext`` can cut
    it out unchanged (the bytes are kept for decoding it), otherwise parsed whole. Either way the
    parser decides on the whole message's markup counts."""
    cut = None
    if len(data) <= limits.max_bytes:
        cut = largetext.cut_ciphertext(data, min_size=_CUT_MIN)
    counted = None
    if cut is not None:
        counted = count_markup(data, limits)
        root = parse_xml(cut.envelope, limits=limits, counted=counted).getroot()
        holder = cut.holder(root)
        if holder is not None:
            decoded = cut.decoded
            cut = replace(cut, decoded=None)  # the message holds it, until used
            return root, _Message(data=data, cut=cut, holder=holder, decoded=decoded)
    cut = None  # with its decode, if any: not used
    whole = bytes(data) if isinstance(data, bytearray) else data
    message = _Message(data=data)
    message.release()
    return parse_xml(whole, limits=limits, counted=counted).getroot(), message


@dataclass(frozen=True, kw_only=True)
class _Header:
    """The header values, their form checked (none of them verified yet)."""

    message_id: str
    relates_to: str | None
    created: datetime
    expires: datetime
    action: str
    from_oin: str
    confirmation: bytes | None


def _check_headers(shape: _Shape, now: datetime, policy: OpenPolicy) -> _Header:
    """Timestamp window and the form of every header value: no cryptography yet."""
    created, expires = _check_timestamp(shape.timestamp, now, policy)
    # Identifiers go into logs and the replay check: their form is checked before any work.
    message_id = _uuid_urn(shape.addressing["MessageID"], "MessageID")
    relates = shape.addressing.get("RelatesTo")
    relates_to = _uuid_urn(relates, "RelatesTo") if relates is not None else None
    _text(shape.addressing["To"], "To")
    confirmation: bytes | None = None
    if shape.confirmation is not None:
        try:
            confirmation = primitives.b64decode(shape.confirmation.get("Value") or "")
        except ValueError:
            raise SecurityHeaderInvalid("SignatureConfirmation Value is not base64") from None
        if not confirmation:
            raise SecurityHeaderInvalid("SignatureConfirmation has no Value")
    return _Header(
        message_id=message_id,
        relates_to=relates_to,
        created=created,
        expires=expires,
        action=_text(shape.addressing["Action"], "Action"),
        from_oin=_from_oin(shape.addressing["From"]),
        confirmation=confirmation,
    )


def _addressed_key(
    shape: _Shape, identities: Sequence[Identity], policy: OpenPolicy
) -> tuple[xmlenc.ParsedEncryptedKey, Identity]:
    """The EncryptedKey (algorithms in the policy, naming the Body's data) and our identity it
    is addressed to: structure only, no RSA operation."""
    ek = xmlenc.parse_encrypted_key(shape.encrypted_key, allowed=policy.key_transports)
    data_id = shape.encrypted_data.get("Id")
    if not data_id or ek.data_ids != (data_id,):
        raise SecurityHeaderInvalid(
            "the EncryptedKey's ReferenceList must name exactly the Body's EncryptedData"
        )
    identity = next((i for i in identities if ek.addresses(i.certificate)), None)
    if identity is None:
        raise NotAddressedToUs("the EncryptedKey is not addressed to any of our certificates")
    return ek, identity


@dataclass(frozen=True, kw_only=True)
class _Signed:
    """The parsed signature and, for each reference, the role of the element it points at."""

    parsed: xmldsig.ParsedSignature
    targets: tuple[tuple[xmldsig.Reference, str, etree._Element], ...]


def _check_signature_structure(shape: _Shape) -> _Signed:
    """Parse ds:Signature and resolve each reference to the one element the profile signs there
    (IDs unique in the envelope; every required part signed once): no digest computed yet."""
    parsed = xmldsig.parse_signature(shape.signature)
    expected: dict[int, str] = {id(shape.body): "Body", id(shape.timestamp): "Timestamp"}
    for name, el in shape.addressing.items():
        expected[id(el)] = name
    if shape.confirmation is not None:
        expected[id(shape.confirmation)] = "SignatureConfirmation"
    optional = {id(shape.token): "BinarySecurityToken"}
    index = _id_index(shape.envelope, by_name=True)
    seen: set[str] = set()
    targets: list[tuple[xmldsig.Reference, str, etree._Element]] = []
    for ref in parsed.references:
        found = index.get(ref.target_id, [])
        if not found:
            raise ReferenceInvalid("a signature reference resolves to no element")
        if len(found) > 1:
            raise DuplicateId(f"the id of a signed part occurs {len(found)} times")
        target = found[0]
        role = expected.get(id(target)) or optional.get(id(target))
        if role is None:
            raise ReferenceInvalid(
                f"a signature reference points at {local_name(target.tag)} outside "
                "the place the profile signs"
            )
        if role in seen:
            raise ReferenceInvalid(f"the {role} is referenced more than once")
        seen.add(role)
        targets.append((ref, role, target))
    missing = sorted(set(expected.values()) - seen)
    if missing:
        raise SignedPartMissing(f"not signed: {', '.join(missing)}")
    token_targets = index.get(parsed.token_id, [])
    if len(token_targets) > 1:
        raise DuplicateId("the id of the signer's token occurs more than once")
    if token_targets != [shape.token]:
        raise SignerTokenInvalid("KeyInfo does not reference the BinarySecurityToken")
    return _Signed(parsed=parsed, targets=tuple(targets))


def _authenticate_signer(
    shape: _Shape, signed: _Signed, header: _Header, trust: TrustConfig, now: datetime
) -> VerifiedCertificate:
    """The signer's certificate path and OIN, then the SignatureValue over SignedInfo: a forged
    or untrusted signature is refused here, before any decryption or digest."""
    signer_cert, signer_key = _token_certificate(shape.token)
    try:
        signer = verify_certificate(signer_cert, trust=trust, now=now, purpose="signing")
    except (CrlMissing, CrlStale, CrlInvalid):
        raise  # our revocation data is the problem, not the signer
    except TrustError as exc:
        raise SignerUntrusted(
            f"signer certificate rejected: {exc.code}: {exc.detail}", cause_code=exc.code
        ) from exc
    xmldsig.verify_value(signed.parsed, signer_key)
    if signer.oin != header.from_oin:
        raise SenderOinMismatch(
            f"wsa:From names OIN {header.from_oin} but the signer certificate carries "
            f"{signer.oin or 'no OIN'} ({signer.fingerprint_sha256})"
        )
    return signer


@dataclass(kw_only=True)
class _Content:
    """The decrypted Body content and what its digest needs."""

    payload: etree._Element
    payload_c14n: bytes
    payload_digest: str
    before: str
    after: str


def _decrypt_body(
    shape: _Shape,
    ek: xmlenc.ParsedEncryptedKey,
    identity: Identity,
    limits: ParseLimits,
    message: _Message,
) -> _Content:
    """Unwrap the key, decrypt the Body content and parse it (untrusted XML, same limits); the
    EncryptedData leaves the Body, which is then digested as if it held the payload.

    At most two buffers of the payload's size live at once: the ciphertext and the plaintext,
    then the plaintext and its tree (whether the plaintext is canonical is checked on a copy
    with its long text runs cut out, ``c14n.is_canonical``; when it is, the digests are computed
    over it).
    """
    cipher_value = xmlenc.cipher_value_of(shape.encrypted_data)
    cipher_text = text_only(cipher_value, "EncryptedData CipherValue")
    cipher_value.text = None
    if message.cut is None:
        raw: bytes | bytearray = xmlenc.decode_cipher_value(cipher_text)
    else:
        raw = message.ciphertext(cipher_value)
    message.release()
    del cipher_text
    plaintext = _unwrap_and_decrypt(ek, identity.private_key, raw)
    del raw
    before_ws, after_ws = _leading_ws(plaintext), _trailing_ws(plaintext)
    try:
        payload_tree = parse_xml(plaintext, limits=limits)
    except (XmlForbiddenConstruct, XmlLimitExceeded):
        raise
    except XmlParseError as exc:
        raise DecryptedContentInvalid(
            f"the decrypted Body content is not one well-formed element ({exc.detail})"
        ) from None
    before = (shape.body.text or "") + plaintext[:before_ws].decode("ascii")
    after = plaintext[len(plaintext) - after_ws :].decode("ascii") + (
        shape.encrypted_data.tail or ""
    )
    payload = payload_tree.getroot()
    stop = len(plaintext) - after_ws

    def parse(document: bytes) -> etree._Element:
        return parse_xml(document, limits=limits).getroot()

    if is_canonical(plaintext, payload, start=before_ws, stop=stop, parse=parse):
        payload_c14n = plaintext if before_ws == after_ws == 0 else plaintext[before_ws:stop]
    else:
        # Another stack serialised the content its own way (or something outside the signature,
        # such as a comment or an unused namespace declaration, was added): hand on exactly what
        # the signature covers, the canonical form.
        payload_c14n = exc_c14n(payload)
        del plaintext, payload_tree, payload
        payload = parse_xml(payload_c14n, limits=limits).getroot()
    shape.body.text = None
    shape.body.remove(shape.encrypted_data)
    return _Content(
        payload=payload,
        payload_c14n=payload_c14n,
        payload_digest=primitives.sha256_hex(payload_c14n),
        before=before,
        after=after,
    )


def _check_digests(shape: _Shape, signed: _Signed, content: _Content) -> None:
    """No ID of a signed part may recur in the payload; then each reference's digest."""
    payload_ids = _id_index(content.payload)
    for ref, _role, _target in signed.targets:
        if ref.target_id in payload_ids:
            raise DuplicateId("the id of a signed part occurs again in the payload")
    if signed.parsed.token_id in payload_ids:
        raise DuplicateId("the id of the signer's token occurs again in the payload")
    for ref, role, target in signed.targets:
        if role == "Body":
            actual = wrapped_c14n_digest(
                shape.body,
                content.payload,
                content.payload_c14n,
                before=content.before,
                after=content.after,
                inclusive_prefixes=ref.inclusive_prefixes,
            )
        else:
            actual = primitives.sha256(exc_c14n(target, inclusive_prefixes=ref.inclusive_prefixes))
        if not xmldsig.digests_equal(actual, ref.digest):
            raise DigestMismatch(f"the digest of the signed {role} does not match")
