"""What the console pages compute beyond the store's listings (``store.transfer_listing``):
the filter from query arguments, what an error code means, and which certificates and CRLs
expire soon (from what the runtime loaded)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from oso_gateway.errors import describe, sender_reading
from oso_gateway.protocol import SCHOOL_PATTERN
from oso_gateway.store import models as m
from oso_gateway.store.transfer_listing import ALL_STATUSES, TransferFilter

SCHOOL_RE = re.compile(SCHOOL_PATTERN)
SINCE_CHOICES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
EXPIRY_WINDOW = timedelta(days=30)


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
