"""The demo: two development gateways on loopback, and one dossier handed over between them.

``run_demo_transfer(workdir)`` sets the gateways up (``transfer.demo.setup_dev_gateways``), starts
the receiving gateway (Het Dev College, 01AB00) over mutual TLS, queues a generated POVO dossier at
the sending gateway (Basisschool De Regenboog, 00YY00), delivers it and returns the verified
receipt, the receiver's inbox line and both message logs. It prints nothing: ``oso-gateway demo``
shows the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.dossier.preview import preview, render_text
from oso_gateway.runtime import build_services, start_gateway_in_thread
from oso_gateway.security.xmlparse import parse_xml
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.transfer import wire
from oso_gateway.transfer.demo import (
    PRIMARY_OIN,
    SECONDARY_OIN,
    VENDOR_OIN,
    setup_dev_gateways,
    with_opt_out,
)
from oso_gateway.transfer.schools import School
from oso_gateway.transfer.send import Expected, prepare_dossier, verify_receipt


@dataclass(frozen=True, kw_only=True)
class DemoResult:
    message_id: str
    status: str  #: the sender's final status (``delivered``)
    receipt: wire.Receipt | None  #: the verified receipt's content
    receipt_xml: bytes  #: the sealed receipt as received
    inbox_line: str  #: the receiving school's inbox entry (no pupil data)
    sender_log: list[str]  #: the sender's message events
    receiver_log: list[str]  #: the receiver's message events
    #: the hash-chained transfer logs: "seq hash event-json" per entry (no pupil data)
    sender_transfer_log: list[str]
    receiver_transfer_log: list[str]
    sender_url: str
    receiver_url: str
    #: "what will be shared": the dossier per category, counts only (no personal data)
    preview: str = ""
    #: (title, configuration file) of each gateway: usable with ``--config`` after the demo
    config_files: tuple[tuple[str, Path], ...] = ()


def run_demo_transfer(
    workdir: Path, *, seed: int = 2019, dossier: bytes | None = None
) -> DemoResult:
    """Two gateways on loopback (mutual TLS, dev PKI); one POVO dossier delivered.

    ``dossier``: send these bytes (e.g. ``oso-gateway generate --attachments-kb 51200``) instead
    of a generated dossier; it must name a sending school of the sending gateway (00YY00).
    """
    gateways = setup_dev_gateways(workdir)
    sender_gw, receiver_gw = gateways[PRIMARY_OIN], gateways[SECONDARY_OIN]
    receiver = build_services(receiver_gw.settings)
    running = start_gateway_in_thread(receiver_gw.settings, services=receiver, threads=4)
    sender = build_services(sender_gw.settings)
    try:
        now = datetime.now(UTC)
        if dossier is None:
            data = with_opt_out(generate_dossier(overstap="POVO", seed=seed, now=now))
        else:
            data = dossier
        shared = render_text(preview(parse_xml(data).getroot()), language="en")
        prepared = prepare_dossier(
            data,
            to=School("01AB", "00"),
            directory=sender.directory,
            config=sender.sender_config,
            now=now,
            objections=sender.outbox.objections,
        )
        sender.outbox.enqueue(prepared)
        record = sender.outbox.wait_for(prepared.message_id, timeout=60)
        receipt = None
        if record.status == m.DELIVERED and record.receipt and record.signature_value:
            receipt, _ = verify_receipt(
                record.receipt,
                expected=Expected(
                    message_id=record.message_id,
                    signature_value=record.signature_value,
                    payload_digest=prepared.payload_digest,
                    recipient_oin=prepared.recipient_oin,
                    resealed=record.attempts > 1,
                    earlier_signature_values=record.sent_signature_values,
                    recipient_school=School("01AB", "00"),
                ),
                config=sender.sender_config,
                now=datetime.now(UTC),
            )
        inbound = receiver.store.find_message(m.IN, prepared.message_id)
        inbox_line = "(not received)"
        if inbound is not None:
            inbox_line = (
                f"{inbound.created_at.isoformat(timespec='seconds')}  {inbound.status:<9} "
                f"{inbound.message_id}  from {inbound.counterpart_school} "
                f"(OIN {inbound.counterpart_oin}) to {inbound.our_school}, "
                f"{inbound.payload_size} bytes, sha256 {inbound.payload_digest}"
            )
        return DemoResult(
            preview=shared,
            message_id=prepared.message_id,
            status=record.status,
            receipt=receipt,
            receipt_xml=record.receipt or b"",
            inbox_line=inbox_line,
            sender_log=_events(sender.store, record.pk, "out", record.message_id),
            receiver_log=(
                _events(receiver.store, inbound.pk, "in", inbound.message_id) if inbound else []
            ),
            sender_transfer_log=_transfer_log(sender.store),
            receiver_transfer_log=_transfer_log(receiver.store),
            sender_url=sender_gw.url,
            receiver_url=receiver_gw.url,
            config_files=tuple(
                (f"{title}: {gw.name} ({', '.join(schools)})", gw.config_file)
                for title, gw, schools in (
                    ("sending gateway", sender_gw, ("00YY00",)),
                    ("receiving gateway", receiver_gw, ("01AB00",)),
                    ("vendor gateway", gateways[VENDOR_OIN], ("02CD00", "03EF00")),
                )
            ),
        )
    finally:
        sender.close()
        running.stop()
        receiver.close()


def _events(store: Store, pk: int, direction: str, message_id: str) -> list[str]:
    return [
        f"{e.at.isoformat(timespec='milliseconds')}  {direction:<3} {message_id}  {e.status}"
        + (f" attempt {e.attempt}" if e.attempt else "")
        + (f" {e.error_code}" if e.error_code else "")
        for e in store.events(pk)
    ]


def _transfer_log(store: Store) -> list[str]:
    return [
        f"{e.seq:>4} {e.hash[:16]} {json.dumps(dict(e.event), sort_keys=True)}"
        for e in store.log_entries()
    ]
