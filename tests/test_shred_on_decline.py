"""Content deleted outside the retention purge leaves no image in SQLite's files.

Declining a received dossier, cancelling an outbound one and delivering one delete the content
and its data key. SQLite zeroes deleted cells (``secure_delete``), but in WAL mode the zeroed page
goes to the WAL while the main file keeps the old page until a checkpoint: a copy of the main file
then held the ciphertext and the wrapped data key, which the current storage key opens (found by
a helper's privacy review; only the purge checkpointed). Each of these operations now leaves
neither file holding them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from gateway_pair import GatewayPair, sqlite_store
from sqlalchemy import Engine, select
from store_support import import_received, queue_outbound, sqlite_files

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.store.mailbox import Mailbox

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def _dossier_secrets(engine: Engine, message_pk: int) -> tuple[bytes, bytes]:
    with engine.connect() as conn:
        row = conn.execute(
            select(m.Dossier.ciphertext, m.DataKeyRow.wrapped)
            .join(m.DataKeyRow, m.DataKeyRow.id == m.Dossier.data_key_id)
            .where(m.Dossier.message_pk == message_pk)
        ).one()
    return bytes(row[0])[16:64], bytes(row[1])[12:44]


def _payload_secrets(engine: Engine, message_pk: int) -> tuple[bytes, bytes]:
    with engine.connect() as conn:
        blob = conn.execute(
            select(m.OutboxBlob.data).where(
                m.OutboxBlob.message_pk == message_pk, m.OutboxBlob.kind == "payload"
            )
        ).scalar_one()
        wrapped = conn.execute(
            select(m.DataKeyRow.wrapped)
            .join(m.Message, m.Message.payload_data_key_id == m.DataKeyRow.id)
            .where(m.Message.id == message_pk)
        ).scalar_one()
    return bytes(blob)[16:64], bytes(wrapped)[12:44]


def _checkpointed(store: Store) -> None:
    """As a long-running gateway's file would be: the content reached the main file."""
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def test_declining_a_received_dossier_leaves_no_image_of_it(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "gateway.sqlite")
    try:
        imported = import_received(
            store, now=NOW, dossier=b"<dossier>" + b"x" * 4000 + b"</dossier>"
        )
        _checkpointed(store)
        ciphertext, wrapped = _dossier_secrets(store.engine, imported.message.pk)
        before = sqlite_files(store.engine)
        assert ciphertext in before and wrapped in before  # the test can fail

        Mailbox(store).decline(imported.message.pk, reason="not our pupil", now=NOW)

        after = sqlite_files(store.engine)
        assert ciphertext not in after, "the declined dossier's ciphertext is still on disk"
        assert wrapped not in after, "its wrapped data key is still on disk"
    finally:
        store.engine.dispose()


def test_cancelling_an_outbound_dossier_leaves_no_image_of_it(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "gateway.sqlite")
    try:
        pk = queue_outbound(store, b"<dossier>" + b"y" * 4000 + b"</dossier>", now=NOW)
        _checkpointed(store)
        ciphertext, wrapped = _payload_secrets(store.engine, pk)
        assert ciphertext in sqlite_files(store.engine) and wrapped in sqlite_files(store.engine)

        Mailbox(store).cancel(pk, now=NOW)

        after = sqlite_files(store.engine)
        assert ciphertext not in after and wrapped not in after
    finally:
        store.engine.dispose()


def test_a_delivered_payload_leaves_no_image_of_it(pair: GatewayPair) -> None:
    data = generate_dossier(overstap="POVO", seed=11, now=pair.clock())
    prepared = pair.prepare(data)
    record = pair.outbox.enqueue(prepared)
    store = pair.sender_store
    _checkpointed(store)
    ciphertext, wrapped = _payload_secrets(store.engine, record.pk)
    assert ciphertext in sqlite_files(store.engine) and wrapped in sqlite_files(store.engine)

    stats = pair.outbox.run_once()

    assert stats.delivered == 1
    after = sqlite_files(store.engine)
    assert ciphertext not in after, "the delivered payload's ciphertext is still on disk"
    assert wrapped not in after, "its wrapped data key is still on disk"


def test_a_checkpoint_that_fails_does_not_fail_the_decline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The deletion has committed: a checkpoint that cannot run (the database busy past its
    bound, or gone) is logged and left to the next one, not turned into an error."""
    from oso_gateway.errors import StoreUnavailable
    from oso_gateway.store import engine as store_engine

    def unavailable(*_args: object, **_kwargs: object) -> bool:
        raise StoreUnavailable("database unavailable: OperationalError: locked")

    store = sqlite_store(tmp_path / "gateway.sqlite")
    try:
        imported = import_received(store, now=NOW)
        monkeypatch.setattr(store_engine, "checkpoint_wal", unavailable)
        with caplog.at_level("WARNING"):
            record = Mailbox(store).decline(imported.message.pk, reason="not ours", now=NOW)
        assert record.status == "declined"
        assert "WAL checkpoint after a deletion failed: OSO-E502" in caplog.text
    finally:
        store.engine.dispose()
