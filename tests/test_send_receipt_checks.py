"""What a receipt must confirm beyond the signature: the school we addressed, and a SignatureValue
we really sent (every attempt's is kept in the store; REVIEW-6)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from gateway_pair import RECEIVER_OIN, RECEIVER_SCHOOL, GatewayPair, identity
from lxml import etree

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.security.wss import open_message, seal
from oso_gateway.store import models as m
from oso_gateway.transfer import wire
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import (
    Expected,
    ReceiptMismatch,
    TransportResponse,
    new_message_id,
    prepare_dossier,
    verify_receipt,
)


def _request_and_receipt(pair: GatewayPair, receiver: School) -> tuple[bytes, Expected]:
    """A sealed request to the receiver and its genuinely sealed receipt naming ``receiver``."""
    dossier = etree.fromstring(generate_dossier(overstap="POVO", seed=2, now=pair.clock()))
    request = seal(
        dossier,
        sender=pair.sender_config.identity,
        recipient_certificate=identity(RECEIVER_OIN).certificate,
        to="https://gw2.test/oso/v1/messages",
        action=wire.ACTION_DELIVER,
        message_id=new_message_id(),
        now=pair.clock(),
    )
    opened = open_message(
        request.data,
        identities=(identity(RECEIVER_OIN),),
        trust=pair.sender_config.trust,
        now=pair.clock(),
    )
    payload = wire.build_receipt(
        wire.Receipt(
            request_message_id=opened.message_id,
            status="imported",
            received_at=pair.clock(),
            payload_digest=opened.payload_digest,
            payload_bytes=1,
            receiver_brin=receiver.brin,
            receiver_vestiging=receiver.vestiging,
        )
    )
    receipt = seal(
        payload,
        sender=identity(RECEIVER_OIN),
        recipient_certificate=pair.sender_config.identity.certificate,
        to="http://www.w3.org/2005/08/addressing/anonymous?oin=" + pair.sender_config.identity.oin,
        action=wire.ACTION_RECEIPT,
        message_id=new_message_id(),
        now=pair.clock(),
        relates_to=opened.message_id,
        signature_confirmation=opened.signature_value,
    ).data
    expected = Expected(
        message_id=opened.message_id,
        signature_value=opened.signature_value,
        payload_digest=opened.payload_digest,
        recipient_oin=RECEIVER_OIN,
        recipient_school=RECEIVER_SCHOOL,
    )
    return receipt, expected


def test_a_receipt_naming_another_receiving_school_is_refused(pair: GatewayPair) -> None:
    other = School("02CD", "00")
    receipt, expected = _request_and_receipt(pair, receiver=other)
    with pytest.raises(ReceiptMismatch, match="receiver school"):
        verify_receipt(receipt, expected=expected, config=pair.sender_config, now=pair.clock())
    # control: the same receipt confirms a message addressed to that school
    confirmed, _ = verify_receipt(
        receipt,
        expected=replace(expected, recipient_school=other),
        config=pair.sender_config,
        now=pair.clock(),
    )
    assert (confirmed.receiver_brin, confirmed.receiver_vestiging) == ("02CD", "00")


def test_a_receipt_confirming_an_earlier_attempt_is_accepted_only_if_we_sent_it(
    pair: GatewayPair,
) -> None:
    receipt, expected = _request_and_receipt(pair, receiver=RECEIVER_SCHOOL)
    ours = expected.signature_value
    later = replace(expected, signature_value=b"a later attempt's value", resealed=True)
    with pytest.raises(ReceiptMismatch):
        verify_receipt(receipt, expected=later, config=pair.sender_config, now=pair.clock())
    accepted = replace(later, earlier_signature_values=frozenset({ours}))
    verify_receipt(receipt, expected=accepted, config=pair.sender_config, now=pair.clock())


def test_the_store_keeps_the_signature_value_of_every_envelope_sent(pair: GatewayPair) -> None:
    prepared = prepare_dossier(
        generate_dossier(overstap="POVO", seed=4, now=pair.clock()),
        to=RECEIVER_SCHOOL,
        directory=pair.directory,
        config=pair.sender_config,
        now=pair.clock(),
    )
    pair.outbox.enqueue(prepared)
    sent: list[bytes] = []

    def lose_answer(url: str, data: bytes, answer: TransportResponse) -> TransportResponse:
        sent.append(data)
        return TransportResponse(status=503, body=b"")

    pair.transport.intercept = lose_answer
    for pause in (timedelta(minutes=1), timedelta(minutes=10), timedelta(0)):
        assert pair.outbox.run_once().retrying == 1
        pair.clock.advance(pause)  # attempt 2 re-sends the valid envelope, attempt 3 reseals
    record = pair.sender_store.find_message(m.OUT, prepared.message_id)
    assert record is not None and record.attempts == 3
    assert sent[0] == sent[1] != sent[2]
    first, latest = prepared.sealed.signature_value, record.signature_value
    assert latest is not None and latest != first
    assert record.sent_signature_values == {first, latest}
