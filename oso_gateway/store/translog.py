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
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from oso_gateway.errors import LogChainBroken
from oso_gateway.protocol import ACTION_ANSWER, ACTION_REQUEST, PULL_SIZE_STEP
from oso_gateway.store import models as m
from oso_gateway.store.logchain import (
    FIELD_FORMATS,
    GENESIS,
    Anchor,
    StoredEvent,
    base_signed,
    chain,
    event_time,
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
    if size is None:
        size = get("message_size")
    if size is not None and get("action") in (ACTION_REQUEST, ACTION_ANSWER):
        size = -(-size // PULL_SIZE_STEP) * PULL_SIZE_STEP  # no name's length (see there)
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
        "size_bytes": size,
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


def _rows(session: Session, *, after: int, limit: int | None) -> Iterator[StoredEvent]:
    log = m.TransferLogEntry
    stmt = select(log.seq, log.prev_hash, log.hash, log.event).where(log.seq > after)
    stmt = stmt.order_by(log.seq)
    if limit is not None:
        stmt = stmt.limit(limit)
    for seq, prev_hash, digest, text_ in session.execute(stmt.execution_options(yield_per=1000)):
        try:
            event = json.loads(text_)
        except ValueError:
            event = None
        if not isinstance(event, dict):  # not an event: never due, and its link does not verify
            event = {}
        yield StoredEvent(seq=seq, prev_hash=prev_hash, hash=digest, event=event)


def _due_prefix(
    session: Session, *, after: int, before: datetime, limit: int | None
) -> list[StoredEvent]:
    """The stored events after ``after`` that say they happened before ``before``, up to the
    first that does not (or does not say), at most ``limit``."""
    prefix: list[StoredEvent] = []
    for row in _rows(session, after=after, limit=limit):
        at = event_time(row.event)
        if at is None or at >= before:
            break
        prefix.append(row)
    return prefix


def anchored_through(due_through: int, base_seq: int, anchors: Sequence[Anchor]) -> int:
    """How far pruning may go when events up to ``due_through`` are due: through all of them
    when an anchor names one of them or a later event (that anchor vouches for every event
    before it), else through the last anchored one; ``base_seq`` when none is anchored yet."""
    seqs = [a.seq for a in anchors if a.seq > base_seq]
    if any(seq >= due_through for seq in seqs):
        return due_through
    return max((seq for seq in seqs if seq <= due_through), default=base_seq)


def due_for_pruning(
    session: Session, before: datetime, anchors: Sequence[Anchor]
) -> tuple[int, int]:
    """(how many, through which seq) of the stored events pruning would remove now."""
    base = log_base(session)[0]
    prefix = _due_prefix(session, after=base, before=before, limit=None)
    if not prefix:
        return 0, base
    through = anchored_through(prefix[-1].seq, base, anchors)
    return through - base, through


def prune_log_batch(
    session: Session,
    *,
    before: datetime,
    batch: int,
    now: datetime,
    read_anchors: Callable[[], Sequence[Anchor]],
    before_delete: Callable[[Sequence[StoredEvent]], None],
    sign_base: Callable[[StoredEvent], None],
) -> list[StoredEvent]:
    """Remove the oldest stored events that happened before ``before``, at most ``batch`` of
    them, and return them. In one transaction, under the appenders' lock.

    The gateway signs a new base only over events it can vouch for, from the anchors that
    ``read_anchors`` reads once the lock is held (the anchor file, which the database's users
    cannot write; read then, it holds every base another purge signed before this one):

    - the log's current base must be the genesis or one a base anchor names;
    - only events up to an anchored one go, and the stored events from the base up to the
      anchor that covers the batch (the first at or after its last event) must link and end in
      exactly the anchored hash: whatever someone changed in the database since the gateway
      anchored it, even with recomputed hashes, is refused (``LogChainBroken``); events not
      anchored yet wait for the next anchor;
    - which events are due is read from the time in each event, which its hash covers.

    Then ``before_delete`` is handed the events (to archive them), the last one becomes the new
    base, the events are deleted (the delete trigger lets through exactly those up to the base),
    ``sign_base`` signs the base, and one event records the step (``PRUNE_OPERATION``, the
    number pruned and the new base). A failure anywhere leaves everything as it was.
    """
    _lock(session)
    anchors = read_anchors()
    start = log_base(session)
    if start != (0, GENESIS) and not base_signed(anchors, start):
        raise LogChainBroken(
            f"the log's recorded base, event {start[0]}, is not one a base anchor names: "
            "nothing was pruned; run `oso-gateway log verify`"
        )
    due = _due_prefix(session, after=start[0], before=before, limit=batch)
    through = anchored_through(due[-1].seq, start[0], anchors) if due else start[0]
    if through <= start[0]:
        return []
    prefix = [row for row in due if row.seq <= through]
    cover = min((a.seq for a in anchors if a.seq >= through), default=through)
    span = list(_rows(session, after=start[0], limit=cover - start[0]))
    checked = verify_chain(span, start=start)
    problem = checked.reason if not checked.ok else ""
    if not problem and checked.head_seq != cover:
        problem = f"the log ends at event {checked.head_seq}, before its anchored event {cover}"
    stored = {row.seq: row.hash for row in span}
    for anchor in anchors:
        if start[0] < anchor.seq <= cover and not problem and stored[anchor.seq] != anchor.hash:
            problem = f"event {anchor.seq} is not the one its anchor names"
    newest = max(anchors, key=lambda a: a.seq, default=None)
    if not problem and newest is not None and newest.seq > cover:
        # the newest anchor must still name what the log holds there (a chain rewritten
        # shorter behind it, which a later anchor already vouched for, is refused here)
        found = session.scalar(
            select(m.TransferLogEntry.hash).where(m.TransferLogEntry.seq == newest.seq)
        )
        if found != newest.hash:
            problem = f"event {newest.seq} is not the one its anchor names"
    if problem:
        raise LogChainBroken(
            f"the transfer log does not verify where it was to be pruned ({problem}): nothing "
            "was pruned; run `oso-gateway log verify`"
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
