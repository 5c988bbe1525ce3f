"""The schools' inbox and outbox: queries scoped to schools, and the school-side transitions.

``Mailbox`` answers "which messages may this school (or set of schools) see", one message by
its MessageID within those schools, the dossier of an inbound message, and the transitions a
school's system makes: acknowledge (``imported → fetched``), decline (content dropped, row kept
for audit), cancel an outbound message before delivery, retry one that failed. Every transition
is a message event written, with its transfer-log entry, in the same transaction (``Store``).

Scoping is in the SQL: a row whose ``our_school`` is not among the given schools is never read,
so a caller cannot tell another school's message from a missing one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from oso_gateway.errors import DossierPurged
from oso_gateway.store import blobs
from oso_gateway.store import models as m
from oso_gateway.store.crypto import open_note, seal_note
from oso_gateway.store.engine import advisory_xact_lock, checkpoint_after_delete
from oso_gateway.store.records import AfterInsert, MessageRecord, data_key_values, record_of
from oso_gateway.store.repository import Store

#: inbound statuses a school sees in its inbox (rejected messages are the operators' business)
INBOX_STATUSES = (m.IMPORTED, m.FETCHED, m.DECLINED, m.DUPLICATE)
#: outbound statuses a message can still be cancelled in (not on the wire, not delivered)
CANCELLABLE = (m.QUEUED, m.RETRYING, m.FAILED)
RETRYABLE = (m.FAILED, m.RETRYING)


def _drop_payload(session: Session, row: m.Message) -> None:
    """A cancelled outbound message's payload, its data key and any sealed envelope, dropped."""
    if row.payload_data_key_id is not None:  # the payload's key goes with it
        session.execute(delete(m.DataKeyRow).where(m.DataKeyRow.id == row.payload_data_key_id))
        row.payload_data_key_id = None
    blobs.drop(session, row.id)
    row.next_attempt_at = None
    row.lease_until = None


def cancel_outbound_in(session: Session, message_id: str, *, now: datetime) -> bool:
    """Cancel, in the caller's transaction, the outbound message ``message_id`` while it still
    waits (queued, retrying or failed; not on the wire), as ``Mailbox.cancel`` does. False when
    there is no such message or it is past that (being sent, delivered, cancelled)."""
    row = session.scalars(
        select(m.Message)
        .where(m.Message.direction == m.OUT, m.Message.message_id == message_id)
        .with_for_update()
    ).first()
    if row is None or row.status not in CANCELLABLE:
        return False
    _drop_payload(session, row)
    Store._event(session, row, m.CANCELLED, now)
    return True


def first_with_digest(
    session: Session,
    direction: str,
    *,
    our_school: str,
    payload_digest: str,
    since: datetime,
    counterpart_school: str | None = None,
    other_than: int | None = None,
) -> MessageRecord | None:
    """``Mailbox.first_with_digest`` in ``session`` (``other_than``: leave out the message with
    this pk, the one the transaction is queueing)."""
    stmt = (
        select(m.Message)
        .where(
            m.Message.direction == direction,
            m.Message.payload_digest == payload_digest,
            m.Message.our_school == our_school,
            m.Message.created_at >= since,
            m.Message.status.not_in((m.REJECTED, m.CANCELLED, m.DECLINED, m.DUPLICATE)),
        )
        .order_by(m.Message.id)
        .limit(1)
    )
    if counterpart_school is not None:
        stmt = stmt.where(m.Message.counterpart_school == counterpart_school)
    if other_than is not None:
        stmt = stmt.where(m.Message.id != other_than)
    row = session.scalars(stmt).first()
    return None if row is None else record_of(row)


def lock_digest(session: Session, *parts: str) -> None:
    """Queue the transactions that check and queue the same dossier (``parts``: what makes it
    the same) until this one ends: on PostgreSQL a transaction-scoped advisory lock on their
    hash; SQLite's write transactions (``BEGIN IMMEDIATE``) are queued already. (Today the
    queued event's append to the transfer log, under the log's own lock, orders them as well;
    this lock does not depend on where that append sits.)"""
    advisory_xact_lock(session, "duplicate", *parts)


def recheck_digest(
    *,
    our_school: str,
    counterpart_school: str,
    payload_digest: str,
    since: datetime,
    refuse: Callable[[MessageRecord], Exception],
) -> AfterInsert:
    """An ``after_insert`` for the outbox's queueing that looks for an earlier message with
    the same digest once more inside the queueing transaction, under ``lock_digest`` (so of
    several transactions queueing one dossier at once, only the first finds none), and raises
    ``refuse(earlier)`` when there is one: nothing is then queued."""

    def again(session: Session, queued: MessageRecord) -> None:
        lock_digest(session, our_school, counterpart_school, payload_digest)
        earlier = first_with_digest(
            session,
            m.OUT,
            our_school=our_school,
            counterpart_school=counterpart_school,
            payload_digest=payload_digest,
            since=since,
            other_than=queued.pk,
        )
        if earlier is not None:
            raise refuse(earlier)

    return again


class TransitionRefused(Exception):
    """The message is not in a status that allows the transition (``status`` names it)."""

    def __init__(self, status: str) -> None:
        self.status = status
        super().__init__(status)


@dataclass(frozen=True, kw_only=True)
class MessageQuery:
    direction: str
    #: None: every school (an unscoped operator); else only these BRIN+vestiging codes
    schools: Sequence[str] | None
    statuses: Sequence[str] = ()
    counterpart_school: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: cursor: only rows with a smaller pk (newest first)
    before_pk: int | None = None
    limit: int = 50
    #: only messages of these kinds (wsa:Action); empty: every kind
    actions: Sequence[str] = ()


class Mailbox:
    """Inbox and outbox over a ``Store`` (its engine, cipher and event writer)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- reading ------------------------------------------------------------------------------

    def list(self, query: MessageQuery) -> list[MessageRecord]:
        """Newest first, at most ``query.limit`` rows."""

        def work(session: Session) -> list[MessageRecord]:
            stmt = (
                select(m.Message)
                .where(m.Message.direction == query.direction)
                .order_by(m.Message.id.desc())
                .limit(query.limit)
            )
            if query.schools is not None:
                stmt = stmt.where(m.Message.our_school.in_(tuple(query.schools)))
            statuses = tuple(query.statuses) or (INBOX_STATUSES if query.direction == m.IN else ())
            if statuses:
                stmt = stmt.where(m.Message.status.in_(statuses))
            if query.counterpart_school is not None:
                stmt = stmt.where(m.Message.counterpart_school == query.counterpart_school)
            if query.actions:
                stmt = stmt.where(m.Message.action.in_(tuple(query.actions)))
            if query.since is not None:
                stmt = stmt.where(m.Message.created_at >= query.since)
            if query.until is not None:
                stmt = stmt.where(m.Message.created_at < query.until)
            if query.before_pk is not None:
                stmt = stmt.where(m.Message.id < query.before_pk)
            return [record_of(r) for r in session.scalars(stmt)]

        return self.store._read(work)

    def holds_school(self, school: str) -> bool:
        """Whether any message or pull request is ours for ``school`` (BRIN + vestiging), in
        either direction: a school the gateway served before (``--school`` of a school no
        longer served is still listed; one never served is a typing error, OSO-E620)."""

        def work(session: Session) -> bool:
            for table, column in (
                (m.Message, m.Message.our_school),
                (m.PullRequest, m.PullRequest.our_school),
            ):
                found = session.scalars(select(table.id).where(column == school).limit(1))
                if found.first() is not None:
                    return True
            return False

        return self.store._read(work)

    def get(
        self,
        direction: str,
        message_id: str,
        *,
        schools: Sequence[str] | None,
        actions: Sequence[str] | None = None,
    ) -> MessageRecord | None:
        """The message with this id in this direction among ``schools``' messages (newest);
        ``actions``: only a message of one of these SOAP actions."""

        def work(session: Session) -> MessageRecord | None:
            row = _find(session, direction, message_id, schools, actions)
            return None if row is None else record_of(row)

        return self.store._read(work)

    def ids_starting(
        self,
        direction: str,
        prefix: str,
        *,
        schools: Sequence[str] | None,
        actions: Sequence[str] | None = None,
        limit: int = 2,
    ) -> Sequence[str]:
        """Up to ``limit`` distinct MessageIDs in this direction that start with ``prefix``,
        among what ``get`` would find (an operator's short id: one is a match, more ambiguous)."""

        def work(session: Session) -> Sequence[str]:
            stmt = (
                select(m.Message.message_id)
                .where(
                    m.Message.direction == direction,
                    m.Message.message_id.startswith(prefix, autoescape=True),
                    m.Message.status != m.REJECTED,
                )
                .distinct()
                .limit(limit)
            )
            if schools is not None:
                stmt = stmt.where(m.Message.our_school.in_(tuple(schools)))
            if actions is not None:
                stmt = stmt.where(m.Message.action.in_(tuple(actions)))
            return tuple(session.scalars(stmt))

        return self.store._read(work)

    def dossier(self, record: MessageRecord) -> bytes | None:
        """The decrypted dossier of an inbound message; None when its content was dropped (or
        it is a duplicate: see ``duplicate_of``)."""

        def work(session: Session) -> str | None:
            return session.scalars(
                select(m.Dossier.id).where(m.Dossier.message_pk == record.pk)
            ).first()

        dossier_id = self.store._read(work)
        return None if dossier_id is None else self.store.load_dossier(dossier_id)

    def decline_reason(self, record: MessageRecord) -> str | None:
        """The reason the message was declined with (decrypted); None when it has none, or the
        retention purge destroyed it."""

        def work(session: Session) -> str | None:
            row = self.store._get(session, record.pk)
            if row.note is None:
                return None
            if row.note_data_key_id is None:
                return row.note  # stored before reasons were encrypted (migration 0010)
            try:
                key = self.store._data_key(session, row.note_data_key_id)
            except DossierPurged:
                return None
            assert key is not None
            return open_note(key, row.note, message_id=row.message_id)

        return self.store._read(work)

    def first_with_digest(
        self,
        direction: str,
        *,
        our_school: str,
        payload_digest: str,
        since: datetime,
        counterpart_school: str | None = None,
    ) -> MessageRecord | None:
        """The oldest message of ``our_school`` with this payload digest since ``since`` (not
        rejected, cancelled, declined or itself a duplicate): the duplicate check."""
        return self.store._read(
            lambda session: first_with_digest(
                session,
                direction,
                our_school=our_school,
                payload_digest=payload_digest,
                since=since,
                counterpart_school=counterpart_school,
            )
        )

    # --- transitions --------------------------------------------------------------------------

    def _transition(
        self,
        pk: int,
        *,
        allowed: Sequence[str],
        status: str,
        now: datetime,
        change: object = None,
        again_ok: bool = True,
    ) -> MessageRecord:
        def work(session: Session) -> MessageRecord:
            row = session.get(m.Message, pk, with_for_update=True)
            if row is None:
                raise LookupError(f"no message row {pk}")
            if row.status == status and again_ok:
                return record_of(row)  # idempotent
            if row.status not in allowed:
                raise TransitionRefused(row.status)
            if callable(change):
                change(session, row)
            Store._event(session, row, status, now)
            session.flush()
            return record_of(row)

        return self.store._write(work)

    def acknowledge(self, pk: int, *, now: datetime) -> MessageRecord:
        """``imported → fetched`` (the school's system has taken the dossier); the retention
        period of received content counts from here."""

        def change(session: Session, row: m.Message) -> None:
            session.execute(
                update(m.Dossier)
                .where(m.Dossier.message_pk == row.id, m.Dossier.acknowledged_at.is_(None))
                .values(acknowledged_at=now)
            )

        return self._transition(pk, allowed=(m.IMPORTED,), status=m.FETCHED, now=now, change=change)

    def decline(self, pk: int, *, reason: str, now: datetime) -> MessageRecord:
        """Decline an inbound dossier: the content is deleted, the row and the reason kept (the
        reason encrypted under a data key of its own, which the retention purge destroys)."""
        cipher = self.store.cipher

        def change(session: Session, row: m.Message) -> None:
            ids = select(m.Dossier.id).where(m.Dossier.message_pk == row.id)
            keys = select(m.Dossier.data_key_id).where(m.Dossier.message_pk == row.id)
            session.execute(delete(m.DataKeyRow).where(m.DataKeyRow.id.in_(keys)))  # shredded
            session.execute(delete(m.DossierIndex).where(m.DossierIndex.dossier_id.in_(ids)))
            session.execute(delete(m.Dossier).where(m.Dossier.message_pk == row.id))
            data_key = cipher.new_data_key(row.our_school)
            session.add(m.DataKeyRow(**data_key_values(data_key, now)))
            row.note = seal_note(data_key.key, reason, message_id=row.message_id)
            row.note_data_key_id = data_key.id

        record = self._transition(
            pk,
            allowed=(m.IMPORTED, m.FETCHED, m.DUPLICATE),
            status=m.DECLINED,
            now=now,
            change=change,
        )
        checkpoint_after_delete(self.store.engine)  # no image of the content stays in the files
        return record

    def cancel(
        self, pk: int, *, now: datetime, allowed: Sequence[str] = CANCELLABLE
    ) -> MessageRecord:
        """Cancel an outbound message that is not on the wire and not delivered (one of
        ``allowed``, else ``TransitionRefused``); the payload and any sealed envelope are
        dropped."""

        record = self._transition(
            pk, allowed=allowed, status=m.CANCELLED, now=now, change=_drop_payload
        )
        checkpoint_after_delete(self.store.engine)  # no image of the payload stays in the files
        return record

    def retry(self, pk: int, *, now: datetime) -> MessageRecord:
        """A failed (or waiting) outbound message is due again now, with a fresh attempt budget."""

        def change(session: Session, row: m.Message) -> None:
            if blobs.get_id(session, row.id, blobs.PAYLOAD) is None:
                raise TransitionRefused(row.status)
            row.attempts = 0
            row.next_attempt_at = now
            row.lease_until = None

        return self._transition(
            pk, allowed=RETRYABLE, status=m.QUEUED, now=now, change=change, again_ok=False
        )


def _find(
    session: Session,
    direction: str,
    message_id: str,
    schools: Sequence[str] | None,
    actions: Sequence[str] | None = None,
) -> m.Message | None:
    stmt = (
        select(m.Message)
        .where(
            m.Message.direction == direction,
            m.Message.message_id == message_id,
            m.Message.status != m.REJECTED,
        )
        .order_by(m.Message.id.desc())
        .limit(1)
    )
    if schools is not None:
        stmt = stmt.where(m.Message.our_school.in_(tuple(schools)))
    if actions is not None:
        stmt = stmt.where(m.Message.action.in_(tuple(actions)))
    return session.scalars(stmt).first()
