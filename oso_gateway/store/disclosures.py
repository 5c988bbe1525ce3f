"""Disclosure records and objections (at the sender), subject access (at the receiver).

The pupil is found by a keyed hash of the BSN (or onderwijsnummer): the number itself is never
stored. A disclosure record holds category keys, reasons, dates, school codes and digests: what a
parent may ask about ("what was shared, with whom, when"), without the dossier.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from sqlalchemy import Engine, delete, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from oso_gateway.errors import ConfigError
from oso_gateway.store import models as m
from oso_gateway.store.crypto import AtRestCipher
from oso_gateway.store.engine import advisory_xact_lock, unavailable_as_typed_error, writer
from oso_gateway.store.pull import RequestRecord, record_event

_T = TypeVar("_T")
#: the keyed-hash kind of a pupil number (``AtRestCipher.lookup_hash``)
PUPIL = "bsn"


class DisclosureWriter(Protocol):
    """``PrivacyRecords.disclosure_writer``'s hook: an ``OnInsert`` that also takes the inzage
    record a push goes under."""

    def __call__(
        self,
        session: Session,
        message_id: str,
        message: dict[str, object],
        *,
        inzage_pk: int | None = None,
    ) -> None: ...


@dataclass(frozen=True, kw_only=True)
class DisclosureRecord:
    message_id: str
    sending_school: str | None
    recipient_school: str | None
    recipient_name: str | None
    recipient_oin: str | None
    sent: tuple[str, ...]
    #: (category, reason) pairs
    withheld: tuple[tuple[str, str], ...]
    inzage: dict[str, str] | None
    payload_digest: str | None
    receipt_digest: str | None
    prepared_at: datetime
    delivered_at: datetime | None
    #: the outbound message's status now (None: no such message row), and its delivery attempts
    status: str | None = None
    attempts: int = 0
    #: the request it answered (a pull delivery); None: a push
    relates_to: str | None = None
    #: whether a delivery of it was ever tried (its events; a retry sets ``attempts`` back)
    tried: bool = False
    #: a push: the inzage record it went under (``models.Disclosure.inzage_pk``)
    inzage_pk: int | None = None


@dataclass(frozen=True, kw_only=True)
class ObjectionEntry:
    """Subject access at the sender: one parents' objection recorded for the pupil."""

    school: str
    category: str
    recorded_at: datetime


@dataclass(frozen=True, kw_only=True)
class HeldDossier:
    """Subject access at the receiver: one dossier held about the pupil."""

    message_id: str
    sending_school: str | None
    receiving_school: str | None
    received_at: datetime
    fetched_at: datetime | None
    acknowledged_at: datetime | None
    size: int
    #: the row of the message that brought it (for an erasure on request)
    message_pk: int = 0


@dataclass(frozen=True, kw_only=True)
class OutgoingMessage:
    """Subject access at the sender: a message about the pupil whose content this gateway still
    holds (waiting, being sent, or failed; a delivered or cancelled one's payload is gone): a
    dossier, or a pull request or answer (the pupil's facts, a decline text)."""

    message_id: str
    message_pk: int
    action: str
    recipient_school: str | None
    status: str
    created_at: datetime


def receipt_digest(receipt: bytes) -> str:
    return hashlib.sha256(receipt).hexdigest()


class PrivacyRecords:
    """Repository of disclosures, objections and subject-access lookups."""

    def __init__(self, engine: Engine, cipher: AtRestCipher | None) -> None:
        """``cipher`` is needed only to find a pupil (the keyed hash); None for the console,
        which opens the store without the storage key and looks records up by message id."""
        self.engine = engine
        self._writer = writer(engine)
        self._cipher = cipher

    def _write(self, work: Callable[[Session], _T]) -> _T:
        with unavailable_as_typed_error(), Session(self._writer) as session, session.begin():
            return work(session)

    def _read(self, work: Callable[[Session], _T]) -> _T:
        with unavailable_as_typed_error(), Session(self.engine) as session, session.begin():
            return work(session)

    def pupil_hash(self, pupil_number: str) -> str:
        if self._cipher is None:
            raise ConfigError("finding a pupil needs the storage keyring (its lookup key)")
        return self._cipher.lookup_hash(PUPIL, pupil_number)

    # --- objections ------------------------------------------------------------------------------

    def record_objection(
        self, *, school: str, pupil_number: str, category: str, now: datetime
    ) -> bool:
        """Record the parents' objection; False when it was already recorded. The transfer log
        says so in the same transaction (``store.pull.record_event``)."""
        row = m.Objection(
            school=school,
            bsn_hmac=self.pupil_hash(pupil_number),
            category=category,
            recorded_at=now,
        )

        def work(session: Session) -> None:
            session.add(row)
            session.flush()  # a second one is refused here, before the event
            record_event(session, "objection.add", school, now=now)

        try:
            self._write(work)
        except sa_exc.IntegrityError:
            return False
        return True

    def withdraw_objection(
        self, *, school: str, pupil_number: str, category: str, now: datetime | None = None
    ) -> bool:
        """Withdraw an objection (its row goes); the transfer log keeps that it was withdrawn,
        when and at which school (an objection withdrawn just before a send left no trace: an
        administrator's walkthrough)."""
        hashed = self.pupil_hash(pupil_number)
        at = now or datetime.now(UTC)

        def work(session: Session) -> bool:
            result = session.execute(
                delete(m.Objection).where(
                    m.Objection.school == school,
                    m.Objection.bsn_hmac == hashed,
                    m.Objection.category == category,
                )
            )
            gone = bool(getattr(result, "rowcount", 0))
            if gone:
                record_event(session, "objection.remove", school, now=at)
            return gone

        return self._write(work)

    def objections_for(self, school: str, pupil_number: str) -> list[str]:
        hashed = self.pupil_hash(pupil_number)
        return self._read(
            lambda session: list(
                session.scalars(
                    select(m.Objection.category)
                    .where(m.Objection.school == school, m.Objection.bsn_hmac == hashed)
                    .order_by(m.Objection.category)
                )
            )
        )

    def objections_about(self, pupil_number: str) -> list[ObjectionEntry]:
        """Every school's objections for the pupil (subject access), oldest first."""
        hashed = self.pupil_hash(pupil_number)
        stmt = (
            select(m.Objection.school, m.Objection.category, m.Objection.recorded_at)
            .where(m.Objection.bsn_hmac == hashed)
            .order_by(m.Objection.recorded_at, m.Objection.school, m.Objection.category)
        )
        return self._read(
            lambda session: [
                ObjectionEntry(school=school, category=category, recorded_at=at)
                for school, category, at in session.execute(stmt)
            ]
        )

    # --- disclosures -----------------------------------------------------------------------------

    def disclosure_writer(
        self,
        *,
        pupil_number: str | None,
        sent: Sequence[str],
        withheld: Sequence[tuple[str, str]],
        inzage: dict[str, str] | None,
        recipient_name: str | None,
        now: datetime,
    ) -> DisclosureWriter:
        """A hook that adds the disclosure row inside the outbox insert's transaction;
        ``inzage_pk``: the inzage record a push goes under (``models.Disclosure.inzage_pk``)."""
        hashed = self.pupil_hash(pupil_number) if pupil_number else None

        def write(
            session: Session,
            message_id: str,
            message: dict[str, object],
            *,
            inzage_pk: int | None = None,
        ) -> None:
            session.add(
                m.Disclosure(
                    message_id=message_id,
                    sending_school=message.get("our_school"),
                    recipient_school=message.get("counterpart_school"),
                    recipient_name=recipient_name,
                    recipient_oin=message.get("counterpart_oin"),
                    bsn_hmac=hashed,
                    categories_sent=json.dumps(list(sent)),
                    categories_withheld=json.dumps(
                        [{"category": c, "reason": r} for c, r in withheld]
                    ),
                    inzage=json.dumps(inzage, sort_keys=True) if inzage else None,
                    payload_digest=message.get("payload_digest"),
                    prepared_at=now,
                    inzage_pk=inzage_pk,
                )
            )

        return write

    def disclosures(
        self,
        *,
        message_id: str | None = None,
        pupil_number: str | None = None,
        session: Session | None = None,
    ) -> list[DisclosureRecord]:
        """Newest first, by message id or by pupil; each with its message's status now (a
        record is written when the message is queued: it may since have been cancelled).
        ``session``: read in that transaction (else in one of its own)."""
        tried = (
            select(m.MessageEvent.id)
            .where(m.MessageEvent.message_pk == m.Message.id)
            .where(m.MessageEvent.status.in_(_TRIED))
            .exists()
        )
        stmt = (
            select(m.Disclosure, m.Message.status, m.Message.attempts, m.Message.relates_to, tried)
            .outerjoin(
                m.Message,
                (m.Message.message_id == m.Disclosure.message_id) & (m.Message.direction == m.OUT),
            )
            .order_by(m.Disclosure.prepared_at.desc(), m.Disclosure.id)
        )
        if message_id is not None:
            stmt = stmt.where(m.Disclosure.message_id == message_id)
        if pupil_number is not None:
            stmt = stmt.where(m.Disclosure.bsn_hmac == self.pupil_hash(pupil_number))

        def read(session: Session) -> list[DisclosureRecord]:
            return [
                _disclosure(row, status, attempts, relates_to, bool(was_tried))
                for row, status, attempts, relates_to, was_tried in session.execute(stmt)
            ]

        return read(session) if session is not None else self._read(read)

    def pushed_on(
        self,
        *,
        school: str,
        pupil_number: str,
        inzage_pk: int,
        recorded_at: datetime,
        session: Session | None = None,
        other_than: str | None = None,
    ) -> bool:
        """Whether a push (no request) of the pupil from ``school`` went under the inzage record
        ``inzage_pk`` (its disclosure record names it) and left, or may have (it was tried): one
        cancelled before any attempt never left. No times are compared: an inzage's recording
        time and a push's queue time come from the clocks of two processes, maybe on two hosts
        (a skew let a second push go on one inzage, or refused the first). Only a record made
        before pushes named their inzage (``INZAGE_UNLINKED``) is taken, as then, as made on
        the inzage when queued at or after its ``recorded_at``. Whether a push was tried is read
        from its events, not its attempt count, which a retry sets back to 0 (a retried push
        that may have arrived, then cancelled, let a second push go on the same inzage: a
        review). ``other_than``: a message id not to count (the one being queued)."""

        def went_under(d: DisclosureRecord) -> bool:
            if d.inzage_pk == m.INZAGE_UNLINKED:
                return d.prepared_at >= recorded_at
            return d.inzage_pk == inzage_pk

        return any(
            d.sending_school == school
            and d.relates_to is None
            and went_under(d)
            and d.message_id != other_than
            and not (d.status == m.CANCELLED and not d.tried)
            for d in self.disclosures(pupil_number=pupil_number, session=session)
        )

    # --- subject access ------------------------------------------------------------------------

    def outgoing_about(
        self, pupil_number: str, *, requests: Sequence[RequestRecord] = ()
    ) -> list[OutgoingMessage]:
        """The outgoing messages about the pupil whose content this gateway still holds, oldest
        first: the dossiers (found by their disclosure records), and the messages of the pull
        ``requests`` naming the pupil: our request itself, and the answers and deliveries
        relating to it that went to the request's counterpart for the request's school (a peer
        chooses the id of a request it sends: the id alone could name another pupil's)."""
        hashed = self.pupil_hash(pupil_number)
        # One look-up per kind, each on an index (an OR of them scanned every outgoing
        # message); ``OUT_NOT_REJECTED`` as written lets SQLite use the partial index on
        # outgoing MessageIDs (an outgoing message is never rejected: it changes nothing).
        held = (
            text(m.OUT_NOT_REJECTED),
            m.Message.purged_at.is_(None),
            m.Message.status.not_in((m.DELIVERED, m.CANCELLED)),
        )
        lookups = []
        for r in requests:
            lookups.append(
                select(m.Message).where(
                    m.Message.direction == m.OUT,
                    m.Message.relates_to == r.request_id,
                    m.Message.counterpart_oin == r.counterpart_oin,
                    m.Message.our_school == r.our_school,
                    *held,
                )
            )
            if r.side == m.REQUESTER:
                lookups.append(
                    select(m.Message).where(
                        m.Message.message_id == r.request_id,
                        m.Message.counterpart_oin == r.counterpart_oin,
                        *held,
                    )
                )

        def work(session: Session) -> list[OutgoingMessage]:
            ids = session.scalars(
                select(m.Disclosure.message_id).where(m.Disclosure.bsn_hmac == hashed)
            ).all()
            dossiers = select(m.Message).where(m.Message.message_id.in_(ids), *held)
            found: dict[int, m.Message] = {}
            for lookup in (dossiers, *lookups):
                found.update((row.id, row) for row in session.scalars(lookup))
            rows = sorted(found.values(), key=lambda row: (row.created_at, row.id))
            return [
                OutgoingMessage(
                    message_id=row.message_id,
                    message_pk=row.id,
                    action=row.action,
                    recipient_school=row.counterpart_school,
                    status=row.status,
                    created_at=row.created_at,
                )
                for row in rows
            ]

        return self._read(work)

    def held_about(self, pupil_number: str) -> list[HeldDossier]:
        """The dossiers this gateway holds about the pupil (purged ones are no longer held)."""
        hashed = self.pupil_hash(pupil_number)
        stmt = (
            select(m.Dossier, m.Message.message_id)
            .join(m.DossierIndex, m.DossierIndex.dossier_id == m.Dossier.id)
            .join(m.Message, m.Message.id == m.Dossier.message_pk)
            .where(m.DossierIndex.bsn_hmac == hashed, m.Message.purged_at.is_(None))
            .order_by(m.Dossier.imported_at)
        )
        return self._read(
            lambda session: [
                HeldDossier(
                    message_id=message_id,
                    sending_school=d.sending_school,
                    receiving_school=d.receiving_school,
                    received_at=d.imported_at,
                    fetched_at=d.fetched_at,
                    acknowledged_at=d.acknowledged_at,
                    size=d.size,
                    message_pk=d.message_pk,
                )
                for d, message_id in session.execute(stmt)
            ]
        )


def lock_pupil_pushes(session: Session, school: str, pupil_hash: str) -> None:
    """Queue the transactions that check and queue a push of one pupil from one school until
    this one ends: on PostgreSQL a transaction-scoped advisory lock on their hash; SQLite's
    write transactions (``BEGIN IMMEDIATE``) are queued already."""
    advisory_xact_lock(session, "push", school, pupil_hash)


#: the statuses a message enters only once a delivery of it was tried
_TRIED = (m.SENDING, m.AWAITING_RECEIPT, m.RETRYING, m.FAILED, m.DELIVERED)


def _disclosure(
    row: m.Disclosure,
    status: str | None,
    attempts: int | None,
    relates_to: str | None = None,
    tried: bool = False,
) -> DisclosureRecord:
    return DisclosureRecord(
        message_id=row.message_id,
        sending_school=row.sending_school,
        recipient_school=row.recipient_school,
        recipient_name=row.recipient_name,
        recipient_oin=row.recipient_oin,
        sent=tuple(json.loads(row.categories_sent)),
        withheld=tuple((w["category"], w["reason"]) for w in json.loads(row.categories_withheld)),
        inzage=json.loads(row.inzage) if row.inzage else None,
        payload_digest=row.payload_digest,
        receipt_digest=row.receipt_digest,
        prepared_at=row.prepared_at,
        delivered_at=row.delivered_at,
        status=status,
        attempts=attempts or 0,
        relates_to=relates_to,
        tried=tried or bool(attempts),
        inzage_pk=row.inzage_pk,
    )
