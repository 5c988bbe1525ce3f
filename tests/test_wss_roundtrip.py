"""Seal by school 1, open by school 2: the payload arrives intact and everything is verified."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from _wss_support import (
    ACTION,
    ENDPOINT2,
    OIN1,
    OIN2,
    OIN3,
    dev_now,
    dev_trust,
    identity,
    policy,
    sample_payload,
    seal_1_to_2,
)
from conftest import official_examples
from lxml import etree

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.security import primitives
from oso_gateway.security.c14n import exc_c14n
from oso_gateway.security.namespaces import KT_RSA_OAEP, KT_RSA_OAEP_MGF1P
from oso_gateway.security.wss import OpenedMessage, open_message
from oso_gateway.security.xmlparse import parse_xml


def _open(data: bytes, **kw: object) -> OpenedMessage:
    args: dict[str, object] = {
        "identities": [identity(OIN2)],
        "trust": dev_trust(),
        "policy": policy(),
        "now": dev_now(),
    }
    args.update(kw)
    return open_message(data, **args)  # type: ignore[arg-type]


def _assert_same_payload(sent: etree._Element, opened: OpenedMessage, digest: str) -> None:
    assert exc_c14n(opened.payload) == exc_c14n(sent)
    assert opened.payload_digest == digest == primitives.sha256_hex(exc_c14n(sent))
    assert opened.payload.getparent() is None


@pytest.mark.parametrize("key_transport", [KT_RSA_OAEP, KT_RSA_OAEP_MGF1P])
def test_small_payload_round_trips_with_each_key_transport(key_transport: str) -> None:
    payload = sample_payload()
    sealed = seal_1_to_2(payload, key_transport=key_transport)
    assert key_transport.encode() in sealed.data
    assert b"Jansen" not in sealed.data  # the Body content travels encrypted
    opened = _open(sealed.data)
    _assert_same_payload(payload, opened, sealed.payload_digest)
    assert opened.from_oin == OIN1
    assert opened.signer.oin == OIN1
    assert opened.recipient_oin == OIN2
    assert opened.to == ENDPOINT2
    assert opened.action == ACTION
    assert opened.message_id == sealed.message_id
    assert opened.relates_to is None
    assert opened.signature_confirmation is None
    assert opened.signature_value == sealed.signature_value
    assert opened.expires - opened.created == timedelta(minutes=5)


def test_recipient_named_by_issuer_and_serial_round_trips() -> None:
    payload = sample_payload()
    sealed = seal_1_to_2(payload, recipient_reference="issuer_serial")
    assert b"X509IssuerSerial" in sealed.data
    _assert_same_payload(payload, _open(sealed.data), sealed.payload_digest)


@pytest.mark.parametrize(
    "xml",
    [
        b"<a/>",
        b"<x:a xmlns:x='urn:x' x:attr='1'><x:b>text</x:b><!--comment--></x:a>",
        # the payload uses the same namespaces as the envelope's Body start tag
        b"<soap:Fault xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'"
        b" xmlns:wsu='http://docs.oasis-open.org/wss/2004/01/"
        b"oasis-200401-wss-wssecurity-utility-1.0.xsd' wsu:Id='inner'><x>1</x></soap:Fault>",
        b"<r xmlns='urn:d' xmlns:unused='urn:u' xml:lang='nl'>"
        b"\n  <c a='&amp;&lt;'>\xc3\xa9</c>\n</r>",
    ],
)
def test_synthetic_elements_round_trip(xml: bytes) -> None:
    payload = parse_xml(xml).getroot()
    sealed = seal_1_to_2(payload)
    _assert_same_payload(payload, _open(sealed.data), sealed.payload_digest)


def test_payload_that_is_a_subelement_of_a_larger_document_round_trips() -> None:
    doc = parse_xml(b"<outer xmlns:p='urn:p'><p:inner p:x='1'><leaf/></p:inner><after/></outer>")
    payload = doc.getroot()[0]
    sealed = seal_1_to_2(payload)
    opened = _open(sealed.data)
    _assert_same_payload(payload, opened, sealed.payload_digest)
    assert etree.QName(opened.payload).localname == "inner"


@pytest.mark.parametrize("path", official_examples(), ids=lambda p: p.name)
def test_official_example_dossiers_round_trip(examples_dir: Path, path: Path) -> None:
    payload = parse_xml(path.read_bytes()).getroot()
    sealed = seal_1_to_2(payload)
    _assert_same_payload(payload, _open(sealed.data), sealed.payload_digest)


def test_generated_dossier_with_attachments_round_trips() -> None:
    data = generate_dossier(overstap="POVO", seed=7, now=dev_now(), attachments_kb=64)
    payload = parse_xml(data).getroot()
    sealed = seal_1_to_2(payload)
    _assert_same_payload(payload, _open(sealed.data), sealed.payload_digest)


def test_receipt_with_signature_confirmation_round_trips() -> None:
    request = seal_1_to_2(sample_payload())
    receipt_payload = parse_xml(b"<ontvangstbevestiging xmlns='urn:oso:receipt'/>").getroot()
    receipt = seal_1_to_2(
        receipt_payload,
        sender=identity(OIN2),
        recipient_certificate=identity(OIN1).certificate,
        to="https://gateway1.example/oso",
        action="urn:oso:receipt",
        message_id="urn:uuid:00000000-0000-4000-8000-000000000002",
        relates_to=request.message_id,
        signature_confirmation=request.signature_value,
    )
    assert b"SignatureConfirmation" in receipt.data
    opened = _open(
        receipt.data,
        identities=[identity(OIN1)],
        policy=policy(expected_to="https://gateway1.example/oso"),
    )
    assert opened.relates_to == request.message_id
    assert opened.signature_confirmation == request.signature_value
    assert opened.from_oin == OIN2
    _assert_same_payload(receipt_payload, opened, receipt.payload_digest)


def test_identity_rollover_key_addressed_to_the_second_identity() -> None:
    payload = sample_payload()
    # the receiving gateway holds two identities; the sender encrypted to the second one
    sealed = seal_1_to_2(payload, recipient_certificate=identity(OIN2).certificate)
    opened = _open(sealed.data, identities=[identity(OIN3), identity(OIN2)])
    assert opened.recipient_oin == OIN2
    _assert_same_payload(payload, opened, sealed.payload_digest)


def test_each_seal_uses_a_fresh_content_key_and_iv() -> None:
    payload = sample_payload()
    a = seal_1_to_2(payload).data
    b = seal_1_to_2(payload).data
    cipher = b"<xenc:CipherValue>"
    assert a.split(cipher)[2][:40] != b.split(cipher)[2][:40]
