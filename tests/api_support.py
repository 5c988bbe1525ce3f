"""A live school API on loopback: three dev gateways (tests/../transfer/demo.py set-up), two
dossiers delivered over mutual TLS to the vendor gateway (one for 02CD00, one for 03EF00), and
an API client per school, each scoped to its own school only."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from oso_gateway.config import ApiSettings
from oso_gateway.dossier.generator import demo_school, generate_dossier
from oso_gateway.runtime import build_services, start_gateway_in_thread
from oso_gateway.server import RunningServer
from oso_gateway.store import models as m
from oso_gateway.store.api_clients import ApiClientStore
from oso_gateway.transfer.apiclients import ApiClients
from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN, VENDOR_OIN, setup_dev_gateways
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import prepare_dossier
from oso_gateway.transfer.services import GatewayServices
from oso_gateway.web.api import start_api_in_thread

SCHOOL_A = "02CD00"  # Basisschool De Zonnewijzer (PO), on the vendor gateway
SCHOOL_B = "03EF00"  # Scholengemeenschap De Brug (VO), on the same vendor gateway


@dataclass
class LiveApi:
    url: str  #: ends in /api/v1/
    vendor: GatewayServices
    credentials: dict[str, str]  #: school -> "Bearer ..." header value
    inbox_ids: dict[str, str]  #: school -> MessageID of the dossier it received
    outbox_ids: dict[str, str] = field(default_factory=dict)  #: school -> a queued MessageID
    clients: ApiClients | None = None

    def headers(self, school: str, **extra: str) -> dict[str, str]:
        return {"Authorization": self.credentials[school], **extra}

    def get(self, path: str, school: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers(school), timeout=30, **kwargs)

    def post(self, path: str, school: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers(school), **kwargs.pop("headers", {})}
        return requests.post(self.url + path, headers=headers, timeout=60, **kwargs)


def dossier_for(kind: str, sender: str, *, seed: int = 7) -> bytes:
    return generate_dossier(
        overstap=kind, seed=seed, now=datetime.now(UTC), sending_school=demo_school(sender)
    )


def live_api(workdir: Path) -> Iterator[LiveApi]:
    gateways = setup_dev_gateways(workdir)
    vendor_settings = dataclasses.replace(
        gateways[VENDOR_OIN].settings, api=ApiSettings(rate_limit="100000/minute")
    )
    sender = build_services(gateways[PRIMARY_OIN].settings)
    vendor = build_services(gateways[VENDOR_OIN].settings)
    running: list[RunningServer] = []
    try:
        running.append(
            start_gateway_in_thread(gateways[VENDOR_OIN].settings, services=vendor, threads=4)
        )
        inbox_ids = {}
        for school, kind in ((SCHOOL_A, "POPO"), (SCHOOL_B, "POVO")):
            prepared = prepare_dossier(
                dossier_for(kind, "00YY00"),
                to=School.parse(school),
                directory=sender.directory,
                config=sender.sender_config,
                now=datetime.now(UTC),
            )
            sender.outbox.enqueue(prepared)
            record = sender.outbox.wait_for(prepared.message_id, timeout=60)
            assert record.status == m.DELIVERED, record.last_error_code
            inbox_ids[school] = prepared.message_id
        clients = ApiClients(ApiClientStore(vendor.store.engine), served=vendor.schools)
        credentials = {}
        for school in (SCHOOL_A, SCHOOL_B):
            _record, secret = clients.add(f"LAS {school}", [school], now=datetime.now(UTC))
            credentials[school] = f"Bearer {secret}"
        api = start_api_in_thread(vendor_settings, services=vendor, port=0)
        running.append(api)
        live = LiveApi(
            url=api.url, vendor=vendor, credentials=credentials, inbox_ids=inbox_ids,
            clients=clients,
        )  # fmt: skip
        # a queued outbound message of school A (the receiving gateway is not running)
        response = live.post(
            "outbox/messages",
            SCHOOL_A,
            params={"recipient": "01AB00"},
            data=dossier_for("POVO", SCHOOL_A, seed=11),
            headers={"Content-Type": "application/xml"},
        )
        assert response.status_code == 201, response.text
        live.outbox_ids[SCHOOL_A] = response.json()["message"]["message_id"]
        yield live
    finally:
        for server in reversed(running):
            server.stop()
        vendor.close()
        sender.close()


__all__ = ["SCHOOL_A", "SCHOOL_B", "SECONDARY_OIN", "LiveApi", "dossier_for", "live_api"]
