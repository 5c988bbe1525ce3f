"""A large dossier through the SOAP endpoint (Flask test client, real SQLite): its ciphertext is
read from the request body (not parsed into the envelope), it is verified and imported exactly
once, stored whole, and a tampered copy is refused with the right code and stores nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.runtime import build_services
from oso_gateway.security import c14n
from oso_gateway.store import models as m
from oso_gateway.transfer import wire
from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN, DevGateway
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import seal_attempt
from oso_gateway.transfer.services import GatewayServices
from oso_gateway.web import create_app

XML = "text/xml; charset=utf-8"
#: a dossier with 3 MiB of attachments: the cut of the ciphertext and the blob write both apply
ATTACHMENTS_KB = 3072


@pytest.fixture
def client(gateways: dict[str, DevGateway], services: GatewayServices) -> FlaskClient:
    app: Flask = create_app(gateways[SECONDARY_OIN].settings, services=services)
    return app.test_client()


@pytest.fixture
def dossier() -> bytes:
    return generate_dossier(
        overstap="POVO", seed=23, now=datetime.now(UTC), attachments_kb=ATTACHMENTS_KB
    )


def _seal(gateways: dict[str, DevGateway], dossier: bytes, message_id: str) -> bytes:
    sender = build_services(gateways[PRIMARY_OIN].settings)
    try:
        return seal_attempt(
            dossier,
            message_id=message_id,
            to=School("01AB", "00"),
            directory=sender.directory,
            config=sender.sender_config,
            now=datetime.now(UTC),
        ).data
    finally:
        sender.close()


def _inbound_rows(services: GatewayServices) -> tuple[int, int]:
    with services.store.engine.connect() as connection:
        messages = connection.scalar(
            select(func.count()).select_from(m.Message).where(m.Message.direction == m.IN)
        )
        dossiers = connection.scalar(select(func.count()).select_from(m.Dossier))
    return int(messages or 0), int(dossiers or 0)


def test_a_large_dossier_is_verified_imported_once_and_stored_whole(
    client: FlaskClient,
    gateways: dict[str, DevGateway],
    services: GatewayServices,
    dossier: bytes,
) -> None:
    sealed = _seal(gateways, dossier, "urn:uuid:0c6a4b8e-1d2f-4e3a-9b5c-7d8e9f0a1b2c")
    assert len(sealed) > 4 * 1024 * 1024
    first = client.post("/oso/v1/messages", data=sealed, content_type=XML)
    assert first.status_code == 200, first.data[:300]
    again = client.post("/oso/v1/messages", data=sealed, content_type=XML)
    assert again.status_code == 200 and again.data == first.data  # the original receipt
    assert _inbound_rows(services) == (1, 1)
    (summary,) = services.store.find_dossiers()
    stored = services.store.load_dossier(summary.dossier_id)
    expected = c14n.exc_c14n(etree.fromstring(dossier))
    assert c14n.exc_c14n(etree.fromstring(stored)) == expected
    assert summary.pupil.family_name  # the searchable fields were read before the tree went


def _flip_in_ciphertext(sealed: bytes) -> bytes:
    match = re.search(rb"<xenc:CipherValue>([^<]{1000000,})</xenc:CipherValue>", sealed)
    assert match is not None
    middle = (match.start(1) + match.end(1)) // 2
    flipped = b"A" if sealed[middle : middle + 1] != b"A" else b"B"
    return sealed[:middle] + flipped + sealed[middle + 1 :]


def test_a_large_dossier_with_one_ciphertext_byte_changed_is_refused_and_nothing_stored(
    client: FlaskClient,
    gateways: dict[str, DevGateway],
    services: GatewayServices,
    dossier: bytes,
) -> None:
    sealed = _seal(gateways, dossier, "urn:uuid:1d7b5c9f-2e3a-4f4b-8c6d-8e9fa0b1c2d3")
    response = client.post("/oso/v1/messages", data=_flip_in_ciphertext(sealed), content_type=XML)
    fault = wire.parse_fault(response.data)
    assert fault is not None and fault.remote_code == "OSO-E210"
    assert _inbound_rows(services) == (0, 0)  # nothing imported (the log records the refusal)
    # the MessageID stays free: the intact message is imported afterwards
    assert client.post("/oso/v1/messages", data=sealed, content_type=XML).status_code == 200
    assert _inbound_rows(services)[1] == 1
