"""A declined dossier's reason is kept encrypted under a data key of its own (migration 0010).

The reason a school's system gives is free text and may name the pupil: it must not be readable
in the database, it is bound to its message (a ciphertext moved to another row does not open),
the retention purge destroys it after the period of received content, and a reason stored as
typed before the migration is encrypted by ``keys rotate``. SQLite (file and WAL bytes) and
PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update
from store_support import import_received

from oso_gateway.config import RetentionSettings
from oso_gateway.errors import AtRestDecryptionError
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.store.crypto import AtRestCipher
from oso_gateway.store.keyring import LocalKeyProvider
from oso_gateway.store.lifecycle import RECEIVED, Lifecycle, plain_text_rows
from oso_gateway.store.mailbox import Mailbox
from oso_gateway.transfer.lifecycle import purge, rotate

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
KEY = bytes(range(32))
REASON = "Decline-Marker: Jantje de Vries staat hier niet ingeschreven"


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> Store:
    provider = LocalKeyProvider(base_key=KEY, keyring_file=tmp_path / "keyring.json")
    return Store(engine, AtRestCipher(provider=provider))


def _declined(store: Store, *, now: datetime = NOW, reason: str = REASON) -> int:
    """An imported dossier, declined at ``now``; its row's pk."""
    result = import_received(store, now=now, family_name="Vries")
    Mailbox(store).decline(result.message.pk, reason=reason, now=now)
    return result.message.pk


def _stored(engine: Engine, pk: int) -> tuple[str | None, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(m.Message.note, m.Message.note_data_key_id).where(m.Message.id == pk)
        ).one()
    return row[0], row[1]


def _database_holds(engine: Engine, needle: bytes) -> bool:
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database or "")
        wal = path.with_name(path.name + "-wal")
        data = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        return needle in data
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM messages WHERE position(:n IN note) > 0"),
            {"n": needle.decode()},
        ).scalar_one()
    return bool(found)


def test_a_decline_reason_is_stored_encrypted_and_read_back_decrypted(
    store: Store, engine: Engine
) -> None:
    pk = _declined(store)
    note, key_id = _stored(engine, pk)
    assert note is not None and note.startswith("v1:") and key_id is not None
    assert "Decline-Marker" not in note
    assert not _database_holds(engine, b"Decline-Marker")
    record = store.get_message(pk)
    assert record.status == m.DECLINED
    assert Mailbox(store).decline_reason(record) == REASON


def test_a_reason_moved_to_another_message_does_not_open(store: Store, engine: Engine) -> None:
    first, second = _declined(store), _declined(store, reason="another reason")
    note, key_id = _stored(engine, first)
    with engine.begin() as conn:  # someone with database access swaps the reasons
        conn.execute(
            update(m.Message)
            .where(m.Message.id == second)
            .values(note=note, note_data_key_id=key_id)
        )
    with pytest.raises(AtRestDecryptionError) as refused:
        Mailbox(store).decline_reason(store.get_message(second))
    assert refused.value.code == "OSO-E504" and "Decline-Marker" not in str(refused.value)


def test_the_retention_purge_destroys_a_decline_reason_after_its_period(
    store: Store, engine: Engine
) -> None:
    policy = RetentionSettings()
    old = _declined(store, now=NOW - timedelta(days=policy.received_acknowledged_days + 1))
    recent = _declined(store, now=NOW - timedelta(days=1))
    _note, old_key = _stored(engine, old)
    lifecycle = Lifecycle(engine, store.cipher)

    result = purge(lifecycle, policy, now=NOW)

    assert store.get_message(old).message_id in result.purged[RECEIVED]
    assert _stored(engine, old) == (None, None)
    with engine.connect() as conn:  # the reason's data key is gone: shredded
        assert conn.execute(select(m.DataKeyRow).where(m.DataKeyRow.id == old_key)).first() is None
    assert Mailbox(store).decline_reason(store.get_message(old)) is None
    assert store.get_message(old).purged_at is not None
    assert Mailbox(store).decline_reason(store.get_message(recent)) == REASON
    assert purge(lifecycle, policy, now=NOW).total == 0  # nothing is due twice


def test_a_reason_stored_as_typed_before_the_migration_is_encrypted_by_keys_rotate(
    store: Store, engine: Engine
) -> None:
    pk = _declined(store)
    with engine.begin() as conn:  # as migration 0010 leaves a reason stored before it
        conn.execute(
            update(m.Message).where(m.Message.id == pk).values(note=REASON, note_data_key_id=None)
        )
    mailbox = Mailbox(store)
    assert mailbox.decline_reason(store.get_message(pk)) == REASON  # shown as it is meanwhile
    # counted without a key, so that `db upgrade` and `keys list` say so (nothing did)
    assert plain_text_rows(engine) == 1

    result = rotate(Lifecycle(engine, store.cipher), now=NOW)

    assert result.upgraded >= 1
    assert plain_text_rows(engine) == 0
    note, key_id = _stored(engine, pk)
    assert note is not None and note.startswith("v1:") and key_id is not None
    assert mailbox.decline_reason(store.get_message(pk)) == REASON
