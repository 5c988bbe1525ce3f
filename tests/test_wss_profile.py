"""The message profile details: element order we write, orders we accept, seal's own checks."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import datetime

import pytest
from _wss_support import (
    DEV,
    OIN1,
    OIN2,
    OIN3,
    decrypted_envelope,
    dev_now,
    dev_trust,
    identity,
    policy,
    sample_payload,
)
from _wss_support import seal_1_to_2 as seal_msg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from oso_gateway.errors import CrlMissing, GatewayError, SealError
from oso_gateway.security import wss, xmlenc
from oso_gateway.security.c14n import exc_c14n
from oso_gateway.security.namespaces import DS, EC, KT_RSA_OAEP, SOAP, WSA, WSSE, WSU, XENC, q
from oso_gateway.security.trust import TrustConfig
from oso_gateway.security.wss import Identity, from_address, open_message


def _open(data: bytes) -> bytes:
    opened = open_message(
        data, identities=[identity(OIN2)], trust=dev_trust(), policy=policy(), now=dev_now()
    )
    return exc_c14n(opened.payload)


def test_security_children_are_written_in_profile_order() -> None:
    root = etree.fromstring(seal_msg(sample_payload()).data)
    security = root.find(f"{q(SOAP, 'Header')}/{q(WSSE, 'Security')}")
    assert security is not None
    assert security.get(q(SOAP, "mustUnderstand")) == "1"
    assert [c.tag for c in security] == [
        q(WSU, "Timestamp"),
        q(WSSE, "BinarySecurityToken"),
        q(XENC, "EncryptedKey"),
        q(DS, "Signature"),
    ]
    address = root.find(f".//{q(WSA, 'From')}/{q(WSA, 'Address')}")
    assert address is not None and address.text == from_address(OIN1)
    assert address.text.endswith("anonymous?oin=" + OIN1)


def test_prepended_security_children_in_reverse_order_are_accepted() -> None:
    payload = sample_payload()
    root = etree.fromstring(seal_msg(payload).data)
    security = root.find(f"{q(SOAP, 'Header')}/{q(WSSE, 'Security')}")
    assert security is not None
    children = list(security)
    for child in children:
        security.remove(child)
    for child in reversed(children):  # EncryptedKey-first/Timestamp-last stacks
        security.append(child)
    assert _open(etree.tostring(root)) == exc_c14n(payload)


def test_unknown_optional_header_block_is_ignored_but_must_understand_one_is_refused() -> None:
    payload = sample_payload()
    root = etree.fromstring(seal_msg(payload).data)
    header = root[0]
    extra = etree.SubElement(header, "{urn:vendor}Trace")
    extra.text = "hop-1"
    assert _open(etree.tostring(root)) == exc_c14n(payload)
    extra.set(q(SOAP, "mustUnderstand"), "1")
    with pytest.raises(GatewayError) as info:
        _open(etree.tostring(root))
    assert info.value.code == "OSO-E204"


def test_pretty_printed_envelope_still_verifies() -> None:
    """Whitespace between header elements is outside every signed part."""
    payload = sample_payload()
    root = etree.fromstring(seal_msg(payload).data)
    header = root[0]
    header.text = "\n  "
    for child in header:
        child.tail = "\n  "
    security = header.find(q(WSSE, "Security"))
    assert security is not None
    for child in security:
        child.tail = "\n    "
    assert _open(etree.tostring(root)) == exc_c14n(payload)


def test_seal_refuses_a_private_key_that_does_not_match_the_certificate() -> None:
    mixed = Identity(
        oin=OIN1, private_key=identity(OIN3).private_key, certificate=identity(OIN1).certificate
    )
    with pytest.raises(SealError) as info:
        seal_msg(sample_payload(), sender=mixed)
    assert info.value.code == "OSO-E227"


@pytest.mark.parametrize(
    "overrides",
    [
        {"now": datetime(2026, 1, 1)},  # naive
        {"to": ""},
        {"key_transport": "http://www.w3.org/2001/04/xmlenc#rsa-1_5"},
    ],
    ids=["naive-now", "empty-to", "rsa-1_5"],
)
def test_seal_refuses_unusable_arguments(overrides: dict[str, object]) -> None:
    with pytest.raises(SealError):
        seal_msg(sample_payload(), **overrides)


def test_inclusive_namespace_prefix_lists_as_wss4j_writes_them_are_honoured() -> None:
    """WSS4J adds ec:InclusiveNamespaces PrefixList to the C14N method and each transform."""
    payload = sample_payload()
    data = seal_msg(payload).data
    plain = decrypted_envelope(data)
    root = etree.fromstring(data)
    prefixes = "wsse soap"
    targets = {el.get(q(WSU, "Id")): el for el in plain.iter() if el.get(q(WSU, "Id"))}
    info = root.find(f".//{q(DS, 'SignedInfo')}")
    assert info is not None
    etree.SubElement(info[0], q(EC, "InclusiveNamespaces"), PrefixList=prefixes)
    for ref in info.iter(q(DS, "Reference")):
        transform = ref.find(f"{q(DS, 'Transforms')}/{q(DS, 'Transform')}")
        assert transform is not None
        etree.SubElement(transform, q(EC, "InclusiveNamespaces"), PrefixList=prefixes)
        target = targets[(ref.get("URI") or "#")[1:]]
        canonical = exc_c14n(target, inclusive_prefixes=prefixes.split())
        digest_value = ref.find(q(DS, "DigestValue"))
        assert digest_value is not None
        digest_value.text = base64.b64encode(hashlib.sha256(canonical).digest()).decode()
    signed_info_c14n = exc_c14n(info, inclusive_prefixes=prefixes.split())
    value = identity(OIN1).private_key.sign(signed_info_c14n, padding.PKCS1v15(), hashes.SHA256())
    signature_value = root.find(f".//{q(DS, 'SignatureValue')}")
    assert signature_value is not None
    signature_value.text = base64.b64encode(value).decode()
    assert b"xmlns:soap" in exc_c14n(info, inclusive_prefixes=["soap"])  # the list matters
    assert _open(etree.tostring(root)) == exc_c14n(payload)


def test_content_outside_the_signature_never_reaches_the_caller() -> None:
    """Exclusive C14N ignores comments and unused namespace declarations, so an attacker who
    re-encrypts the genuine content (anyone can encrypt to us) may add them without breaking the
    signature. open_message hands on only the canonical form, which is what was signed."""
    payload = sample_payload()
    root = etree.fromstring(seal_msg(payload).data)
    plain = decrypted_envelope(etree.tostring(root))
    content = etree.tostring(plain.find(q(SOAP, "Body"))[0])  # type: ignore[index]
    doctored = content.replace(b"<leerling>", b"<leerling><!-- injected -->", 1)
    doctored = doctored.replace(b"<dossier ", b'<dossier xmlns:evil="urn:evil" ', 1)
    doctored = b"<!-- before -->" + doctored
    assert doctored != content
    key = os.urandom(32)
    iv = os.urandom(12)
    cipher_value = root.find(f"{q(SOAP, 'Body')}/{q(XENC, 'EncryptedData')}")[-1][0]  # type: ignore[index]
    cipher_value.text = base64.b64encode(iv + AESGCM(key).encrypt(iv, doctored, None)).decode()
    old = root.find(f".//{q(XENC, 'EncryptedKey')}")
    assert old is not None
    new = xmlenc.build_encrypted_key(
        key_id="EK-1",
        recipient=identity(OIN2).certificate,
        content_key=key,
        data_ids=(root.find(f"{q(SOAP, 'Body')}/{q(XENC, 'EncryptedData')}").get("Id") or "",),  # type: ignore[union-attr]
        key_transport=KT_RSA_OAEP,
    )
    old.getparent().replace(old, new)  # type: ignore[union-attr]
    opened = open_message(
        etree.tostring(root),
        identities=[identity(OIN2)],
        trust=dev_trust(),
        policy=policy(),
        now=dev_now(),
    )
    delivered = etree.tostring(opened.payload)
    assert b"injected" not in delivered and b"before" not in delivered
    assert b"urn:evil" not in delivered
    assert exc_c14n(opened.payload) == exc_c14n(payload)


def test_missing_crl_is_our_problem_and_passes_through_unwrapped() -> None:
    """A missing CRL is not the signer's fault: it stays OSO-E305 (transient), not E221."""
    without_crls = TrustConfig.from_pem(
        anchors=[(DEV / "root-ca.crt.pem").read_bytes()],
        intermediates=[(DEV / "issuing-ca.crt.pem").read_bytes()],
    )
    with pytest.raises(CrlMissing) as info:
        open_message(
            seal_msg(sample_payload()).data,
            identities=[identity(OIN2)],
            trust=without_crls,
            policy=policy(),
            now=dev_now(),
        )
    assert info.value.code == "OSO-E305"
    assert info.value.transient


def test_the_signer_certificate_is_kept_by_its_exact_bytes_and_a_failure_is_not() -> None:
    one = identity(OIN1).certificate.public_bytes(Encoding.DER)
    other = identity(OIN2).certificate.public_bytes(Encoding.DER)
    first, _key = wss._load_certificate(one)
    assert wss._load_certificate(bytes(one))[0] is first  # equal bytes, another object: kept
    assert wss._load_certificate(other)[0].serial_number != first.serial_number
    broken = one[:-1] + bytes([one[-1] ^ 1])  # one bit off: another key, parsed afresh
    assert wss._load_certificate(broken)[0] is not first
    before = wss._load_certificate.cache_info().currsize
    for _ in range(2):
        with pytest.raises(ValueError):
            wss._load_certificate(b"\x30\x03\x02\x01\x00")
    assert wss._load_certificate.cache_info().currsize == before
