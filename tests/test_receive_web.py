"""The Flask app (``create_app``): SOAP endpoint, limits, probes — through Flask's test client."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.runtime import build_services
from oso_gateway.security.xmlparse import parse_xml
from oso_gateway.store import Store, create_store_engine
from oso_gateway.transfer import wire
from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN, DevGateway
from oso_gateway.transfer.schools import School, address_for
from oso_gateway.transfer.send import seal_attempt
from oso_gateway.transfer.services import GatewayServices
from oso_gateway.web import create_app

XML = "text/xml; charset=utf-8"


@pytest.fixture
def app(gateways: dict[str, DevGateway], services: GatewayServices) -> Flask:
    return create_app(gateways[SECONDARY_OIN].settings, services=services)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _code(body: bytes) -> str:
    fault = wire.parse_fault(body)
    assert fault is not None, body[:200]
    return fault.remote_code


def test_health_probe_answers_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readiness_is_ok_with_database_keys_and_fresh_crls(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json


def test_readiness_fails_with_reasons_but_no_secrets_when_the_database_is_down(
    gateways: dict[str, DevGateway], services: GatewayServices
) -> None:
    down = Store(create_store_engine("postgresql://nobody:hunter2@127.0.0.1:9/none"), None)
    app = create_app(
        gateways[SECONDARY_OIN].settings, services=dataclasses.replace(services, store=down)
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    assert any("database" in reason for reason in response.json["reasons"])
    assert b"hunter2" not in response.data


def test_sealed_dossier_posted_to_the_endpoint_gets_a_sealed_receipt(
    client: FlaskClient, gateways: dict[str, DevGateway], services: GatewayServices
) -> None:
    sender = build_services(gateways[PRIMARY_OIN].settings)
    try:
        now = datetime.now(UTC)
        sealed = seal_attempt(
            generate_dossier(overstap="POVO", seed=11, now=now),
            message_id="urn:uuid:6b1f0f1e-5f7e-4a51-9a53-6c3a1e2d4f00",
            to=School("01AB", "00"),
            directory=sender.directory,
            config=sender.sender_config,
            now=now,
        )
    finally:
        sender.close()
    response = client.post("/oso/v1/messages", data=sealed.data, content_type=XML)
    assert response.status_code == 200, response.data[:300]
    assert response.content_type == XML
    root = parse_xml(response.data).getroot()
    assert root.tag == f"{{{wire.SOAP_NS}}}Envelope"
    assert address_for(gateways[SECONDARY_OIN].url, School("01AB", "00")).endswith("school=01AB00")


def test_request_that_is_not_text_xml_gets_a_415_fault(client: FlaskClient) -> None:
    response = client.post("/oso/v1/messages", data=b"{}", content_type="application/json")
    assert response.status_code == 415
    assert _code(response.data) == "OSO-E456"


def test_request_over_the_size_limit_gets_a_413_fault(
    gateways: dict[str, DevGateway], services: GatewayServices
) -> None:
    settings = gateways[SECONDARY_OIN].settings
    small = dataclasses.replace(
        settings, limits=dataclasses.replace(settings.limits, max_request_bytes=1024)
    )
    client = create_app(small, services=services).test_client()
    response = client.post(
        "/oso/v1/messages", data=b"<x>" + b"a" * 4096 + b"</x>", content_type=XML
    )
    assert response.status_code == 413
    assert _code(response.data) == "OSO-E455"


def test_garbage_body_gets_a_client_fault_and_no_detail(client: FlaskClient) -> None:
    response = client.post("/oso/v1/messages", data=b"<a><b></a>", content_type=XML)
    assert 400 <= response.status_code < 500
    assert _code(response.data).startswith("OSO-E2")


def test_unexpected_exception_gets_a_generic_500_fault_without_internals(
    client: FlaskClient, services: GatewayServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(data: bytes, *, now: datetime | None = None) -> object:
        raise RuntimeError("internal secret detail")

    monkeypatch.setattr(services.receiver, "handle", boom)
    response = client.post("/oso/v1/messages", data=b"<x/>", content_type=XML)
    assert response.status_code == 500
    fault = wire.parse_fault(response.data)
    assert fault is not None and fault.remote_code == "OSO-E457" and fault.remote_transient
    assert b"secret" not in response.data
