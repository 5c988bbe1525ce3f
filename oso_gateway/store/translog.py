"""Storage of the hash-chained transfer log (the chain itself: ``oso_gateway.transfer.logchain``).

Appending reads the head and inserts the next links in the same transaction, under a lock that
serialises appenders: on PostgreSQL a transaction-scoped advisory lock, on SQLite the write lock
every store write transaction takes when it begins. So concurrent workers (threads, processes,
machines) extend one unbroken chain. Call ``append_log_events`` with the session of a store
transaction (e.g. ``Store.import_inbound(after_insert=...)``) to log atomically with the change
it describes, or ``Store.append_log`` for a transaction of its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from oso_gateway.store import models as m
from oso_gateway.transfer.logchain import GENESIS, StoredEvent, chain

#: pg_advisory_xact_lock key for "append to the transfer log" (any constant, the same everywhere)
_PG_LOCK_KEY = 0x05060A7E


def log_head(session: Session) -> tuple[int, str]:
    """(seq, hash) of the last entry, or (0, GENESIS) for an empty log."""
    row = session.execute(
        select(m.TransferLogEntry.seq, m.TransferLogEntry.hash)
        .order_by(m.TransferLogEntry.seq.desc())
        .limit(1)
    ).first()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def append_log_events(
    session: Session, events: Sequence[Mapping[str, str]], *, now: datetime
) -> list[StoredEvent]:
    """Chain ``events`` (``logchain.make_event``) after the head; add them to ``session``."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    rows = chain(events, after=log_head(session))
    for row in rows:
        session.add(
            m.TransferLogEntry(
                seq=row.seq,
                at=now,
                prev_hash=row.prev_hash,
                hash=row.hash,
                event=json.dumps(dict(row.event), sort_keys=True, separators=(",", ":")),
            )
        )
    session.flush()
    return rows


def log_entries(
    session: Session, *, after_seq: int = 0, limit: int | None = None
) -> list[StoredEvent]:
    stmt = (
        select(m.TransferLogEntry)
        .where(m.TransferLogEntry.seq > after_seq)
        .order_by(m.TransferLogEntry.seq)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        StoredEvent(seq=r.seq, prev_hash=r.prev_hash, hash=r.hash, event=json.loads(r.event))
        for r in session.scalars(stmt)
    ]
