"""Read-only queries behind the console pages: metadata only, never a payload or dossier.

The console selects the columns it shows (identifiers, schools, OINs, statuses, codes, sizes,
digests, times) and nothing else: no payload, sealed envelope, receipt or dossier is ever loaded.
Expiry of certificates and CRLs is computed here from the configured files and the directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import Engine, func, or_, select

from oso_gateway.errors import GatewayError, describe, sender_reading
from oso_gateway.store import models as m
from oso_gateway.store.engine import unavailable_as_typed_error

#: shown first on the dashboard and in listings' status menus
FAILURE_STATUSES = (m.FAILED, m.REJECTED, m.RETRYING)
ALL_STATUSES = FAILURE_STATUSES + tuple(
    s for s in (*m.OUTBOUND_STATUSES, *m.INBOUND_STATUSES) if s not in FAILURE_STATUSES
)
SCHOOL_RE = re.compile(r"[0-9]{2}[0-9A-Z]{2}([0-9]{2})?")
SINCE_CHOICES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
EXPIRY_WINDOW = timedelta(days=30)

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


def parse_filter(
    args: dict[str, str], *, now: datetime
) -> tuple[TransferFilter, dict[str, str], list[str]]:
    """The filter from query arguments, the accepted arguments (for links) and what was ignored."""
    kept: dict[str, str] = {}
    ignored = []
    status = args.get("status") or None
    if status is not None and status not in ALL_STATUSES:
        ignored.append("status")
        status = None
    direction = args.get("direction") or None
    if direction is not None and direction not in (m.IN, m.OUT):
        ignored.append("direction")
        direction = None
    school = (args.get("school") or "").strip().upper() or None
    if school is not None and not SCHOOL_RE.fullmatch(school):
        ignored.append("school")
        school = None
    since_text = args.get("since") or None
    since = None
    if since_text is not None:
        if since_text in SINCE_CHOICES:
            since = now - SINCE_CHOICES[since_text]
        else:
            ignored.append("since")
            since_text = None
    for key, value in (
        ("status", status),
        ("direction", direction),
        ("school", school),
        ("since", since_text),
    ):
        if value is not None:
            kept[key] = value
    return (
        TransferFilter(status=status, direction=direction, school=school, since=since),
        kept,
        ignored,
    )


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
    with unavailable_as_typed_error(), engine.connect() as conn:
        rows = [_row(r) for r in conn.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows=rows, next_before=rows[-1].pk if more and rows else None)


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
    with unavailable_as_typed_error(), engine.connect() as conn:
        rows = [_row(r) for r in conn.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows=rows, next_before=rows[-1].pk if more and rows else None)


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


@dataclass(frozen=True, kw_only=True)
class ErrorExplanation:
    code: str
    name: str
    public_message: str
    explanation: str
    transient: bool
    side: str  #: "local" (our side) or "remote" (the peer or the input)


def explain(code: str | None, *, direction: str | None = None) -> ErrorExplanation | None:
    """What an error code means (``errors.describe``: its class's docstring and public message);
    on an outgoing message, the sender's reading where the docstring would read backwards."""
    if not code:
        return None
    d = describe(code)
    if d is None:
        return ErrorExplanation(
            code=code,
            name="unknown code",
            public_message="",
            explanation="This gateway version does not know this code.",
            transient=False,
            side="",
        )
    return ErrorExplanation(
        code=code,
        name=d.name,
        public_message=d.public_message,
        explanation=(sender_reading(code) if direction == "out" else "")
        or (d.explanation if d.explanation != "—" else d.public_message),
        transient=d.transient,
        side=d.side,
    )


# --- expiry of certificates and CRLs ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ExpiryItem:
    kind: str  #: "identity certificate", "directory certificate", "trust anchor", "CRL", …
    subject: str
    not_after: datetime | None
    days_left: int | None

    @property
    def expired(self) -> bool:
        return self.days_left is None or self.days_left < 0


def _cert_item(kind: str, cert: x509.Certificate, now: datetime) -> ExpiryItem:
    end = cert.not_valid_after_utc
    return ExpiryItem(
        kind=kind,
        subject=cert.subject.rfc4514_string(),
        not_after=end,
        days_left=(end - now).days if end >= now else -1,
    )


def expiring(
    *,
    certificates: Iterable[tuple[str, x509.Certificate]],
    crls: Iterable[x509.CertificateRevocationList],
    now: datetime,
    window: timedelta = EXPIRY_WINDOW,
) -> list[ExpiryItem]:
    """Certificates and CRLs that expired or expire within ``window``; soonest first."""
    items = []
    seen: set[bytes] = set()
    for kind, cert in certificates:
        fp = cert.fingerprint(hashes.SHA256())
        if fp in seen:
            continue
        seen.add(fp)
        if cert.not_valid_after_utc - now < window:
            items.append(_cert_item(kind, cert, now))
    for crl in crls:
        next_update = crl.next_update_utc
        if next_update is None or next_update - now < window:
            items.append(
                ExpiryItem(
                    kind="CRL (next update)",
                    subject=crl.issuer.rfc4514_string(),
                    not_after=next_update,
                    days_left=None
                    if next_update is None
                    else ((next_update - now).days if next_update >= now else -1),
                )
            )
    return sorted(items, key=lambda i: (i.not_after is not None, i.not_after or now))


def load_cert_files(paths: Iterable[Path]) -> list[x509.Certificate]:
    """Certificates from PEM/DER files (public material only: no private key is read)."""
    from oso_gateway.security.keys import load_certificates

    found = []
    for path in paths:
        try:
            found.extend(load_certificates(path.read_bytes()))
        except (OSError, GatewayError, ValueError):
            continue
    return found
