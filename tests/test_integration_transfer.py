"""Two real gateways on loopback: cheroot over mutual TLS (dev PKI), real SQLite, real requests."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from _gateway_apps import queue_generated
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from oso_gateway.cli import main
from oso_gateway.demo import run_demo_transfer
from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.runtime import build_services, start_gateway_in_thread
from oso_gateway.server import RunningServer
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.transfer.demo import (
    PRIMARY_OIN,
    SECONDARY_OIN,
    DevGateway,
    dev_certs_dir,
)
from oso_gateway.transfer.outbox import Outbox
from oso_gateway.transfer.services import GatewayServices

pytestmark = pytest.mark.integration

CERTS = dev_certs_dir()


@pytest.fixture
def receiver(gateways: dict[str, DevGateway]) -> Iterator[GatewayServices]:
    services = build_services(gateways[SECONDARY_OIN].settings)
    yield services
    services.close()


@pytest.fixture
def sender(gateways: dict[str, DevGateway]) -> Iterator[GatewayServices]:
    services = build_services(gateways[PRIMARY_OIN].settings)
    yield services
    services.close()


@pytest.fixture
def server(gateways: dict[str, DevGateway], receiver: GatewayServices) -> Iterator[RunningServer]:
    running = start_gateway_in_thread(
        gateways[SECONDARY_OIN].settings, services=receiver, threads=8
    )
    yield running
    running.stop()


def _dossiers(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(m.Dossier)).scalar_one())


def test_dossier_is_delivered_over_mutual_tls_imported_once_with_verified_receipt(
    server: RunningServer, sender: GatewayServices, receiver: GatewayServices
) -> None:
    message_id = queue_generated(sender, seed=1)
    record = sender.outbox.wait_for(message_id, timeout=60)
    assert record.status == m.DELIVERED and record.attempts == 1
    inbound = receiver.store.find_message(m.IN, message_id)
    assert inbound is not None and inbound.status == m.IMPORTED
    assert inbound.receipt == record.receipt
    assert inbound.counterpart_oin == PRIMARY_OIN and inbound.our_school == "01AB00"
    assert _dossiers(receiver.store) == 1


def test_receiver_down_when_sending_is_retried_and_delivered_once_it_is_up(
    gateways: dict[str, DevGateway], sender: GatewayServices, receiver: GatewayServices
) -> None:
    message_id = queue_generated(sender, seed=2)
    assert sender.outbox.run_once().retrying == 1
    record = sender.store.find_message(m.OUT, message_id)
    assert record is not None and record.status == m.RETRYING
    assert record.last_error_code == "OSO-E461"
    running = start_gateway_in_thread(gateways[SECONDARY_OIN].settings, services=receiver)
    try:
        record = sender.outbox.wait_for(message_id, timeout=60)
    finally:
        running.stop()
    assert record.status == m.DELIVERED and record.attempts >= 2
    assert _dossiers(receiver.store) == 1


def test_the_same_message_posted_twice_is_imported_once_with_the_same_receipt(
    server: RunningServer, sender: GatewayServices, receiver: GatewayServices
) -> None:
    message_id = queue_generated(sender, seed=3)
    queued = sender.store.find_message(m.OUT, message_id)
    assert queued is not None
    stored = sender.store.outbound_envelope(queued.pk)  # the first sealing, kept for attempt 1
    assert stored is not None
    record = sender.outbox.wait_for(message_id, timeout=60)
    assert sender.store.outbound_envelope(record.pk) is None  # dropped on delivery
    answer = sender.transport.post(server.url + "/oso/v1/messages", stored[0], action="deliver")
    assert answer.status == 200
    assert answer.body == record.receipt
    assert _dossiers(receiver.store) == 1


def test_hundred_dossiers_from_four_sender_threads_are_imported_exactly_once(
    server: RunningServer, sender: GatewayServices, receiver: GatewayServices
) -> None:
    ids = {queue_generated(sender, seed=seed) for seed in range(100, 200)}
    assert len(ids) == 100
    errors: list[BaseException] = []

    def worker() -> None:
        outbox = Outbox(
            store=sender.store,
            directory=sender.directory,
            config=sender.sender_config,
            transport=sender.transport,
            retry=replace(sender.settings.retry, base_delay=0.1, max_delay=0.5),
        )
        try:
            while outbox.run_once().attempts:
                pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors
    for message_id in ids:  # anything retried after a transient error: finish it
        sender.outbox.wait_for(message_id, timeout=60)
    delivered = sender.store.list_messages(direction=m.OUT, statuses=[m.DELIVERED], limit=500)
    assert {r.message_id for r in delivered} == ids
    imported = receiver.store.list_messages(direction=m.IN, limit=500)
    assert sorted(r.message_id for r in imported) == sorted(ids)  # 0 lost, 0 duplicated
    assert _dossiers(receiver.store) == 100


def test_client_without_certificate_is_refused_during_the_tls_handshake(
    server: RunningServer,
) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(server.url + "/healthz", verify=str(CERTS / "ca-bundle.pem"), timeout=10)


def test_client_with_revoked_certificate_is_refused_during_the_tls_handshake(
    server: RunningServer,
) -> None:
    revoked = "00000001000000000009"
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(
            server.url + "/healthz",
            verify=str(CERTS / "ca-bundle.pem"),
            cert=(
                str(CERTS / f"gateway-{revoked}.crt.pem"),
                str(CERTS / f"gateway-{revoked}.key.pem"),
            ),
            timeout=10,
        )


def test_health_and_readiness_answer_over_mutual_tls(server: RunningServer) -> None:
    cert = (
        str(CERTS / f"gateway-{PRIMARY_OIN}.crt.pem"),
        str(CERTS / f"gateway-{PRIMARY_OIN}.key.pem"),
    )
    verify = str(CERTS / "ca-bundle.pem")
    health = requests.get(server.url + "/healthz", cert=cert, verify=verify, timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    ready = requests.get(server.url + "/readyz", cert=cert, verify=verify, timeout=10)
    assert ready.status_code == 200, ready.text
    wrong = requests.post(
        server.url + "/oso/v1/messages",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        cert=cert,
        verify=verify,
        timeout=10,
    )
    assert wrong.status_code == 415 and b"OSO-E456" in wrong.content


def test_send_command_waits_for_the_receipt(
    server: RunningServer, gateways: dict[str, DevGateway], tmp_path: Path
) -> None:
    dossier = tmp_path / "export.xml"
    dossier.write_bytes(generate_dossier(overstap="POVO", seed=7, now=datetime.now(UTC)))
    result = CliRunner().invoke(
        main,
        [
            "send",
            str(dossier),
            "--to",
            "01AB00",
            "--wait",
            "--config",
            str(gateways[PRIMARY_OIN].config_file),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "delivered: urn:uuid:" in result.output


def test_send_names_each_files_message_before_it_waits(
    gateways: dict[str, DevGateway], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wait cut short (Ctrl-C) after the queueing still leaves the file-to-message mapping
    on the screen: it was printed only after every wait (a review)."""
    from oso_gateway.transfer.outbox import Outbox

    def interrupted(*_args: object, **_kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(Outbox, "wait_for", interrupted)
    dossier = tmp_path / "export.xml"
    dossier.write_bytes(generate_dossier(overstap="POVO", seed=17, now=datetime.now(UTC)))
    config = str(gateways[PRIMARY_OIN].config_file)
    result = CliRunner().invoke(
        main, ["send", str(dossier), "--to", "01AB00", "--wait", "--config", config]
    )
    assert result.exit_code != 0
    assert re.search(r"urn:uuid:[0-9a-f-]{36}\s.*export\.xml", result.output), result.output


def test_send_command_rejects_an_invalid_dossier_with_exit_status_1(
    gateways: dict[str, DevGateway], tmp_path: Path
) -> None:
    dossier = tmp_path / "broken.xml"
    dossier.write_bytes(
        b"<dossier xmlns='http://www.edustandaard.nl/oso_gegevensset/2019/dossier'/>"
    )
    result = CliRunner().invoke(
        main,
        [
            "send",
            str(dossier),
            "--to",
            "01AB00",
            "--config",
            str(gateways[PRIMARY_OIN].config_file),
        ],
    )
    assert result.exit_code == 1
    assert "rejected: dossier 1/1" in result.output and "OSO-E1" in result.output


def test_serve_refuses_to_start_on_a_database_without_the_current_schema(
    gateways: dict[str, DevGateway], tmp_path: Path
) -> None:
    config = gateways[SECONDARY_OIN].config_file
    text = config.read_text(encoding="utf-8")
    empty = tmp_path / "empty" / "gateway.sqlite"
    empty.parent.mkdir()
    empty.touch()  # a database file without the schema (a missing one is OSO-E560)
    config.write_text(f'database_url = "sqlite:///{empty.as_posix()}"\n' + text, encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "OSO-E503" in result.output and "oso-gateway db upgrade" in result.output


def test_demo_transfer_returns_the_receipt_inbox_line_and_both_logs(tmp_path: Path) -> None:
    result = run_demo_transfer(tmp_path)
    assert result.status == m.DELIVERED
    assert result.receipt is not None and result.receipt.status == "imported"
    assert result.message_id in result.inbox_line and "imported" in result.inbox_line
    assert [line.split()[-1] for line in result.sender_log][-1] == "1"  # delivered attempt 1
    assert any("delivered" in line for line in result.sender_log)
    assert any("imported" in line for line in result.receiver_log)
    assert any('"status": "delivered"' in line for line in result.sender_transfer_log)
    assert any('"status": "imported"' in line for line in result.receiver_transfer_log)


def test_send_command_queues_a_whole_class_one_outbox_entry_per_dossier(
    gateways: dict[str, DevGateway], tmp_path: Path
) -> None:
    klas = tmp_path / "groep8"
    klas.mkdir()
    now = datetime.now(UTC)
    for seed in (21, 22, 23):
        (klas / f"{seed}.xml").write_bytes(generate_dossier(overstap="POVO", seed=seed, now=now))
    config = str(gateways[PRIMARY_OIN].config_file)
    result = CliRunner().invoke(main, ["send", str(klas), "--to", "01AB", "--config", config])
    assert result.exit_code == 0, result.output
    assert "queued 3 dossier(s) for 01AB00, rejected 0" in result.output
    sender = build_services(gateways[PRIMARY_OIN].settings)
    try:
        queued = sender.store.list_messages(direction=m.OUT, statuses=[m.QUEUED])
        assert len({r.message_id for r in queued}) == 3
    finally:
        sender.close()


def test_send_names_each_file_with_its_message_id_or_error_code(
    gateways: dict[str, DevGateway], tmp_path: Path
) -> None:
    """`send DIR` printed message ids without their files: a script could not tell which
    dossier became which message (a vendor's walkthrough)."""
    klas = tmp_path / "klas"
    klas.mkdir()
    now = datetime.now(UTC)
    for seed in (61, 62):
        (klas / f"leerling-{seed}.xml").write_bytes(
            generate_dossier(overstap="POVO", seed=seed, now=now)
        )
    (klas / "kapot.xml").write_bytes(b"<niet-oso/>")
    config = str(gateways[PRIMARY_OIN].config_file)
    args = ["send", str(klas), "--to", "01AB00", "--config", config]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 1, result.output
    body = json.loads(result.stdout)
    assert (body["to"], body["queued"], body["rejected"], body["stopped_by"]) == (
        "01AB00",
        2,
        1,
        None,
    )
    rows = {Path(r["file"]).name: r for r in body["files"]}
    assert rows["kapot.xml"]["message_id"] is None and rows["kapot.xml"]["status"] == "rejected"
    assert rows["kapot.xml"]["error"].startswith("OSO-E")
    sender = build_services(gateways[PRIMARY_OIN].settings)
    try:
        for name in ("leerling-61.xml", "leerling-62.xml"):
            assert rows[name]["status"] == "queued" and rows[name]["error"] is None
            assert sender.store.find_message(m.OUT, rows[name]["message_id"]) is not None
    finally:
        sender.close()
    again = CliRunner().invoke(main, [*args, "--allow-duplicate"])
    lines = [line for line in again.stdout.splitlines() if "urn:uuid:" in line]
    assert len(lines) == 2 and all(line.rstrip().endswith(".xml") for line in lines)
    assert any(str(klas / "leerling-61.xml") in line for line in lines)


def test_receiver_crashing_between_insert_and_commit_imports_nothing_and_the_retry_imports(
    gateways: dict[str, DevGateway], sender: GatewayServices
) -> None:
    crashes: list[str] = []

    def crash_once(_session: object, record: object) -> None:
        if not crashes:
            crashes.append("crashed")
            raise RuntimeError("killed between insert and commit")

    receiver = build_services(gateways[SECONDARY_OIN].settings, after_insert=crash_once)
    running = start_gateway_in_thread(gateways[SECONDARY_OIN].settings, services=receiver)
    try:
        message_id = queue_generated(sender, seed=31)
        assert sender.outbox.run_once().retrying == 1
        assert receiver.store.find_message(m.IN, message_id) is None
        assert _dossiers(receiver.store) == 0
        record = sender.outbox.wait_for(message_id, timeout=60)
    finally:
        running.stop()
        receiver.close()
    assert crashes == ["crashed"]
    assert record.status == m.DELIVERED and record.attempts == 2
    assert _dossiers(receiver.store) == 1


def test_outbox_run_once_delivers_what_send_queued(
    server: RunningServer, gateways: dict[str, DevGateway], tmp_path: Path
) -> None:
    dossier = tmp_path / "export.xml"
    dossier.write_bytes(generate_dossier(overstap="POVO", seed=41, now=datetime.now(UTC)))
    config = str(gateways[PRIMARY_OIN].config_file)
    queued = CliRunner().invoke(main, ["send", str(dossier), "--to", "01AB00", "--config", config])
    assert queued.exit_code == 0, queued.output
    result = CliRunner().invoke(main, ["outbox", "run", "--once", "--config", config])
    assert result.exit_code == 0, result.output
    assert "delivered 1, retrying 0, failed 0" in result.output


def test_send_command_refuses_the_same_dossier_for_the_same_school_within_the_window(
    gateways: dict[str, DevGateway], tmp_path: Path
) -> None:
    """As the school API does (E610): a second `send` of the same file, and the same dossier
    twice in one directory, are refused; `--allow-duplicate` queues it on purpose."""
    dossier = tmp_path / "twice.xml"
    dossier.write_bytes(generate_dossier(overstap="POVO", seed=51, now=datetime.now(UTC)))
    config = str(gateways[PRIMARY_OIN].config_file)

    def send(*extra: str) -> Result:
        return CliRunner().invoke(main, ["send", *extra, "--config", config])

    first = send(str(dossier), "--to", "01AB00")
    assert first.exit_code == 0, first.output
    again = send(str(dossier), "--to", "01AB00")
    assert again.exit_code == 1
    assert "rejected: dossier 1/1" in again.output and "OSO-E610" in again.output
    assert first.output.split("urn:uuid:")[1][:36] in again.output  # names the first message
    klas = tmp_path / "klas"
    klas.mkdir()
    (klas / "a.xml").write_bytes(dossier.read_bytes())
    (klas / "b.xml").write_bytes(generate_dossier(overstap="POVO", seed=52, now=datetime.now(UTC)))
    (klas / "c.xml").write_bytes(generate_dossier(overstap="POVO", seed=52, now=datetime.now(UTC)))
    both = send(str(klas), "--to", "01AB00")
    assert "queued 1 dossier(s) for 01AB00, rejected 2" in both.output, both.output
    assert both.exit_code == 1
    forced = send(str(dossier), "--to", "01AB00", "--allow-duplicate")
    assert forced.exit_code == 0 and "queued 1 dossier(s)" in forced.output, forced.output
