"""What operators see of transfers: message metadata rows for the console's listings.

Only the columns shown are selected (identifiers, schools, OINs, statuses, codes, sizes, digests,
times): no payload, sealed envelope, receipt or dossier is ever loaded here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, func, or_, select

from oso_gateway.store import models as m
from oso_gateway.store.engine import unavailable_as_typed_error

#: shown first on the dashboard and in listings' status menus
FAILURE_STATUSES = (m.FAILED, m.REJECTED, m.RETRYING)
ALL_STATUSES = FAILURE_STATUSES + tuple(
    s for s in (*m.OUTBOUND_STATUSES, *m.INBOUND_STATUSES) if s not in FAILURE_STATUSES
)
_COLUMNS = (
    m.Message.id,
    m.Message.direction,
    m.Message.message_id,
    m.Message.action,
    m.Message.status,
    m.Message.our_oin,
    m.Message.our_school,
    m.Message.counterpart_oin,
    m.Message.counterpart_school,
    m.Message.endpoint,
    m.Message.attempts,
    m.Message.next_attempt_at,
    m.Message.last_error_code,
    m.Message.payload_size,
    m.Message.message_size,
    m.Message.payload_digest,
    m.Message.signer_fingerprint,
    m.Message.created_at,
    m.Message.updated_at,
    m.Message.purged_at,
    m.Message.purge_reason,
)


@dataclass(frozen=True, kw_only=True)
class TransferRow:
    pk: int
    direction: str
    message_id: str
    action: str
    status: str
    our_oin: str | None
    our_school: str | None
    counterpart_oin: str | None
    counterpart_school: str | None
    endpoint: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error_code: str | None
    payload_size: int | None
    message_size: int | None
    payload_digest: str | None
    signer_fingerprint: str | None
    created_at: datetime
    updated_at: datetime
    #: when the retention purge or a subject erasure erased its content (the row stays, its
    #: status as it was)
    purged_at: datetime | None = None
    #: what erased it (``m.PURGED_BY_RETENTION``, ``m.PURGED_BY_ERASURE``); None: not purged, or
    #: purged before the store kept it
    purge_reason: str | None = None

    @property
    def is_failure(self) -> bool:
        return self.status in FAILURE_STATUSES


@dataclass(frozen=True, kw_only=True)
class TransferFilter:
    status: str | None = None
    direction: str | None = None
    school: str | None = None
    since: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Page:
    rows: list[TransferRow]
    #: pass as ``before`` for the next (older) page; None: this is the last page
    next_before: int | None


def _row(values: Sequence[object]) -> TransferRow:
    names = [c.key for c in _COLUMNS]
    data = dict(zip(names, values, strict=True))
    data["pk"] = data.pop("id")
    return TransferRow(**data)  # type: ignore[arg-type]


def _scoped(stmt: Any, schools: Sequence[str] | None) -> Any:
    """Only the messages of ``schools`` (an operator scoped to schools); None: every one."""
    return stmt if schools is None else stmt.where(m.Message.our_school.in_(tuple(schools)))


def list_transfers(
    engine: Engine,
    flt: TransferFilter,
    *,
    limit: int = 25,
    before: int | None = None,
    schools: Sequence[str] | None = None,
) -> Page:
    """Newest first, ``limit`` per page, keyset-paged by ``before`` (a pk)."""
    stmt = _scoped(select(*_COLUMNS).order_by(m.Message.id.desc()).limit(limit + 1), schools)
    if flt.status:
        stmt = stmt.where(m.Message.status == flt.status)
    if flt.direction:
        stmt = stmt.where(m.Message.direction == flt.direction)
    if flt.school:
        school = flt.school
        if len(school) == 6:
            ours, theirs = m.Message.our_school == school, m.Message.counterpart_school == school
        else:  # a BRIN: every vestiging
            ours = m.Message.our_school.startswith(school, autoescape=True)
            theirs = m.Message.counterpart_school.startswith(school, autoescape=True)
        stmt = stmt.where(or_(ours, theirs))
    if flt.since is not None:
        stmt = stmt.where(m.Message.created_at >= flt.since)
    if before is not None:
        stmt = stmt.where(m.Message.id < before)
    return _page(engine, stmt, limit)


def get_transfer(
    engine: Engine, pk: int, *, schools: Sequence[str] | None = None
) -> TransferRow | None:
    stmt = _scoped(select(*_COLUMNS).where(m.Message.id == pk), schools)
    with unavailable_as_typed_error(), engine.connect() as conn:
        found = conn.execute(stmt).first()
    return None if found is None else _row(found)


def quarantine(
    engine: Engine,
    *,
    limit: int = 50,
    before: int | None = None,
    schools: Sequence[str] | None = None,
) -> Page:
    """Rejected inbound and failed outbound messages, newest first."""
    stmt = (
        select(*_COLUMNS)
        .where(
            or_(
                (m.Message.direction == m.IN) & (m.Message.status == m.REJECTED),
                (m.Message.direction == m.OUT) & (m.Message.status == m.FAILED),
            )
        )
        .order_by(m.Message.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        stmt = stmt.where(m.Message.id < before)
    stmt = _scoped(stmt, schools)
    return _page(engine, stmt, limit)


@dataclass(frozen=True, kw_only=True)
class StatusCount:
    direction: str
    status: str
    count: int

    @property
    def is_failure(self) -> bool:
        return self.status in FAILURE_STATUSES


def status_counts(
    engine: Engine, *, since: datetime, schools: Sequence[str] | None = None
) -> list[StatusCount]:
    """Messages created since ``since`` by direction and current status; failures first."""
    stmt = _scoped(
        select(m.Message.direction, m.Message.status, func.count())
        .where(m.Message.created_at >= since)
        .group_by(m.Message.direction, m.Message.status),
        schools,
    )
    with unavailable_as_typed_error(), engine.connect() as conn:
        counts = [
            StatusCount(direction=d, status=s, count=int(n)) for d, s, n in conn.execute(stmt)
        ]
    order = {status: i for i, status in enumerate(ALL_STATUSES)}
    return sorted(counts, key=lambda c: (order.get(c.status, len(order)), c.direction))


def _page(engine: Engine, stmt: Select[*tuple[Any, ...]], limit: int) -> Page:
    """At most ``limit`` rows of ``stmt`` (which selects ``limit + 1`` to know whether more
    follow) and where the next page starts."""
    with unavailable_as_typed_error(), engine.connect() as conn:
        rows = [_row(r) for r in conn.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows=rows, next_before=rows[-1].pk if more and rows else None)
