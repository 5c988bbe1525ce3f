"""A dossier queued before its sending school left this gateway (removed from the directory,
live reload) is not sealed nor posted: it fails at once with OSO-E464, locally, so the operator
sees why (it was posted and refused by the peer, OSO-E431, after a round trip). Once the school
is back, `outbox retry` sends it. Two dev gateways over mutual TLS on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from leaving_support import replace_file, without_school

from oso_gateway.cli import main
from oso_gateway.dossier.generator import demo_school, generate_dossier
from oso_gateway.runtime import build_services, start_gateway_in_thread, trust_reloader
from oso_gateway.store import models as m
from oso_gateway.transfer.demo import PRIMARY_OIN, SECONDARY_OIN, DevGateway, setup_dev_gateways
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import prepare_dossier
from oso_gateway.transfer.services import GatewayServices

pytestmark = pytest.mark.integration

SENDING = "00YY00"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[GatewayServices, GatewayServices, DevGateway]]:
    gateways = setup_dev_gateways(tmp_path)
    sender = build_services(gateways[PRIMARY_OIN].settings)
    receiver = build_services(gateways[SECONDARY_OIN].settings)
    running = start_gateway_in_thread(receiver.settings, services=receiver, threads=4)
    try:
        yield sender, receiver, gateways[PRIMARY_OIN]
    finally:
        running.stop()
        receiver.close()
        sender.close()


def test_a_message_of_a_school_that_left_fails_locally_and_is_sent_after_it_is_back(
    pair: tuple[GatewayServices, GatewayServices, DevGateway], caplog: pytest.LogCaptureFixture
) -> None:
    sender, receiver, gateway = pair
    prepared = prepare_dossier(
        generate_dossier(
            overstap="POVO", seed=5, now=datetime.now(UTC), sending_school=demo_school(SENDING)
        ),
        to=School.parse("01AB00"),
        directory=sender.directory,
        config=sender.sender_config,
        now=datetime.now(UTC),
    )
    sender.outbox.enqueue(prepared)
    directory = sender.settings.require_directory_file()
    before = without_school(directory, SENDING)
    assert trust_reloader(sender).reload() is True

    with caplog.at_level("ERROR"):
        stats = sender.outbox.run_once()
    assert stats.failed == 1 and stats.attempts == 1
    record = sender.store.find_message(m.OUT, prepared.message_id)
    assert record is not None and record.status == m.FAILED
    assert record.last_error_code == "OSO-E464"
    assert "OSO-E464" in caplog.text and f"sending school {SENDING}" in caplog.text
    # nothing was sealed anew nor posted: no awaiting_receipt, and the peer holds nothing
    statuses = [e.status for e in sender.store.events(record.pk)]
    assert m.AWAITING_RECEIPT not in statuses, statuses
    assert receiver.store.find_message(m.IN, prepared.message_id) is None
    shown = CliRunner().invoke(
        main, ["outbox", "show", prepared.message_id, "--config", str(gateway.config_file)]
    )
    assert "OSO-E464" in shown.output

    replace_file(directory, before)  # the school is back with this gateway
    assert trust_reloader(sender).reload() is True
    retried = CliRunner().invoke(
        main, ["outbox", "retry", prepared.message_id, "--config", str(gateway.config_file)]
    )
    assert retried.exit_code == 0, retried.output
    delivered = sender.outbox.wait_for(prepared.message_id, timeout=60)
    assert delivered.status == m.DELIVERED, delivered.last_error_code
    assert receiver.store.find_message(m.IN, prepared.message_id) is not None
