"""The receive service answers and records even a failure it did not expect (REVIEW-2)."""

from __future__ import annotations

from datetime import datetime

import pytest
from gateway_pair import RECEIVER_OIN, GatewayPair, identity
from lxml import etree
from sqlalchemy import select

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.errors import GatewayError, RecipientUnknown
from oso_gateway.security.wss import seal
from oso_gateway.store import models as m
from oso_gateway.transfer import wire
from oso_gateway.transfer.schools import split_address
from oso_gateway.transfer.send import new_message_id


def _sealed(pair: GatewayPair, message_id: str) -> bytes:
    dossier = etree.fromstring(generate_dossier(overstap="POVO", seed=5, now=pair.clock()))
    return seal(
        dossier,
        sender=pair.sender_config.identity,
        recipient_certificate=identity(RECEIVER_OIN).certificate,
        to="https://gw2.test/oso/v1/messages",
        action=wire.ACTION_DELIVER,
        message_id=message_id,
        now=pair.clock(),
    ).data


def test_an_unexpected_exception_is_answered_as_a_transient_fault_and_recorded(
    pair: GatewayPair,
) -> None:
    def broken_validator(payload: etree._Element, now: datetime) -> None:
        raise RuntimeError("a bug in a dependency")

    pair.receiver.validator = broken_validator
    message_id = new_message_id()
    result = pair.receiver.handle(_sealed(pair, message_id))
    assert result.http_status == 500
    fault = wire.parse_fault(result.body)
    assert fault is not None and fault.remote_code == "OSO-E457" and fault.remote_transient
    with pair.receiver_store.engine.connect() as connection:
        rows = connection.execute(
            select(m.Message.status, m.Message.last_error_code).where(
                m.Message.direction == m.IN, m.Message.message_id == message_id
            )
        ).all()
    assert [tuple(row) for row in rows] == [(m.REJECTED, "OSO-E457")]


@pytest.mark.parametrize("to", ["https://[gw2.test/oso", "https://gw2.test]/x", "http://[::1"])
def test_an_address_that_is_not_a_url_names_no_school_we_serve(to: str) -> None:
    with pytest.raises(GatewayError) as info:
        split_address(to)
    assert isinstance(info.value, RecipientUnknown) and info.value.code == "OSO-E453"
