"""Independent security review of the WS-Security core, the receive path and the TLS server.

Two kinds of tests live here:

* regression tests for attacks the code already withstands (they pass);
* one test per weakness found, written to assert the SAFE behaviour and marked
  ``xfail(strict=True, reason="REVIEW-n: …")`` until the production code is fixed (when a fix
  lands the xfail turns into an unexpected pass and the marker must be removed).

Messages are built the way an attacker (or a sloppy peer) could: from a genuine sealed message,
edited; where an edit must survive the signature, it is re-signed with the genuine sender's dev
key (``Msg.resign``), i.e. the "attacker" is a trusted gateway signing its own message.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import logging
import os
import socket
import ssl
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from _wss_support import (
    ENDPOINT2,
    OIN1,
    OIN2,
    OIN3,
    dev_now,
    dev_trust,
    identity,
    policy,
    seal_1_to_2,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from gateway_pair import (
    RECEIVER_OIN,
    RECEIVER_SCHOOL,
    RECEIVER_URL,
    VENDOR_OIN,
    GatewayPair,
    with_sending_school,
)
from gateway_pair import identity as pair_identity
from lxml import etree
from test_attacks_wss import Msg, _marked

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.errors import GatewayError, OinInvalid
from oso_gateway.security import xmlenc
from oso_gateway.security.c14n import exc_c14n
from oso_gateway.security.namespaces import (
    DS,
    KT_RSA_OAEP,
    KT_RSA_OAEP_MGF1P,
    SOAP,
    WSA,
    WSSE11,
    WSU,
    XENC,
    q,
)
from oso_gateway.security.trust import oin_of
from oso_gateway.security.wss import OpenedMessage, open_message, seal
from oso_gateway.store import models as m
from oso_gateway.transfer import wire
from oso_gateway.transfer.receive import ReceiveResult
from oso_gateway.transfer.send import Expected, ReceiptMismatch, new_message_id, verify_receipt

WSU_ID = q(WSU, "Id")
_UTF8 = _ASN1Type.UTF8String
DEV = Path(__file__).resolve().parent.parent / "certs" / "dev"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
C14N_EXCL_WITH_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"


# --- helpers ----------------------------------------------------------------------------------


def _open(data: bytes, **overrides: Any) -> OpenedMessage:
    args: dict[str, Any] = {
        "identities": [identity(OIN2)],
        "trust": dev_trust(),
        "policy": policy(),
        "now": dev_now(),
    }
    args.update(overrides)
    return open_message(data, **args)


def _code(data: bytes, **overrides: Any) -> str:
    with pytest.raises(GatewayError) as info:
        _open(data, **overrides)
    return info.value.code


def _sealed(**kw: Any) -> Msg:
    return Msg(seal_1_to_2(_marked(), **kw).data)


def _redigest(m: Msg, el: etree._Element) -> None:
    """Recompute the Reference digest of the (edited) signed ``el`` and re-sign as OIN1."""
    ref = m.reference_to(el)
    value = ref.find(q(DS, "DigestValue"))
    assert value is not None
    value.text = base64.b64encode(hashlib.sha256(exc_c14n(el)).digest()).decode()
    m.resign()


def _split_text_with_comment(el: etree._Element, at: int) -> str:
    """Put a comment into ``el``'s text at ``at`` (exclusive C14N ignores it); return the text."""
    full = el.text or ""
    el.text = full[:at]
    comment = etree.Comment(" not covered by the signature ")
    comment.tail = full[at:]
    el.append(comment)
    return full


def _pair_seal(
    pair: GatewayPair,
    *,
    seed: int = 1,
    to: str = RECEIVER_URL,
    message_id: str | None = None,
    sender_oin: str | None = None,
    dossier: etree._Element | None = None,
) -> bytes:
    if dossier is None:
        dossier = etree.fromstring(generate_dossier(overstap="POVO", seed=seed, now=pair.clock()))
    sender = pair_identity(sender_oin) if sender_oin else pair.sender_config.identity
    return seal(
        dossier,
        sender=sender,
        recipient_certificate=pair_identity(RECEIVER_OIN).certificate,
        to=to,
        action=wire.ACTION_DELIVER,
        message_id=message_id or new_message_id(),
        now=pair.clock(),
    ).data


def _content_key_for_receiver(m: Msg) -> bytes:
    parsed = xmlenc.parse_encrypted_key(
        m.one("//xenc:EncryptedKey"), allowed=frozenset({KT_RSA_OAEP, KT_RSA_OAEP_MGF1P})
    )
    return xmlenc.unwrap_key(parsed, pair_identity(RECEIVER_OIN).private_key)


def _open_as_receiver(data: bytes, pair: GatewayPair) -> OpenedMessage:
    return open_message(
        data,
        identities=(pair_identity(RECEIVER_OIN),),
        trust=pair.sender_config.trust,
        now=pair.clock(),
    )


def _receipt_for(
    request: bytes,
    pair: GatewayPair,
    *,
    received_at: str | None = None,
    confirmation: bytes | None = None,
) -> bytes:
    """A genuinely sealed receipt of the receiver for ``request`` (optionally odd ReceivedAt)."""
    opened = _open_as_receiver(request, pair)
    payload = wire.build_receipt(
        wire.Receipt(
            request_message_id=opened.message_id,
            status="imported",
            received_at=pair.clock(),
            payload_digest=opened.payload_digest,
            payload_bytes=1,
            receiver_brin="01AB",
            receiver_vestiging="00",
        )
    )
    if received_at is not None:
        element = payload.find("{urn:oso-gateway:transfer:1}ReceivedAt")
        assert element is not None
        element.text = received_at  # a valid xs:dateTime Python's fromisoformat refuses
    return seal(
        payload,
        sender=pair_identity(RECEIVER_OIN),
        recipient_certificate=pair.sender_config.identity.certificate,
        to="http://www.w3.org/2005/08/addressing/anonymous?oin=" + pair.sender_config.identity.oin,
        action=wire.ACTION_RECEIPT,
        message_id=new_message_id(),
        now=pair.clock(),
        relates_to=opened.message_id,
        signature_confirmation=confirmation or opened.signature_value,
    ).data


def _fault_code(result: ReceiveResult) -> str:
    fault = wire.parse_fault(result.body)
    assert fault is not None, result.body[:200]
    return fault.remote_code


# =============================================================================================
# Signature wrapping and references: regression tests (the code is safe here)
# =============================================================================================


@pytest.mark.parametrize(
    "uri",
    ["", "#", "#xpointer(/)", "#xpointer(id('To'))", "https://evil.example/x#To", "To"],
)
def test_reference_uri_other_than_a_plain_same_document_id_is_refused(uri: str) -> None:
    m = _sealed()
    m.reference_to(m.one("//wsa:To")).set("URI", uri)
    m.resign()
    assert _code(m.bytes()) == "OSO-E215"


@pytest.mark.parametrize("algorithm", [XSLT, C14N_EXCL_WITH_COMMENTS])
def test_xslt_or_with_comments_transform_is_refused(algorithm: str) -> None:
    m = _sealed()
    transform = m.reference_to(m.one("//wsa:Action")).find(
        f"{q(DS, 'Transforms')}/{q(DS, 'Transform')}"
    )
    assert transform is not None
    transform.set("Algorithm", algorithm)
    m.resign()
    assert _code(m.bytes()) == "OSO-E226"


def test_comments_canonicalisation_of_signed_info_is_refused() -> None:
    m = _sealed()
    m.one("//ds:CanonicalizationMethod").set("Algorithm", C14N_EXCL_WITH_COMMENTS)
    m.resign()
    assert _code(m.bytes()) == "OSO-E226"


@pytest.mark.parametrize(
    "attribute", ["Id", "ID", "id", q("http://www.w3.org/XML/1998/namespace", "id")]
)
def test_decoy_carrying_a_signed_id_in_any_id_attribute_is_a_duplicate(attribute: str) -> None:
    m = _sealed()
    to = m.one("//wsa:To")
    decoy = etree.SubElement(m.header, "{urn:evil}Routing")
    decoy.set(attribute, to.get(WSU_ID) or "")
    decoy.text = "https://evil.example/"
    assert _code(m.bytes()) == "OSO-E217"


def test_id_attribute_in_a_foreign_namespace_is_not_an_id_and_changes_nothing() -> None:
    m = _sealed()
    to = m.one("//wsa:To")
    decoy = etree.SubElement(m.header, "{urn:evil}Routing")
    decoy.set("{urn:evil}Id", to.get(WSU_ID) or "")
    decoy.text = "https://evil.example/"
    opened = _open(m.bytes())
    assert opened.to == ENDPOINT2


def test_unsigned_second_wsa_to_is_refused_whichever_comes_first() -> None:
    for first in (True, False):
        m = _sealed()
        to = m.one("//wsa:To")
        forged = etree.Element(q(WSA, "To"))
        forged.text = "https://evil.example/"
        (to.addprevious if first else to.addnext)(forged)
        assert _code(m.bytes()) == "OSO-E204"


def test_second_body_is_refused() -> None:
    m = _sealed()
    m.root.append(copy.deepcopy(m.body))
    assert _code(m.bytes()) == "OSO-E204"


def test_token_swapped_for_another_trusted_certificate_fails_the_signature() -> None:
    m = _sealed()
    der = identity(OIN3).certificate.public_bytes(serialization.Encoding.DER)
    m.one("//wsse:BinarySecurityToken").text = base64.b64encode(der).decode()
    assert _code(m.bytes()) == "OSO-E213"


def test_second_binary_security_token_is_refused() -> None:
    m = _sealed()
    token = m.one("//wsse:BinarySecurityToken")
    extra = copy.deepcopy(token)
    extra.set(WSU_ID, "X509-other")
    token.addnext(extra)
    assert _code(m.bytes()) == "OSO-E204"


def test_unsigned_signature_confirmation_injected_into_a_request_is_refused() -> None:
    m = _sealed()
    confirmation = etree.SubElement(m.security, q(WSSE11, "SignatureConfirmation"))
    confirmation.set(WSU_ID, "SC-injected")
    confirmation.set("Value", base64.b64encode(b"x" * 384).decode())
    assert _code(m.bytes()) == "OSO-E216"


def test_signature_over_a_body_whose_content_was_swapped_for_an_older_ciphertext_fails() -> None:
    """Cut-and-paste: the Body content of another genuine message under this signature."""
    m = _sealed()
    other = _sealed(message_id="urn:uuid:00000000-0000-4000-8000-000000000001")
    m.root.replace(m.body, copy.deepcopy(other.body))
    m.one("//xenc:EncryptedKey").getparent().replace(  # type: ignore[union-attr]
        m.one("//xenc:EncryptedKey"), copy.deepcopy(other.one("//xenc:EncryptedKey"))
    )
    assert _code(m.bytes()) in {"OSO-E214", "OSO-E215", "OSO-E217"}


# =============================================================================================
# Encryption structure: regression tests
# =============================================================================================


def test_cipher_reference_instead_of_an_inline_cipher_value_is_refused() -> None:
    m = _sealed()
    cipher_data = m.one("/soap:Envelope/soap:Body/xenc:EncryptedData/xenc:CipherData")
    for child in list(cipher_data):
        cipher_data.remove(child)
    etree.SubElement(cipher_data, q(XENC, "CipherReference"), URI="https://evil.example/c")
    assert _code(m.bytes()) == "OSO-E204"


def test_data_reference_naming_another_element_is_refused() -> None:
    m = _sealed()
    m.one("//xenc:EncryptedKey/xenc:ReferenceList/xenc:DataReference").set(
        "URI", "#" + (m.one("//wsu:Timestamp").get(WSU_ID) or "")
    )
    assert _code(m.bytes()) == "OSO-E204"


def test_encrypted_data_key_info_pointing_elsewhere_is_ignored_and_fetches_nothing() -> None:
    """The content key comes only from the header EncryptedKey that names this EncryptedData."""
    m = _sealed()
    data = m.one("/soap:Envelope/soap:Body/xenc:EncryptedData")
    key_info = etree.Element(q(DS, "KeyInfo"))
    etree.SubElement(key_info, q(DS, "RetrievalMethod"), URI="https://evil.example/key")
    data[0].addnext(key_info)
    opened = _open(m.bytes())
    assert opened.to == ENDPOINT2


def test_each_seal_uses_a_fresh_iv_and_content_key() -> None:
    a, b = _sealed(), _sealed()
    assert a.ciphertext()[:12] != b.ciphertext()[:12]
    assert a.content_key() != b.content_key()


# =============================================================================================
# Timestamp: regression tests
# =============================================================================================


def _set_timestamp(m: Msg, created: str, expires: str) -> None:
    ts = m.one("//wsu:Timestamp")
    ts[0].text, ts[1].text = created, expires
    _redigest(m, ts)


def test_timestamp_without_a_time_zone_is_refused() -> None:
    m = _sealed()
    now = dev_now()
    _set_timestamp(
        m,
        now.strftime("%Y-%m-%dT%H:%M:%S"),
        (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S"),
    )
    assert _code(m.bytes()) == "OSO-E204"


def test_timestamp_in_another_time_zone_means_the_same_instant() -> None:
    m = _sealed()
    from datetime import timezone

    zone = timezone(timedelta(hours=5, minutes=30))
    now = dev_now().astimezone(zone)
    fmt = "%Y-%m-%dT%H:%M:%S+05:30"
    _set_timestamp(m, now.strftime(fmt), (now + timedelta(minutes=5)).strftime(fmt))
    opened = _open(m.bytes())
    assert opened.created == dev_now().replace(microsecond=0)


def test_expires_before_created_is_refused() -> None:
    m = _sealed()
    now = dev_now()
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    _set_timestamp(m, now.strftime(fmt), (now - timedelta(minutes=1)).strftime(fmt))
    assert _code(m.bytes()) == "OSO-E204"


# =============================================================================================
# OIN binding: regression tests
# =============================================================================================


@pytest.mark.parametrize(
    "oin",
    [
        "0000000100000000000001",
        "0000001000000000001",
        "０００００００１００００００００００００１",
        "1e19",
    ],
)
def test_from_address_oin_must_be_exactly_the_twenty_digit_string(oin: str) -> None:
    m = _sealed()
    address = m.one("//wsa:From/wsa:Address")
    address.text = "http://www.w3.org/2005/08/addressing/anonymous?oin=" + oin
    _redigest(m, m.one("//wsa:From"))
    assert _code(m.bytes()) in {"OSO-E204", "OSO-E222"}


def _cert_with_subject(attrs: list[x509.NameAttribute]) -> x509.Certificate:
    key = identity(OIN1).private_key  # any key: only the subject matters here
    name = x509.Name(attrs)
    now = dev_now()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    "values",
    [[OIN1, OIN2], [" " + OIN1], ["０" * 20], [OIN1 + "0"]],
)
def test_oin_must_be_one_plain_twenty_digit_serial_number(values: list[str]) -> None:
    cert = _cert_with_subject(
        [x509.NameAttribute(NameOID.COMMON_NAME, "x")]
        + [x509.NameAttribute(NameOID.SERIAL_NUMBER, v, _type=_UTF8) for v in values]
    )
    with pytest.raises(OinInvalid):
        oin_of(cert)


# =============================================================================================
# REVIEW-1: signed wsa header values are read with ``el.text``, which stops at a comment
# =============================================================================================


def test_comment_inside_the_signed_to_cannot_shorten_it_to_the_expected_endpoint() -> None:
    # The genuine sender addressed another endpoint that merely starts with ours.
    m = _sealed(to=ENDPOINT2 + "-archive/other-school")
    _split_text_with_comment(m.one("//wsa:To"), len(ENDPOINT2))
    # refused as a comment inside a signed header (never read short as ENDPOINT2)
    assert _code(m.bytes()) == "OSO-E204"


@pytest.mark.parametrize("header", ["MessageID", "Action"])
def test_comment_inside_a_signed_header_never_yields_a_value_the_signer_did_not_sign(
    header: str,
) -> None:
    m = _sealed()
    el = m.one(f"//wsa:{header}")
    _split_text_with_comment(el, len(el.text or "") - 4)
    # The signer signed the whole value; a comment splitting it is refused, never read short.
    assert _code(m.bytes()) == "OSO-E204"


# =============================================================================================
# REVIEW-2: peer input that escapes open_message as an untyped exception
# =============================================================================================


def _token_with_broken_key(kind: str) -> bytes:
    der = identity(OIN1).certificate.public_bytes(serialization.Encoding.DER)
    rsa_oid = bytes.fromhex("06092A864886F70D010101")
    assert der.count(rsa_oid) == 1
    if kind == "unknown-algorithm":
        return der.replace(rsa_oid, bytes.fromhex("06092A864886F70D010163"))
    start = der.index(bytes.fromhex("0282018100"), der.index(rsa_oid))
    return der[:start] + bytes.fromhex("0282018180") + der[start + 5 :]  # negative modulus


def _broken_message(kind: str) -> bytes:
    if kind == "issuer-serial-superscript-digit":
        m = _sealed(recipient_reference="issuer_serial")
        m.one("//xenc:EncryptedKey//ds:X509SerialNumber").text = "\u00b2"
        return m.bytes()
    m = _sealed()
    m.one("//wsse:BinarySecurityToken").text = base64.b64encode(
        _token_with_broken_key(kind)
    ).decode()
    return m.bytes()


@pytest.mark.parametrize(
    "kind", ["unknown-algorithm", "undecodable-rsa-key", "issuer-serial-superscript-digit"]
)
def test_malformed_token_or_recipient_reference_is_a_typed_rejection(kind: str) -> None:
    data = _broken_message(kind)
    try:
        _open(data)
    except GatewayError as exc:
        assert exc.code.startswith("OSO-E2")
    else:  # pragma: no cover - it must not open
        pytest.fail("the message opened")


def test_unparseable_wsa_to_is_answered_with_a_client_fault_and_recorded(
    pair: GatewayPair,
) -> None:
    data = _pair_seal(pair, to="https://[gw2.test/oso/v1/messages")
    result = pair.receiver.handle(data)
    assert 400 <= result.http_status < 500
    assert _fault_code(result).startswith("OSO-E")


# =============================================================================================
# REVIEW-3: the wire code tells the peer whether RSA-OAEP unwrapping succeeded
# =============================================================================================


def _with_garbage_key(m: Msg) -> None:
    value = m.one("//xenc:EncryptedKey/xenc:CipherData/xenc:CipherValue")
    value.text = base64.b64encode(os.urandom(384)).decode()


@pytest.mark.parametrize("defect", ["cbc", "short"])
def test_fault_code_does_not_reveal_whether_the_key_unwrapped(defect: str) -> None:
    codes = []
    for garbage_key in (False, True):
        m = _sealed()
        if defect == "cbc":
            m.reencrypt(m.plaintext(), cbc=True)
        else:
            m.set_ciphertext(m.ciphertext()[:20])
        if garbage_key:
            _with_garbage_key(m)
        codes.append(_code(m.bytes()))
    assert codes[0] == codes[1], codes


# =============================================================================================
# REVIEW-4: MessageID is not checked as urn:uuid on receipt; newline reaches the log
# =============================================================================================


def test_message_id_that_is_not_a_urn_uuid_is_refused_up_front_and_not_logged_raw(
    pair: GatewayPair, caplog: pytest.LogCaptureFixture
) -> None:
    validated: list[bytes] = []

    def spy(data: bytes, now: object) -> None:
        validated.append(data)

    pair.receiver.validator = spy
    data = _pair_seal(pair, message_id="urn:uuid:1\n2026-11-30 ERROR forged log line")
    with caplog.at_level(logging.INFO, logger="oso_gateway"):
        result = pair.receiver.handle(data)
    assert result.http_status != 200
    assert _fault_code(result).startswith("OSO-E2")  # a header error, not "receipt invalid"
    assert not validated, "the dossier was processed before the MessageID was checked"
    assert "\n2026-11-30 ERROR forged" not in caplog.text


# =============================================================================================
# REVIEW-5: MessageID uniqueness is global, not per signer
# =============================================================================================


def test_a_message_id_taken_by_another_gateway_does_not_block_the_genuine_sender(
    pair: GatewayPair,
) -> None:
    message_id = new_message_id()
    vendor_dossier = etree.fromstring(
        with_sending_school(generate_dossier(overstap="POVO", seed=7, now=pair.clock()), "03EF")
    )
    squat = _pair_seal(pair, message_id=message_id, sender_oin=VENDOR_OIN, dossier=vendor_dossier)
    assert pair.receiver.handle(squat).http_status == 200
    genuine = pair.receiver.handle(_pair_seal(pair, seed=8, message_id=message_id))
    assert genuine.http_status == 200 and not genuine.duplicate, _fault_code(genuine)


def test_replayed_message_with_a_forged_payload_does_not_get_the_original_receipt(
    pair: GatewayPair,
) -> None:
    """Duplicate detection runs only after full verification."""
    data = _pair_seal(pair)
    assert pair.receiver.handle(data).http_status == 200
    m = Msg(data)
    key = _content_key_for_receiver(m)
    raw = m.ciphertext()
    plain = AESGCM(key).decrypt(raw[:12], raw[12:], None)
    iv = os.urandom(12)
    m.set_ciphertext(iv + AESGCM(key).encrypt(iv, plain.replace(b"</", b"<x/></", 1), None))
    result = pair.receiver.handle(m.bytes())
    assert result.http_status != 200
    assert _fault_code(result).startswith("OSO-E2")


# =============================================================================================
# REVIEW-6: a resealed transfer accepts a receipt confirming ANY SignatureValue
# =============================================================================================


def test_receipt_confirming_a_signature_we_never_made_is_refused_after_a_reseal(
    pair: GatewayPair,
) -> None:
    data = _pair_seal(pair)
    opened = _open_as_receiver(data, pair)
    receipt = _receipt_for(data, pair, confirmation=b"never a signature of ours")
    expected = Expected(
        message_id=opened.message_id,
        signature_value=opened.signature_value,
        payload_digest=opened.payload_digest,
        recipient_oin=RECEIVER_OIN,
        resealed=True,
    )
    with pytest.raises(ReceiptMismatch):
        verify_receipt(receipt, expected=expected, config=pair.sender_config, now=pair.clock())
    # control: without the reseal flag the same receipt is refused today already
    with pytest.raises(ReceiptMismatch):
        verify_receipt(
            receipt,
            expected=replace(expected, resealed=False),
            config=pair.sender_config,
            now=pair.clock(),
        )


@pytest.mark.parametrize("oddity", ["hour-24", "year-10000", "token-key-undecodable"])
def test_odd_receipt_from_a_peer_does_not_crash_the_outbox(pair: GatewayPair, oddity: str) -> None:
    from oso_gateway.transfer.send import TransportResponse, prepare_dossier

    def odd_receipt(url: str, data: bytes, answer: TransportResponse) -> TransportResponse:
        if oddity == "token-key-undecodable":
            m = Msg(_receipt_for(data, pair))
            token = m.one("//wsse:BinarySecurityToken")
            token.text = base64.b64encode(_token_with_broken_key("undecodable-rsa-key")).decode()
            return TransportResponse(status=200, body=m.bytes())
        received_at = "2026-11-30T24:00:00Z" if oddity == "hour-24" else "10000-01-01T00:00:00Z"
        return TransportResponse(status=200, body=_receipt_for(data, pair, received_at=received_at))

    pair.transport.intercept = odd_receipt
    prepared = prepare_dossier(
        generate_dossier(overstap="POVO", seed=3, now=pair.clock()),
        to=RECEIVER_SCHOOL,
        directory=pair.directory,
        config=pair.sender_config,
        now=pair.clock(),
    )
    pair.outbox.enqueue(prepared)
    stats = pair.outbox.run_once()  # must return, not raise
    assert stats.attempts == 1
    record = pair.sender_store.find_message(m.OUT, prepared.message_id)
    assert record is not None and record.status != m.DELIVERED
    assert record.last_error_code is not None


def test_genuine_receipt_built_by_the_review_helper_is_accepted(pair: GatewayPair) -> None:
    """Control for REVIEW-6/9: the helper's receipts are otherwise valid."""
    data = _pair_seal(pair)
    opened = _open_as_receiver(data, pair)
    receipt, _ = verify_receipt(
        _receipt_for(data, pair),
        expected=Expected(
            message_id=opened.message_id,
            signature_value=opened.signature_value,
            payload_digest=opened.payload_digest,
            recipient_oin=RECEIVER_OIN,
        ),
        config=pair.sender_config,
        now=pair.clock(),
    )
    assert receipt.request_message_id == opened.message_id


# =============================================================================================
# REVIEW-7: the exclusive-C14N fast path splits the Body start tag at the first '>'
# =============================================================================================


def test_body_attribute_containing_a_greater_than_sign_verifies() -> None:
    from _wss_support import decrypted_envelope

    sealed = seal_1_to_2(_marked())
    plain = decrypted_envelope(sealed.data)
    plain_body = plain.find(q(SOAP, "Body"))
    assert plain_body is not None
    plain_body.set("note", "a>b")
    digest = hashlib.sha256(exc_c14n(plain_body)).digest()
    m = Msg(sealed.data)
    m.body.set("note", "a>b")
    ref = m.reference_to(m.body).find(q(DS, "DigestValue"))
    assert ref is not None
    ref.text = base64.b64encode(digest).decode()
    m.resign()
    assert _open(m.bytes()).to == ENDPOINT2


# =============================================================================================
# REVIEW-10: no bound on the number of nodes: ~35x memory amplification while parsing
# =============================================================================================


def test_a_flood_of_tiny_elements_in_an_ignored_header_is_refused_as_over_the_limits() -> None:
    sealed = seal_1_to_2(_marked()).data
    flood = b"<f:Flood xmlns:f='urn:flood'>" + b"<a/>" * 1_000_000 + b"</f:Flood>"
    data = sealed.replace(b"</soap:Header>", flood + b"</soap:Header>", 1)
    assert flood in data and len(data) < 5 * 1024 * 1024  # far below every byte limit
    with pytest.raises(GatewayError) as info:
        _open(data)
    assert info.value.code == "OSO-E236"


# =============================================================================================
# HTTP layer: limits and TLS
# =============================================================================================


def test_chunked_request_over_the_limit_is_refused_with_413(tmp_path: Path) -> None:
    from oso_gateway.runtime import build_services
    from oso_gateway.transfer.demo import SECONDARY_OIN, setup_dev_gateways
    from oso_gateway.web import create_app

    gateways = setup_dev_gateways(tmp_path)
    services = build_services(gateways[SECONDARY_OIN].settings)
    try:
        app = create_app(gateways[SECONDARY_OIN].settings, services=services)
        app.config["MAX_CONTENT_LENGTH"] = 4096
        response = app.test_client().post(
            "/oso/v1/messages",
            input_stream=io.BytesIO(b"<a>" + b"x" * 10_000 + b"</a>"),
            content_type="text/xml; charset=utf-8",
            environ_overrides={"wsgi.input_terminated": True},
        )
        assert response.status_code == 413
        fault = wire.parse_fault(response.data)
        assert fault is not None and fault.remote_code == "OSO-E455"
    finally:
        services.close()


def test_server_tls_context_requires_tls12_and_a_client_certificate() -> None:
    from oso_gateway.server import server_ssl_context

    context = server_ssl_context(
        cert_file=DEV / "tls-localhost.crt.pem",
        key_file=DEV / "tls-localhost.key.pem",
        client_ca_files=[DEV / "ca-bundle.pem"],
        crl_files=[DEV / "issuing-ca.crl.pem"],
    )
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF
    ciphers = {c["name"] for c in context.get_ciphers()}
    assert not any(name.endswith("-SHA") or "RC4" in name or "3DES" in name for name in ciphers)


def _hello_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\n"]


@pytest.mark.integration
def test_an_idle_tcp_connection_does_not_stall_other_clients() -> None:
    from oso_gateway.server import server_ssl_context, start_in_thread

    cert, key = DEV / "tls-localhost.crt.pem", DEV / "tls-localhost.key.pem"
    context = server_ssl_context(
        cert_file=cert, key_file=key, client_ca_files=[DEV / "ca-bundle.pem"]
    )
    running = start_in_thread(
        _hello_app, context=context, cert_file=cert, key_file=key, timeout=30.0
    )
    port = int(running.url.rsplit(":", 1)[1])
    client_cert = (str(DEV / f"gateway-{OIN1}.crt.pem"), str(DEV / f"gateway-{OIN1}.key.pem"))
    verify = str(DEV / "ca-bundle.pem")
    try:
        # control: the server answers
        ok = requests.get(running.url + "/", cert=client_cert, verify=verify, timeout=10)
        assert ok.status_code == 200
        idle = socket.create_connection(("127.0.0.1", port))  # connects, never says hello
        try:
            answer = requests.get(running.url + "/", cert=client_cert, verify=verify, timeout=5)
            assert answer.status_code == 200
        finally:
            idle.close()
    finally:
        running.stop()
