"""Every status change of every message, in both directions, is in the hash-chained transfer log:
the log's statuses per message are exactly the store's message events, in order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from gateway_pair import RECEIVER_SCHOOL, GatewayPair, make_pair, with_sending_school

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.store.logchain import verify_chain
from oso_gateway.transfer.send import prepare_dossier, seal_attempt


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[GatewayPair]:
    pair = make_pair(tmp_path)
    yield pair
    pair.close()


def _logged_statuses(store: Store) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    entries = store.log_entries()
    assert verify_chain(entries).ok
    for entry in entries:
        event = entry.event
        if event.get("kind") == "message" and "message_id" in event:
            found.setdefault((event["direction"], event["message_id"]), []).append(event["status"])
    return found


def _event_statuses(store: Store) -> dict[tuple[str, str], list[str]]:
    return {
        (r.direction, r.message_id): [e.status for e in store.events(r.pk)]
        for r in store.list_messages(limit=1000)
    }


def test_every_status_change_in_both_directions_is_a_chained_log_event(pair: GatewayPair) -> None:
    def queue(seed: int) -> str:
        prepared = prepare_dossier(
            generate_dossier(overstap="POVO", seed=seed, now=pair.clock()),
            to=RECEIVER_SCHOOL,
            directory=pair.directory,
            config=pair.sender_config,
            now=pair.clock(),
        )
        pair.outbox.enqueue(prepared)
        return prepared.message_id

    delivered = queue(1)
    pair.transport.down = True
    pair.outbox.run_once()  # sending -> awaiting_receipt -> retrying
    pair.transport.down = False
    pair.clock.advance(timedelta(seconds=2))
    pair.outbox.run_once()  # -> delivered
    # a permanent fault fails at once; an operator queues it again
    data = generate_dossier(overstap="POVO", seed=2, now=pair.clock())
    sealed = seal_attempt(
        with_sending_school(data, "03EF"),
        message_id="urn:uuid:00000000-0000-4000-8000-000000000002",
        to=RECEIVER_SCHOOL,
        directory=pair.directory,
        config=pair.sender_config,
        now=pair.clock(),
    )
    assert pair.receiver.handle(sealed.data).http_status == 403  # rejected: no mandate
    failed = queue(3)
    record = pair.sender_store.find_message(m.OUT, failed)
    assert record is not None
    pair.sender_store.mark_failed(record.pk, error_code="OSO-E453", now=pair.clock())
    pair.sender_store.requeue_outbound(record.pk, now=pair.clock())

    for store in (pair.sender_store, pair.receiver_store):
        assert _logged_statuses(store) == _event_statuses(store)
    sent = _logged_statuses(pair.sender_store)
    assert sent[("out", delivered)] == [
        m.QUEUED,
        m.SENDING,
        m.AWAITING_RECEIPT,
        m.RETRYING,
        m.SENDING,
        m.AWAITING_RECEIPT,
        m.DELIVERED,
    ]
    assert sent[("out", failed)] == [m.QUEUED, m.FAILED, m.QUEUED]
    received = _logged_statuses(pair.receiver_store)
    assert received[("in", delivered)] == [m.RECEIVED, m.VERIFIED, m.IMPORTED]
    assert received[("in", sealed.message_id)] == [m.RECEIVED, m.REJECTED]


def test_log_events_carry_schools_oins_sizes_digest_and_fingerprints(pair: GatewayPair) -> None:
    prepared = prepare_dossier(
        generate_dossier(overstap="POVO", seed=4, now=pair.clock()),
        to=RECEIVER_SCHOOL,
        directory=pair.directory,
        config=pair.sender_config,
        now=pair.clock(),
    )
    pair.outbox.enqueue(prepared)
    pair.outbox.run_once()
    delivered = pair.sender_store.log_entries()[-1].event
    assert delivered["status"] == m.DELIVERED
    assert delivered["counterpart_brin"] + delivered["counterpart_vestiging"] == "01AB00"
    assert delivered["school_brin"] + delivered["school_vestiging"] == "00YY00"
    assert delivered["payload_digest"] == prepared.payload_digest
    assert delivered["size_bytes"] == str(len(prepared.payload))
    assert len(delivered["peer_fingerprint"]) == 64  # the receipt's signer
    imported = pair.receiver_store.log_entries()[-1].event
    assert imported["status"] == m.IMPORTED
    assert imported["counterpart_brin"] + imported["counterpart_vestiging"] == "00YY00"
    assert imported["payload_digest"] == prepared.payload_digest
    assert len(imported["signer_fingerprint"]) == 64
