"""Storage of the hash-chained transfer log (the chain itself: ``oso_gateway.store.logchain``).

Appending reads the head and inserts the next links in the same transaction, under a lock that
serialises appenders: on PostgreSQL a transaction-scoped advisory lock, on SQLite the write lock
every store write transaction takes when it begins. So concurrent workers (threads, processes,
machines) extend one unbroken chain. Call ``append_log_events`` with the session of a store
transaction (e.g. ``Store.import_inbound(after_insert=...)``) to log atomically with the change
it describes, or ``Store.append_log`` for a transaction of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from oso_gateway.errors import LogChainBroken
from oso_gateway.store import models as m
from oso_gateway.store.logchain import (
    FIELD_FORMATS,
    GENESIS,
    StoredEvent,
    chain,
    make_event,
    verify_chain,
)

#: pg_advisory_xact_lock key for "append to the transfer log" (any constant, the same everywhere)
_PG_LOCK_KEY = 0x05060A7E


def log_base(session: Session) -> tuple[int, str]:
    """(seq, hash) of the last event pruned from the log (``prune_log_batch``), which the first
    stored event links to; (0, GENESIS) while nothing was pruned."""
    row = session.execute(
        select(m.TransferLogBase.through_seq, m.TransferLogBase.hash)
        .order_by(m.TransferLogBase.through_seq.desc())
        .limit(1)
    ).first()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def log_head(session: Session) -> tuple[int, str]:
    """(seq, hash) of the last entry; for an empty log its base ((0, GENESIS) if never pruned)."""
    row = session.execute(
        select(m.TransferLogEntry.seq, m.TransferLogEntry.hash)
        .order_by(m.TransferLogEntry.seq.desc())
        .limit(1)
    ).first()
    return log_base(session) if row is None else (int(row[0]), str(row[1]))


def _lock(session: Session) -> None:
    """Serialise with every other appender (SQLite: the write transaction already does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def append_log_events(
    session: Session, events: Sequence[Mapping[str, str]], *, now: datetime
) -> list[StoredEvent]:
    """Chain ``events`` (``logchain.make_event``) after the head; add them to ``session``."""
    _lock(session)
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


def message_log_event(
    message: m.Message | Mapping[str, Any],
    status: str,
    now: datetime,
    error_code: str | None = None,
) -> dict[str, str]:
    """The transfer-log event of a message entering ``status``, from its ``messages`` row (an
    ORM object or the column values of a Core insert): direction, id, action, schools, OINs,
    size, attempt, payload digest and the certificate fingerprint (the receipt's signer for an
    outbound message, the dossier's signer for an inbound one). A value not of its field's strict
    form (a peer's odd MessageID or action) is left out rather than failing the transaction."""

    def get(name: str) -> Any:
        if isinstance(message, Mapping):
            return message.get(name)
        return getattr(message, name)

    direction = get("direction")
    school = get("counterpart_school") or ""
    ours = get("our_school") or ""
    size = get("payload_size")
    fields: dict[str, object] = {
        "direction": direction,
        "message_id": get("message_id"),
        "action": get("action"),
        "error_code": error_code,
        "counterpart_brin": school[:4] or None,
        "counterpart_vestiging": school[4:] or None,
        "counterpart_oin": get("counterpart_oin"),
        "school_brin": ours[:4] or None,
        "school_vestiging": ours[4:] or None,
        "size_bytes": size if size is not None else get("message_size"),
        "attempt": get("attempts") or None,
        "payload_digest": get("payload_digest"),
        "peer_fingerprint" if direction == m.OUT else "signer_fingerprint": get(
            "signer_fingerprint"
        ),
    }
    kept = {
        name: value
        for name, value in fields.items()
        if value is not None and re.fullmatch(FIELD_FORMATS[name], str(value))
    }
    return make_event(at=now, kind="message", status=status, **kept)


def log_entries(
    session: Session,
    *,
    after_seq: int = 0,
    limit: int | None = None,
    containing: str | None = None,
) -> list[StoredEvent]:
    """Entries after ``after_seq`` in order; ``containing``: only those whose stored JSON contains
    that text (a pre-filter in SQL: callers still check the parsed event)."""
    stmt = (
        select(m.TransferLogEntry)
        .where(m.TransferLogEntry.seq > after_seq)
        .order_by(m.TransferLogEntry.seq)
    )
    if containing is not None:
        escaped = containing.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(m.TransferLogEntry.event.like(f"%{escaped}%", escape="\\"))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        StoredEvent(seq=r.seq, prev_hash=r.prev_hash, hash=r.hash, event=json.loads(r.event))
        for r in session.scalars(stmt)
    ]


#: the operation of the event that records a pruning step (``log_seq``/``log_hash``: the new base)
PRUNE_OPERATION = "retention.transfer_log"


def logged_at(event: Mapping[str, str]) -> datetime | None:
    """When an event says it happened: its ``at`` field, which its hash covers (the row's
    ``at`` column does not, so it decides nothing); None for one that does not parse."""
    try:
        return datetime.strptime(event["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return None


def _due_prefix(session: Session, *, before: datetime, limit: int | None) -> list[StoredEvent]:
    """The stored events from the first on that say they happened before ``before``, up to the
    first that does not (or does not say), at most ``limit``."""
    log = m.TransferLogEntry
    stmt = select(log.seq, log.prev_hash, log.hash, log.event).order_by(log.seq)
    if limit is not None:
        stmt = stmt.limit(limit)
    prefix: list[StoredEvent] = []
    for seq, prev_hash, digest, text_ in session.execute(stmt.execution_options(yield_per=1000)):
        event = json.loads(text_)
        at = logged_at(event)
        if at is None or at >= before:
            break
        prefix.append(StoredEvent(seq=seq, prev_hash=prev_hash, hash=digest, event=event))
    return prefix


def due_for_pruning(session: Session, before: datetime) -> tuple[int, int]:
    """(how many, through which seq) of the stored events ``prune_log_batch`` would remove."""
    prefix = _due_prefix(session, before=before, limit=None)
    if not prefix:
        return 0, log_base(session)[0]
    return len(prefix), prefix[-1].seq


def prune_log_batch(
    session: Session,
    *,
    before: datetime,
    batch: int,
    now: datetime,
    before_delete: Callable[[Sequence[StoredEvent]], None],
    sign_base: Callable[[StoredEvent], None],
) -> list[StoredEvent]:
    """Remove the oldest stored events that happened before ``before``, at most ``batch`` of
    them (only a prefix of the chain: pruning stops at the first younger event), and return
    them.

    In one transaction, under the appenders' lock. The events must link from the current base
    (or the genesis), untouched: otherwise nothing is pruned (``LogChainBroken``), so the gateway
    never signs a base over events someone changed in the database. ``before_delete`` is handed
    them first (to archive them, and to check them against the anchors); the last one becomes
    the new base, the events are deleted (the delete trigger lets through exactly those up to
    the base), ``sign_base`` signs the base, and one event records the step
    (``PRUNE_OPERATION``, the number pruned and the new base), so the kept chain itself says
    where it starts. A failure anywhere leaves everything as it was (a base anchor signed just
    before a failed commit names events that were due and untouched).
    """
    _lock(session)
    prefix = _due_prefix(session, before=before, limit=batch)
    if not prefix:
        return []
    start = log_base(session)
    checked = verify_chain(prefix, start=start)
    if not checked.ok:
        raise LogChainBroken(
            f"the transfer log does not verify at event {checked.broken_seq} "
            f"({checked.reason}), where it was to be pruned: nothing was pruned; run "
            "`oso-gateway log verify`"
        )
    before_delete(prefix)
    last = prefix[-1]
    session.add(m.TransferLogBase(through_seq=last.seq, hash=last.hash, pruned_at=now))
    session.flush()
    session.execute(delete(m.TransferLogEntry).where(m.TransferLogEntry.seq <= last.seq))
    sign_base(last)
    event = make_event(
        at=now,
        kind="system",
        status="done",
        operation=PRUNE_OPERATION,
        count=len(prefix),
        log_seq=last.seq,
        log_hash=last.hash,
    )
    append_log_events(session, [event], now=now)
    return prefix
