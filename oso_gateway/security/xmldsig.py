"""XML Signature, narrowed to the profile: exclusive C14N, RSA-SHA256, SHA-256, same-document
references by ``#id`` with one exclusive-C14N transform, and a WS-Security token reference
as KeyInfo.

Building (``build_signature`` + ``sign``) and the strict parse of a received ``ds:Signature``
(``parse_signature``) live here; which element each reference may point at is the WS-Security
layer's business (``wss``).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from oso_gateway.errors import (
    DigestAlgorithmRejected,
    ReferenceInvalid,
    SecurityHeaderInvalid,
    SignatureAlgorithmRejected,
    SignatureInvalid,
    SignerTokenInvalid,
    TooManyReferences,
    TooManyTransforms,
    TransformRejected,
)
from oso_gateway.security import primitives
from oso_gateway.security.c14n import exc_c14n
from oso_gateway.security.namespaces import (
    C14N_EXCL,
    DIGEST_SHA1,
    DIGEST_SHA256,
    DS,
    EC,
    SIG_HMAC_SHA1,
    SIG_HMAC_SHA256,
    SIG_RSA_SHA1,
    SIG_RSA_SHA256,
    VALUE_X509V3,
    WSSE,
    q,
)

_WEAK_SIGNATURES = {SIG_RSA_SHA1, SIG_HMAC_SHA1, SIG_HMAC_SHA256}

#: The profile signs at most nine parts (Body, Timestamp, five WS-Addressing headers,
#: SignatureConfirmation, the token): more References are refused before any is parsed.
MAX_REFERENCES = 16
#: The profile allows one Transform per Reference; more are refused before any is read.
MAX_TRANSFORMS = 4


def _sub(parent: etree._Element, ns: str, local: str, **attrib: str) -> etree._Element:
    return etree.SubElement(parent, q(ns, local), attrib)


def elements(parent: etree._Element) -> list[etree._Element]:
    """Element children (comments, processing instructions and entities skipped, in libxml2)."""
    return list(parent.iterchildren(etree.Element))


def text_only(el: etree._Element, what: str) -> str:
    """The whole text of an element that must hold text only; E204 for any child node.

    ``el.text`` stops at the first child, and exclusive C14N drops comments: a comment inside a
    signed value would keep its digest valid while ``.text`` yields only the part before it.
    ``len(el)`` counts comments and processing instructions as well as elements.
    """
    if len(el):
        raise SecurityHeaderInvalid(f"{what} must hold text only (no elements or comments)")
    return el.text or ""


def build_signature(
    parent: etree._Element,
    *,
    references: Sequence[tuple[str, bytes]],
    token_id: str,
) -> etree._Element:
    """Append an unsigned ``ds:Signature`` to ``parent``: one Reference per (id, sha256 digest)."""
    sig = _sub(parent, DS, "Signature")
    info = _sub(sig, DS, "SignedInfo")
    _sub(info, DS, "CanonicalizationMethod", Algorithm=C14N_EXCL)
    _sub(info, DS, "SignatureMethod", Algorithm=SIG_RSA_SHA256)
    for ref_id, digest in references:
        ref = _sub(info, DS, "Reference", URI="#" + ref_id)
        transforms = _sub(ref, DS, "Transforms")
        _sub(transforms, DS, "Transform", Algorithm=C14N_EXCL)
        _sub(ref, DS, "DigestMethod", Algorithm=DIGEST_SHA256)
        _sub(ref, DS, "DigestValue").text = primitives.b64encode(digest).decode("ascii")
    _sub(sig, DS, "SignatureValue")
    key_info = _sub(sig, DS, "KeyInfo")
    str_ = _sub(key_info, WSSE, "SecurityTokenReference")
    _sub(str_, WSSE, "Reference", URI="#" + token_id, ValueType=VALUE_X509V3)
    return sig


def sign(signature: etree._Element, key: rsa.RSAPrivateKey) -> bytes:
    """Compute and fill in the SignatureValue (the Signature must sit in its final document)."""
    info = signature.find(q(DS, "SignedInfo"))
    value = signature.find(q(DS, "SignatureValue"))
    if info is None or value is None:
        raise ValueError("not a signature built by build_signature")
    raw = primitives.rsa_sha256_sign(key, exc_c14n(info))
    value.text = primitives.b64encode(raw).decode("ascii")
    return raw


# --- parsing a received signature -------------------------------------------------------------

#: the Clark names the parser compares against (built once, not per element)
_DS_CANONICALIZATION_METHOD = q(DS, "CanonicalizationMethod")
_DS_DIGEST_METHOD = q(DS, "DigestMethod")
_DS_DIGEST_VALUE = q(DS, "DigestValue")
_DS_KEY_INFO = q(DS, "KeyInfo")
_DS_REFERENCE = q(DS, "Reference")
_DS_SIGNATURE_METHOD = q(DS, "SignatureMethod")
_DS_SIGNATURE_VALUE = q(DS, "SignatureValue")
_DS_SIGNED_INFO = q(DS, "SignedInfo")
_DS_TRANSFORM = q(DS, "Transform")
_DS_TRANSFORMS = q(DS, "Transforms")
_EC_INCLUSIVE_NAMESPACES = q(EC, "InclusiveNamespaces")
_WSSE_REFERENCE = q(WSSE, "Reference")
_WSSE_SECURITY_TOKEN_REFERENCE = q(WSSE, "SecurityTokenReference")


@dataclass(frozen=True, kw_only=True)
class Reference:
    target_id: str
    digest: bytes
    inclusive_prefixes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ParsedSignature:
    signed_info: etree._Element
    inclusive_prefixes: tuple[str, ...]
    references: tuple[Reference, ...]
    signature_value: bytes
    token_id: str


def _alg(el: etree._Element | None, what: str) -> str:
    if el is None:
        raise SecurityHeaderInvalid(f"{what} is missing")
    alg = el.get("Algorithm")
    if not alg:
        raise SecurityHeaderInvalid(f"{what} has no Algorithm")
    return alg


def _c14n_method(el: etree._Element, what: str) -> tuple[str, ...]:
    """Check an exclusive-C14N method/transform; return its InclusiveNamespaces prefixes."""
    alg = _alg(el, what)
    if alg != C14N_EXCL:
        raise TransformRejected(f"{what} {alg} is not exclusive C14N without comments")
    if not len(el):  # no child node at all (the usual case: no walk of the children)
        return ()
    children = elements(el)
    if not children:
        return ()
    if len(children) != 1 or children[0].tag != _EC_INCLUSIVE_NAMESPACES:
        raise TransformRejected(f"{what} has unexpected parameters")
    return tuple((children[0].get("PrefixList") or "").split())


def _b64(el: etree._Element, what: str) -> bytes:
    try:
        return primitives.b64decode(text_only(el, what))
    except ValueError:
        raise SecurityHeaderInvalid(f"{what} is not valid base64") from None


#: a plain same-document reference: "#" and an id without space, parentheses (so no
#: ``xpointer(...)``), quotes or another "#"
_PLAIN_ID = re.compile("#([^ ()'\"#]+)")


def _same_document_id(uri: str | None) -> str:
    if not uri or not uri.startswith("#") or len(uri) < 2:
        raise ReferenceInvalid(f"reference URI {_show(uri)} is not a same-document #id reference")
    plain = _PLAIN_ID.fullmatch(uri)
    if plain is None:
        raise ReferenceInvalid(f"reference URI {_show(uri)} is not a plain #id reference")
    return plain.group(1)


def _show(value: str | None, limit: int = 80) -> str:
    """A peer-supplied value, bounded and printable, for our log (IDs and URIs only)."""
    if value is None:
        return "(none)"
    text = "".join(ch if ch.isprintable() else "?" for ch in value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def parse_signature(sig: etree._Element) -> ParsedSignature:
    """Strictly parse a ``ds:Signature``; raise a typed error for anything outside the profile."""
    kids = elements(sig)
    names = [k.tag for k in kids]
    if names != [_DS_SIGNED_INFO, _DS_SIGNATURE_VALUE, _DS_KEY_INFO]:
        raise SecurityHeaderInvalid(
            "ds:Signature must hold exactly SignedInfo, SignatureValue, KeyInfo"
        )
    info, value_el, key_info = kids
    info_kids = elements(info)
    if len(info_kids) < 3:
        raise SecurityHeaderInvalid("ds:SignedInfo is incomplete")
    c14n_el, method_el, *ref_els = info_kids
    if len(ref_els) > MAX_REFERENCES:
        raise TooManyReferences(f"{len(ref_els)} references (at most {MAX_REFERENCES})")
    if c14n_el.tag != _DS_CANONICALIZATION_METHOD or method_el.tag != _DS_SIGNATURE_METHOD:
        raise SecurityHeaderInvalid("ds:SignedInfo children are out of order")
    inclusive = _c14n_method(c14n_el, "CanonicalizationMethod")
    method = _alg(method_el, "SignatureMethod")
    if method != SIG_RSA_SHA256:
        kind = "a downgraded" if method in _WEAK_SIGNATURES else "an unsupported"
        raise SignatureAlgorithmRejected(f"{kind} signature algorithm {_show(method)}")
    if elements(method_el):
        raise SignatureAlgorithmRejected("SignatureMethod parameters are not allowed")
    references = tuple(_parse_reference(r) for r in ref_els)
    signature_value = _b64(value_el, "SignatureValue")
    if not signature_value:
        raise SignatureInvalid("SignatureValue is empty")
    return ParsedSignature(
        signed_info=info,
        inclusive_prefixes=inclusive,
        references=references,
        signature_value=signature_value,
        token_id=_token_reference(key_info),
    )


def _parse_reference(ref: etree._Element) -> Reference:
    if ref.tag != _DS_REFERENCE:
        raise SecurityHeaderInvalid("ds:SignedInfo holds something other than ds:Reference")
    if ref.get("Type") not in (None, ""):
        raise ReferenceInvalid("typed references are not part of the profile")
    target = _same_document_id(ref.get("URI"))
    kids = elements(ref)
    if [k.tag for k in kids] != [
        _DS_TRANSFORMS,
        _DS_DIGEST_METHOD,
        _DS_DIGEST_VALUE,
    ]:
        raise TransformRejected(
            "a ds:Reference must hold Transforms (one exclusive C14N), DigestMethod, DigestValue"
        )
    transforms, method_el, value_el = kids
    transform_list = elements(transforms)
    if len(transform_list) > MAX_TRANSFORMS:
        raise TooManyTransforms(f"{len(transform_list)} transforms (at most {MAX_TRANSFORMS})")
    if len(transform_list) != 1 or transform_list[0].tag != _DS_TRANSFORM:
        raise TransformRejected("a ds:Reference must have exactly one transform")
    inclusive = _c14n_method(transform_list[0], "Transform")
    method = _alg(method_el, "DigestMethod")
    if method != DIGEST_SHA256:
        kind = "a downgraded" if method == DIGEST_SHA1 else "an unsupported"
        raise DigestAlgorithmRejected(f"{kind} digest algorithm {_show(method)}")
    digest = _b64(value_el, "DigestValue")
    if len(digest) != 32:
        raise SecurityHeaderInvalid("DigestValue is not 32 bytes")
    return Reference(target_id=target, digest=digest, inclusive_prefixes=inclusive)


def _token_reference(key_info: etree._Element) -> str:
    kids = elements(key_info)
    if len(kids) != 1 or kids[0].tag != _WSSE_SECURITY_TOKEN_REFERENCE:
        raise SignerTokenInvalid("KeyInfo must hold one wsse:SecurityTokenReference")
    refs = elements(kids[0])
    if len(refs) != 1 or refs[0].tag != _WSSE_REFERENCE:
        raise SignerTokenInvalid("the SecurityTokenReference must hold one wsse:Reference")
    if refs[0].get("ValueType") != VALUE_X509V3:
        raise SignerTokenInvalid("the token reference's ValueType is not X509v3")
    uri = refs[0].get("URI")
    if not uri or not uri.startswith("#") or len(uri) < 2:
        raise SignerTokenInvalid("the token reference is not a same-document #id reference")
    return uri[1:]


def digests_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def verify_value(parsed: ParsedSignature, key: rsa.RSAPublicKey) -> None:
    """Verify RSA-SHA256 over exc-C14N(SignedInfo) in its document; raise ``SignatureInvalid``."""
    data = exc_c14n(parsed.signed_info, inclusive_prefixes=parsed.inclusive_prefixes)
    if not primitives.rsa_sha256_verify(key, parsed.signature_value, data):
        raise SignatureInvalid("the SignatureValue does not verify with the signer's key")
