"""The outbox's large values live apart from the message row (migration 0009, ``outbox_blobs``).

An outbound message's encrypted payload and its latest sealed envelope are written once and read
once per attempt; the claim, the lease heartbeat and every status change touch only the small
``messages`` row. Runs on SQLite (blobs written and read through the incremental blob API) and on
PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from gateway_pair import RECEIVER_SCHOOL, GatewayPair, make_pair
from sqlalchemy import Engine, event, inspect, select, text
from store_support import queue_outbound

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.errors import AtRestDecryptionError
from oso_gateway.security.c14n import exc_c14n
from oso_gateway.security.primitives import sha256_hex
from oso_gateway.security.xmlparse import ParseLimits, parse_xml
from oso_gateway.store import AtRestCipher, Store, head_revision, upgrade
from oso_gateway.store import models as m
from oso_gateway.store.migrate import alembic_config
from oso_gateway.transfer.outbox import Outbox
from oso_gateway.transfer.send import prepare_dossier

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
KEY = bytes(range(32))
LEASE = timedelta(minutes=5)
#: a payload over one encryption piece (4 MiB), so the piecewise writing is exercised
BIG = b"<dossier>" + bytes(range(65, 91)) * (5 * 1024 * 1024 // 26) + b"</dossier>"


@pytest.fixture
def store(engine: Engine) -> Store:
    return Store(engine, AtRestCipher(KEY))


def _enqueue(store: Store, payload: bytes = b"<dossier>x</dossier>", **kw: object) -> int:
    return queue_outbound(store, payload, now=NOW, **kw)


def _blobs(engine: Engine) -> dict[tuple[int, str], int]:
    """(message pk, kind) -> the blob row's id."""
    with engine.connect() as conn:
        rows = conn.execute(select(m.OutboxBlob.message_pk, m.OutboxBlob.kind, m.OutboxBlob.id))
        return {(pk, kind): blob_id for pk, kind, blob_id in rows}


def test_the_payload_and_first_sealing_are_stored_apart_and_read_back_whole(store: Store) -> None:
    pk = _enqueue(store, BIG, sealed=b"<Envelope>" + BIG + b"</Envelope>", signature_value=b"s1")
    assert set(_blobs(store.engine)) == {(pk, "payload"), (pk, "sealed")}
    record = store.get_message(pk)
    assert store.outbound_payload(record) == BIG
    assert store.outbound_envelope(pk) == (b"<Envelope>" + BIG + b"</Envelope>", b"s1")
    assert record.message_size == len(BIG) + len(b"<Envelope></Envelope>")
    assert record.sent_signature_values == frozenset()  # stored, not sent yet
    with store.engine.connect() as conn:  # encrypted at rest: the plaintext is nowhere
        stored = conn.execute(select(m.OutboxBlob.data).where(m.OutboxBlob.kind == "payload"))
        assert BIG[9:100] not in bytes(stored.scalar_one())


def test_the_stored_payload_is_bound_to_its_message(store: Store) -> None:
    one, two = _enqueue(store, b"<dossier>1</dossier>"), _enqueue(store, b"<dossier>2</dossier>")
    with store.engine.begin() as conn:  # move message one's ciphertext under message two
        data = conn.execute(
            select(m.OutboxBlob.data).where(
                m.OutboxBlob.message_pk == one, m.OutboxBlob.kind == "payload"
            )
        ).scalar_one()
        conn.execute(
            m.OutboxBlob.__table__.update()
            .where(m.OutboxBlob.message_pk == two, m.OutboxBlob.kind == "payload")
            .values(data=data)
        )
    with pytest.raises(AtRestDecryptionError):
        store.outbound_payload(store.get_message(two))


def test_claims_heartbeats_and_status_changes_leave_the_blobs_untouched(store: Store) -> None:
    pk = _enqueue(store, BIG, sealed=b"<Envelope>first</Envelope>", signature_value=b"s1")
    before = _blobs(store.engine)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        claimed = store.claim_next_outbound(now=NOW, lease=LEASE)
        assert claimed is not None and claimed.pk == pk
        assert store.extend_lease(pk, attempt=1, until=NOW + 2 * LEASE)
        store.mark_sent(pk, sealed=None, signature_value=b"s1", now=NOW)  # the stored one
        store.mark_retry(pk, error_code="OSO-E470", next_attempt_at=NOW, now=NOW)
        assert store.claim_next_outbound(now=NOW + timedelta(seconds=1), lease=LEASE)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert any("UPDATE messages" in s for s in statements)
    assert not [s for s in statements if "outbox_blobs" in s]  # not even read
    assert _blobs(store.engine) == before
    assert store.get_message(pk).sent_signature_values == {b"s1"}

    # a fresh sealing replaces only the envelope; the payload's row stays as it was
    store.mark_sent(pk, sealed=b"<Envelope>second</Envelope>", signature_value=b"s2", now=NOW)
    assert _blobs(store.engine)[(pk, "payload")] == before[(pk, "payload")]
    assert store.outbound_envelope(pk) == (b"<Envelope>second</Envelope>", b"s2")
    assert store.outbound_payload(store.get_message(pk)) == BIG
    assert store.get_message(pk).sent_signature_values == {b"s1", b"s2"}
    assert store.get_message(pk).message_size == len(b"<Envelope>second</Envelope>")


def test_delivery_drops_the_payload_and_the_envelope(store: Store) -> None:
    pk = _enqueue(store, sealed=b"<Envelope/>", signature_value=b"s1")
    other = _enqueue(store)
    assert store.claim_next_outbound(now=NOW, lease=LEASE) is not None
    store.mark_sent(pk, sealed=None, signature_value=b"s1", now=NOW)
    store.mark_delivered(pk, receipt=b"<receipt/>", now=NOW)
    assert set(_blobs(store.engine)) == {(other, "payload")}
    assert store.outbound_envelope(pk) is None
    with pytest.raises(LookupError):
        store.outbound_payload(store.get_message(pk))


def test_migration_0009_moves_queued_messages_intact_and_back(engine: Engine) -> None:
    store = Store(engine, AtRestCipher(KEY))
    queued = _enqueue(store, b"<dossier>queued</dossier>")
    sent = _enqueue(store, BIG, sealed=b"<Envelope>sent</Envelope>", signature_value=b"s1")
    with engine.begin() as conn:  # a database from before 0009: the values in the row
        command.downgrade(alembic_config(conn), "privacy_data_keys_1")
    with engine.connect() as conn:
        assert "outbox_blobs" not in inspect(conn).get_table_names()
        rows = dict(conn.execute(text("SELECT id, sealed FROM messages")).all())
    assert rows[queued] is None and bytes(rows[sent]) == b"<Envelope>sent</Envelope>"

    upgrade(engine)
    with engine.connect() as conn:
        assert {c["name"] for c in inspect(conn).get_columns("messages")}.isdisjoint(
            {"payload_ciphertext", "sealed"}
        )
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == head_revision()
    assert set(_blobs(engine)) == {(queued, "payload"), (sent, "payload"), (sent, "sealed")}
    assert store.outbound_payload(store.get_message(queued)) == b"<dossier>queued</dossier>"
    assert store.outbound_payload(store.get_message(sent)) == BIG
    assert store.outbound_envelope(sent) == (b"<Envelope>sent</Envelope>", b"s1")
    claimed = store.claim_next_outbound(now=NOW, lease=LEASE)
    assert claimed is not None and claimed.status == m.SENDING


@pytest.mark.parametrize("size", [0, 5, 4 * 1024 * 1024 + 3])
def test_piecewise_at_rest_sealing_opens_with_the_one_call_opening(size: int) -> None:
    key, plaintext = bytes(range(32)), b"x" * size
    total, pieces = AtRestCipher.seal_pieces(key, plaintext, aad=b"row")
    blob = b"".join(pieces)
    assert len(blob) == total
    assert AtRestCipher.open(key, blob, aad=b"row") == plaintext
    with pytest.raises(AtRestDecryptionError, match="authenticate"):
        AtRestCipher.open(key, blob, aad=b"another row")


# --- through the outbox -------------------------------------------------------------------------


@pytest.fixture
def pair(tmp_path: Path) -> GatewayPair:
    made = make_pair(tmp_path)
    yield made  # type: ignore[misc]
    made.close()


def test_the_first_attempt_sends_the_stored_first_sealing_from_any_worker(
    pair: GatewayPair,
) -> None:
    now = pair.clock()
    prepared = prepare_dossier(
        generate_dossier(overstap="POVO", seed=4, now=now),
        to=RECEIVER_SCHOOL,
        directory=pair.directory,
        config=pair.sender_config,
        now=now,
    )
    pair.outbox.enqueue(prepared)
    # another worker (a restarted process: nothing of the queueing one in memory) sends it
    other = Outbox(
        store=pair.sender_store,
        directory=pair.directory,
        config=pair.sender_config,
        transport=pair.transport,
        retry=pair.outbox.retry,
        clock=pair.clock,
    )
    assert other.run_once().delivered == 1
    assert [data for _url, data in pair.transport.posts] == [prepared.sealed.data]
    record = pair.sender_store.find_message(m.OUT, prepared.message_id)
    assert record is not None and record.signature_value == prepared.sealed.signature_value
    assert _blobs(pair.sender_store.engine) == {}


def test_the_payload_is_the_canonical_form_the_receipt_digest_covers(pair: GatewayPair) -> None:
    now = pair.clock()
    prepared = prepare_dossier(
        generate_dossier(overstap="POVO", seed=5, now=now, attachments_kb=1200),
        to=RECEIVER_SCHOOL,
        directory=pair.directory,
        config=pair.sender_config,
        now=now,
    )
    parsed = parse_xml(prepared.payload, limits=ParseLimits()).getroot()
    assert exc_c14n(parsed) == prepared.payload
    assert sha256_hex(prepared.payload) == prepared.payload_digest
    pair.outbox.enqueue(prepared)
    assert pair.outbox.run_once().delivered == 1
    inbound = pair.receiver_store.find_message(m.IN, prepared.message_id)
    assert inbound is not None and inbound.payload_digest == prepared.payload_digest
