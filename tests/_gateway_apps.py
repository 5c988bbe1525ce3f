"""Two gateways built from their configuration files (``setup_dev_gateways`` +
``build_services``), each with its Flask app (SOAP endpoint, ``/metrics``); the sender's transport
posts to the receiver's app through its test client instead of a socket. A settable clock drives
the sender (retries without waiting).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.runtime import build_services
from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN, setup_dev_gateways
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import (
    PeerUnreachable,
    PreparedDossier,
    TransportResponse,
    new_message_id,
    prepare_dossier,
    seal_attempt,
)
from oso_gateway.transfer.services import GatewayServices
from oso_gateway.web.app import create_app

RECEIVER_SCHOOL = School("01AB", "00")


def queue_generated(sender: GatewayServices, seed: int) -> str:
    """Queue a generated POVO overstapdossier (``seed``, dated now) at ``sender`` for
    ``RECEIVER_SCHOOL``; returns its message id."""
    now = datetime.now(UTC)
    prepared = prepare_dossier(
        generate_dossier(overstap="POVO", seed=seed, now=now),
        to=RECEIVER_SCHOOL,
        directory=sender.directory,
        config=sender.sender_config,
        now=now,
    )
    sender.outbox.enqueue(prepared)
    return prepared.message_id


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FlaskTransport:
    """POSTs go to the receiver's Flask app (its real SOAP endpoint) through its test client."""

    client: FlaskClient
    down: bool = False
    posts: int = field(default=0)

    def post(self, url: str, data: bytes, *, action: str) -> TransportResponse:
        if self.down:
            raise PeerUnreachable("connection refused (test outage)")
        self.posts += 1
        answer = self.client.post(
            urlsplit(url).path, data=data, content_type="text/xml; charset=utf-8"
        )
        return TransportResponse(status=answer.status_code, body=answer.get_data())


def gateway_app(services: GatewayServices) -> Flask:
    """The gateway's own app (``create_app``: SOAP endpoint, probes, ``/metrics``)."""
    return create_app(services.settings, services=services)


@dataclass
class World:
    sender: GatewayServices
    receiver: GatewayServices
    sender_app: Flask
    receiver_app: Flask
    transport: FlaskTransport
    clock: Clock
    configs: tuple[Path, Path]

    def queue(self, data: bytes) -> PreparedDossier:
        prepared = prepare_dossier(
            data,
            to=RECEIVER_SCHOOL,
            directory=self.sender.directory,
            config=self.sender.sender_config,
            now=self.clock(),
        )
        self.sender.outbox.enqueue(prepared)
        return prepared

    def post_sealed(self, payload: bytes) -> str:
        """Seal ``payload`` as the sender would, without the sender's own checks; post it;
        expect a fault. Returns the message id."""
        message_id = new_message_id()
        sealed = seal_attempt(
            payload,
            message_id=message_id,
            to=RECEIVER_SCHOOL,
            directory=self.sender.directory,
            config=self.sender.sender_config,
            now=self.clock(),
        )
        entry = self.sender.directory.lookup(RECEIVER_SCHOOL.brin, RECEIVER_SCHOOL.vestiging)
        answer = self.transport.post(entry.endpoint, sealed.data, action="")
        assert answer.status >= 400
        return message_id

    def metrics(self, app: Flask) -> str:
        page = app.test_client().get("/metrics")
        assert page.status_code == 200
        assert page.content_type.startswith("text/plain; version=0.0.4")
        return page.get_data(as_text=True)


@contextmanager
def two_gateways(workdir: Path) -> Iterator[World]:
    gateways = setup_dev_gateways(workdir)
    clock = Clock()
    receiver = build_services(gateways[SECONDARY_OIN].settings)
    receiver_app = gateway_app(receiver)
    transport = FlaskTransport(receiver_app.test_client())
    sender = build_services(gateways[PRIMARY_OIN].settings, transport=transport, clock=clock)
    try:
        yield World(
            sender=sender,
            receiver=receiver,
            sender_app=gateway_app(sender),
            receiver_app=receiver_app,
            transport=transport,
            clock=clock,
            configs=(gateways[PRIMARY_OIN].config_file, gateways[SECONDARY_OIN].config_file),
        )
    finally:
        sender.close()
        receiver.close()
