"""What the store knows in numbers, for the metrics: messages by status, status changes by code,
rejections, delivery times, the outbox's depth and age, and the transfer log's length.

Counts only: no identifier, school or content leaves this module.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session

from oso_gateway.store import models as m
from oso_gateway.store.engine import unavailable_as_typed_error
from oso_gateway.store.translog import log_base, log_head

#: outbound statuses of a message not yet delivered or failed
PENDING = (m.QUEUED, m.SENDING, m.AWAITING_RECEIPT, m.RETRYING)


@dataclass(frozen=True, kw_only=True)
class MessageStats:
    by_status: list[tuple[str, str, int]]  #: (direction, current status, messages)
    by_event: list[tuple[str, str, str | None, int]]  #: (direction, status entered, code, count)
    rejections_by_code: dict[str, int]  #: from the transfer log ("none": no code)
    log_events: int  #: entries in the transfer log
    delivered_within: list[int]  #: per bucket bound: deliveries that took at most that long
    delivered_count: int
    delivered_seconds: float  #: the sum of all delivery times
    pending: dict[str, int]  #: outbound messages by pending status
    oldest_pending: datetime | None  #: when the oldest pending outbound message was queued


def message_stats(engine: Engine, *, buckets: Sequence[float]) -> MessageStats:
    """The numbers in one read (``buckets``: delivery-time bounds in seconds)."""
    with unavailable_as_typed_error(), Session(engine) as session:
        seq, hash_ = log_head(session)
        delivered = _delivery_times(session, buckets)
        oldest = session.execute(
            select(func.min(m.Message.created_at)).where(
                m.Message.direction == m.OUT, m.Message.status.in_(PENDING)
            )
        ).scalar_one()
        return MessageStats(
            by_status=[
                (d, s, int(n))
                for d, s, n in session.execute(
                    select(m.Message.direction, m.Message.status, func.count())
                    .group_by(m.Message.direction, m.Message.status)
                    .order_by(m.Message.direction, m.Message.status)
                )
            ],
            by_event=[
                (d, s, c, int(n))
                for d, s, c, n in session.execute(
                    select(
                        m.Message.direction,
                        m.MessageEvent.status,
                        m.MessageEvent.error_code,
                        func.count(),
                    )
                    .join(m.Message, m.Message.id == m.MessageEvent.message_pk)
                    .group_by(m.Message.direction, m.MessageEvent.status, m.MessageEvent.error_code)
                    .order_by(m.Message.direction, m.MessageEvent.status, m.MessageEvent.error_code)
                )
            ],
            rejections_by_code=_REJECTIONS.count(session, up_to=(seq, hash_)),
            log_events=seq,
            delivered_within=delivered[0],
            delivered_count=delivered[1],
            delivered_seconds=delivered[2],
            pending=_pending(session),
            oldest_pending=None if oldest is None else _aware(oldest),
        )


def _delivery_times(session: Session, buckets: Sequence[float]) -> tuple[list[int], int, float]:
    took = _seconds_between(session, m.Message.created_at, m.Message.updated_at)
    row = session.execute(
        select(
            *(func.sum(case((took <= bound, 1), else_=0)) for bound in buckets),
            func.count(),
            func.sum(took),
        ).where(m.Message.direction == m.OUT, m.Message.status == m.DELIVERED)
    ).one()
    return [int(v or 0) for v in row[:-2]], int(row[-2] or 0), float(row[-1] or 0)


def _pending(session: Session) -> dict[str, int]:
    return {
        status: int(n)
        for status, n in session.execute(
            select(m.Message.status, func.count())
            .where(m.Message.direction == m.OUT, m.Message.status.in_(PENDING))
            .group_by(m.Message.status)
        )
    }


def _seconds_between(session: Session, start: Any, end: Any) -> Any:
    """SQL for the seconds from ``start`` to ``end`` (two timestamp columns)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


class _RejectionTally:
    """Rejections by code, counted from the append-only transfer log incrementally: each scrape
    reads only the entries appended since the previous one (per engine). If the entry last
    counted is no longer what it was (a restored backup), it counts afresh; one pruned since
    (``retention.transfer_log_days``) was counted, so the count goes on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: weakref.WeakKeyDictionary[Engine, tuple[int, str, dict[str, int]]] = (
            weakref.WeakKeyDictionary()
        )

    def count(self, session: Session, *, up_to: tuple[int, str]) -> dict[str, int]:
        engine = session.get_bind().engine
        with self._lock:
            seen, seen_hash, counts = self._state.get(engine, (0, "", {}))
        if seen:
            still = session.execute(
                select(m.TransferLogEntry.hash).where(m.TransferLogEntry.seq == seen)
            ).scalar_one_or_none()
            # pruned since (retention.transfer_log_days): counted already, keep counting on
            pruned = still is None and seen <= log_base(session)[0]
            if still != seen_hash and not pruned:
                seen, counts = 0, {}
        counts = dict(counts)
        for (event,) in session.execute(
            select(m.TransferLogEntry.event).where(
                m.TransferLogEntry.seq > seen,
                m.TransferLogEntry.seq <= up_to[0],
                m.TransferLogEntry.event.like('%"status":"rejected"%'),
            )
        ):
            code = _json_field(event, "error_code") or "none"
            counts[code] = counts.get(code, 0) + 1
        with self._lock:
            self._state[engine] = (up_to[0], up_to[1], counts)
        return counts


_REJECTIONS = _RejectionTally()


def _json_field(text: str, name: str) -> str | None:
    value = json.loads(text).get(name)
    return value if isinstance(value, str) else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
