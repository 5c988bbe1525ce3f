"""The receive path dispatches on wsa:Action to one handler per message kind; the outbox sends any
kind. A new kind is one handler + one registration: nothing in the receive path changes."""

from __future__ import annotations

from gateway_pair import (
    RECEIVER_OIN,
    RECEIVER_SCHOOL,
    SENDER_SCHOOL,
    GatewayPair,
    identity,
)
from lxml import etree

from oso_gateway.security.wss import seal
from oso_gateway.store import models as m
from oso_gateway.transfer import wire
from oso_gateway.transfer.handlers import Accepted, Inbound, default_handlers
from oso_gateway.transfer.send import new_message_id, prepare_message

ACTION_PING = "urn:oso-gateway:action:test:ping:1"


class Ping:
    """A kind that carries no dossier: it only records that it was seen."""

    action = ACTION_PING

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def accept(self, message: Inbound) -> Accepted:
        text = message.opened.payload.findtext("value") or ""
        if text == "refuse":
            from oso_gateway.errors import RequestPayloadInvalid

            raise RequestPayloadInvalid("the test kind refuses this value")
        payload = etree.tostring(message.opened.payload)
        return Accepted(
            counterpart_school=SENDER_SCHOOL,
            payload=payload,
            persist=lambda _session, record: self.seen.append((record.message_id, text)),
        )


def _ping(value: str) -> etree._Element:
    root = etree.Element("ping")
    etree.SubElement(root, "value").text = value
    return root


def _register(pair: GatewayPair) -> Ping:
    ping = Ping()
    pair.receiver.handlers = {**default_handlers(), ping.action: ping}
    return ping


def test_a_registered_kind_travels_through_the_outbox_and_gets_a_verified_receipt(
    pair: GatewayPair,
) -> None:
    ping = _register(pair)
    prepared = prepare_message(
        _ping("hello"),
        action=ACTION_PING,
        sending=SENDER_SCHOOL,
        to=RECEIVER_SCHOOL,
        directory=pair.directory,
        config=pair.sender_config,
        now=pair.clock(),
    )
    pair.outbox.enqueue(prepared)
    record = pair.outbox.wait_for(prepared.message_id, timeout=10)
    assert record.status == m.DELIVERED and record.action == ACTION_PING
    assert ping.seen == [(prepared.message_id, "hello")]
    inbound = pair.receiver_store.find_message(m.IN, prepared.message_id)
    assert inbound is not None and inbound.status == m.IMPORTED and inbound.action == ACTION_PING
    assert pair.receiver_store.find_dossiers() == []  # a kind without a dossier imports none


def test_a_kind_refusing_its_message_stores_nothing_and_answers_its_code(
    pair: GatewayPair,
) -> None:
    ping = _register(pair)
    sealed = _sealed(pair, _ping("refuse"), ACTION_PING)
    result = pair.receiver.handle(sealed)
    fault = wire.parse_fault(result.body)
    assert fault is not None and fault.remote_code == "OSO-E475"
    assert ping.seen == []


def test_an_action_without_a_registered_handler_is_refused(pair: GatewayPair) -> None:
    result = pair.receiver.handle(_sealed(pair, _ping("x"), ACTION_PING))
    fault = wire.parse_fault(result.body)
    assert fault is not None and fault.remote_code == "OSO-E452"


def test_a_receipt_posted_as_a_message_is_refused(pair: GatewayPair) -> None:
    result = pair.receiver.handle(_sealed(pair, _ping("x"), wire.ACTION_RECEIPT))
    fault = wire.parse_fault(result.body)
    assert fault is not None and fault.remote_code == "OSO-E452"


def test_the_default_kinds_are_delivery_receipt_request_and_answer() -> None:
    assert wire.ACTION_DELIVER in default_handlers()
    assert wire.ACTION_RECEIPT in default_handlers()


def _sealed(pair: GatewayPair, payload: etree._Element, action: str) -> bytes:
    return seal(
        payload,
        sender=pair.sender_config.identity,
        recipient_certificate=identity(RECEIVER_OIN).certificate,
        to="https://gw2.test/oso/v1/messages",
        action=action,
        message_id=new_message_id(),
        now=pair.clock(),
    ).data
