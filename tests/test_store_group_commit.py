"""Group commit of inbound imports on SQLite: concurrent imports share one transaction and one
COMMIT, and each caller learns its outcome only after that COMMIT. On PostgreSQL each import stays
a transaction of its own (no grouping: PostgreSQL merges concurrent WAL flushes itself)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import postgres_schema_engine
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session

from oso_gateway.errors import StoreUnavailable
from oso_gateway.store import AtRestCipher, Duplicate, Imported, Store, create_store_engine, upgrade
from oso_gateway.store import engine as engine_module
from oso_gateway.store.logchain import make_event, verify_chain
from oso_gateway.store.repository import MessageRecord
from oso_gateway.store.translog import append_log_events

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
KEY = bytes(range(32))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_store_engine(f"sqlite:///{tmp_path / 'data' / 'gateway.sqlite'}")
    yield eng
    eng.dispose()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    with postgres_schema_engine(postgres_url, "g") as eng:
        yield eng


@pytest.fixture
def store(engine: Engine) -> Store:
    upgrade(engine)
    return Store(engine, AtRestCipher(KEY))


def _mid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(text(table))).scalar_one())


def _logged(session: Session, record: MessageRecord) -> None:
    event_ = make_event(kind="message", at=NOW, message_id=record.message_id, status="imported")
    append_log_events(session, [event_], now=NOW)


Hook = Callable[[Session, MessageRecord], None]


def _import(store: Store, message_id: str, hook: Hook, receipt: bytes = b"<r/>") -> object:
    try:
        return store.import_inbound(
            message_id=message_id,
            action="urn:oso:dossier:deliver",
            dossier=b"<dossier/>",
            payload_digest="cd" * 32,
            receipt=receipt,
            now=NOW,
            counterpart_oin="00000001000000000001",  # the duplicate key is (signer, MessageID)
            after_insert=hook,
        )
    except Exception as exc:  # the test compares outcomes, failures included
        return exc


def _batched(store: Store, first: str, batch: list[tuple[str, Hook, bytes]]) -> list[object]:
    """Import ``first`` and hold its transaction open until every import of ``batch`` is
    queued behind it; those then run as one group. Outcomes: ``first``'s, then ``batch``'s."""
    entered, release = threading.Event(), threading.Event()

    def hold(session: Session, record: MessageRecord) -> None:
        _logged(session, record)
        entered.set()
        assert release.wait(30)

    outcomes: dict[int, object] = {}

    def run(i: int, message_id: str, hook: Hook, receipt: bytes) -> None:
        outcomes[i] = _import(store, message_id, hook, receipt)

    leader = threading.Thread(target=run, args=(0, first, hold, b"<r/>"))
    leader.start()
    assert entered.wait(30)  # its transaction is open
    followers = [
        threading.Thread(target=run, args=(i, *args)) for i, args in enumerate(batch, start=1)
    ]
    for thread in followers:
        thread.start()
    deadline = time.monotonic() + 30
    while len(store._imports._queue) < len(batch):  # all queued behind the open transaction
        assert time.monotonic() < deadline
        time.sleep(0.001)
    release.set()
    for thread in [leader, *followers]:
        thread.join()
    return [outcomes[i] for i in range(len(batch) + 1)]


def _count_commits(engine: Engine) -> list[int]:
    commits = [0]

    def on_commit(_conn: Any) -> None:
        commits[0] += 1

    event.listen(engine, "commit", on_commit)
    return commits


def test_concurrent_imports_share_one_commit_and_each_is_stored(store: Store) -> None:
    commits = _count_commits(store.engine)
    ids = [_mid() for _ in range(4)]
    outcomes = _batched(store, ids[0], [(mid, _logged, b"<r/>") for mid in ids[1:]])
    assert all(isinstance(o, Imported) for o in outcomes), outcomes
    assert commits[0] == 2  # the first alone, then the three queued behind it together
    assert _count(store.engine, "dossiers") == 4
    assert _count(store.engine, "message_events") == 12
    for mid in ids:
        assert store.find_message("in", mid) is not None
    entries = store.log_entries()
    assert len(entries) == 4 * 4  # per import: the hook's entry, then received, verified, imported
    verify_chain(entries)  # savepoints in one transaction still extend one unbroken chain


def test_a_failing_import_in_a_group_is_undone_alone(store: Store) -> None:
    def explode(session: Session, record: MessageRecord) -> None:
        _logged(session, record)
        raise RuntimeError("hook failed")

    ids = [_mid() for _ in range(4)]
    outcomes = _batched(
        store,
        ids[0],
        [(ids[1], _logged, b"<r/>"), (ids[2], explode, b"<r/>"), (ids[3], _logged, b"<r/>")],
    )
    assert isinstance(outcomes[2], RuntimeError)
    assert [isinstance(o, Imported) for o in (outcomes[0], outcomes[1], outcomes[3])] == [True] * 3
    assert store.find_message("in", ids[2]) is None
    assert _count(store.engine, "dossiers") == 3
    assert _count(store.engine, "message_events") == 9
    entries = store.log_entries()
    assert len(entries) == 3 * 4  # the failed import's entries went with it
    verify_chain(entries)


def test_the_same_message_twice_in_one_group_is_imported_once(store: Store) -> None:
    first, twice = _mid(), _mid()
    outcomes = _batched(
        store, first, [(twice, _logged, b"<r>one</r>"), (twice, _logged, b"<r>other</r>")]
    )
    # whichever was queued first is imported; the other gets its row and receipt
    imported = [o for o in outcomes[1:] if isinstance(o, Imported)]
    duplicates = [o for o in outcomes[1:] if isinstance(o, Duplicate)]
    assert len(imported) == 1 and len(duplicates) == 1, outcomes
    assert duplicates[0].message.pk == imported[0].message.pk
    assert duplicates[0].message.receipt == imported[0].message.receipt
    assert _count(store.engine, "dossiers") == 2


def test_when_the_shared_commit_fails_no_import_of_the_group_is_reported_stored(
    store: Store,
) -> None:
    failed = [False]

    def fail_second_commit(_conn: Any) -> None:
        if commits[0] == 2 and not failed[0]:
            failed[0] = True
            raise OSError("disk full")

    commits = _count_commits(store.engine)
    event.listen(store.engine, "commit", fail_second_commit)
    ids = [_mid() for _ in range(3)]
    outcomes = _batched(store, ids[0], [(mid, _logged, b"<r/>") for mid in ids[1:]])
    assert isinstance(outcomes[0], Imported)
    assert all(isinstance(o, OSError) for o in outcomes[1:]), outcomes
    assert _count(store.engine, "dossiers") == 1
    assert [store.find_message("in", mid) is None for mid in ids[1:]] == [True, True]


@pytest.mark.postgres
def test_on_postgresql_an_import_does_not_wait_behind_another_open_one(pg_engine: Engine) -> None:
    upgrade(pg_engine)
    store = Store(pg_engine, AtRestCipher(KEY))
    entered, release = threading.Event(), threading.Event()

    def hold(_session: Session, _record: MessageRecord) -> None:
        entered.set()
        assert release.wait(30)

    outcomes: list[object] = []
    held = threading.Thread(target=lambda: outcomes.append(_import(store, _mid(), hold)))
    held.start()
    assert entered.wait(30)
    try:
        alone = _import(store, _mid(), lambda _s, _r: None)  # its own transaction, committed
        assert isinstance(alone, Imported)
        assert _count(pg_engine, "dossiers") == 1
    finally:
        release.set()
        held.join()
    assert isinstance(outcomes[0], Imported)
    assert _count(pg_engine, "dossiers") == 2


def test_an_import_waits_for_the_writer_lock_another_process_holds(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_file = tmp_path / "data" / "gateway.sqlite-writer.lock"
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)  # another open file: another writer
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
        outcome = _import(store, _mid(), _logged)
        assert isinstance(outcome, StoreUnavailable)  # held past the busy timeout: transient
        assert _count(store.engine, "messages") == 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert isinstance(_import(store, _mid(), _logged), Imported)
    finally:
        os.close(fd)


def test_the_writer_lock_file_sits_beside_a_sqlite_file_and_nowhere_else(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(_import(store, _mid(), _logged), Imported)
    assert (tmp_path / "data" / "gateway.sqlite-writer.lock").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    memory = create_store_engine("sqlite://")
    try:
        with engine_module.writer_gate(memory)():
            pass
    finally:
        memory.dispose()
    assert list(elsewhere.iterdir()) == []  # an in-memory database has no file to lock beside
