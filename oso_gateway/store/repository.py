"""The store the services use: outbox, inbound messages with exactly-once import, dossiers.

Every method is one transaction and returns plain frozen records (no ORM objects leak out), so
callers never hold a session. Time is always an argument (``now``: an aware datetime).

Exactly-once: inbound (direction, message_id) is unique over rows that were not rejected. Two
workers importing the same message race on that index; the loser's transaction rolls back and it
gets ``Duplicate`` with the winner's row (and its receipt), never an exception.

Outbox claim: ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (several workers, several
machines); on SQLite the claim transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time),
which makes the same select-then-update exclusive.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from oso_gateway.errors import ConfigError
from oso_gateway.store import models as m
from oso_gateway.store import translog
from oso_gateway.store.crypto import AtRestCipher, aad_for
from oso_gateway.store.engine import unavailable_as_typed_error, writer, writer_gate
from oso_gateway.transfer.logchain import StoredEvent

_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class MessageRecord:
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
    relates_to: str | None
    attempts: int
    next_attempt_at: datetime | None
    lease_until: datetime | None
    last_error_code: str | None
    payload_size: int | None
    message_size: int | None
    payload_digest: str | None
    signer_fingerprint: str | None
    signature_value: bytes | None
    #: outbound: every SignatureValue sent (base64 lines); see ``sent_signature_values``
    signature_values: str | None
    sealed: bytes | None
    receipt: bytes | None
    created_at: datetime
    updated_at: datetime
    #: the school-API client that submitted it (outbound), if any
    client_id: str | None = None
    #: categorie_uitlevering keys the payload holds, comma-separated
    categories: str | None = None
    #: the pk of the first copy (an inbound duplicate dossier)
    duplicate_of: int | None = None
    #: a decline reason (kept for audit, never logged)
    note: str | None = None

    @property
    def sent_signature_values(self) -> frozenset[bytes]:
        """The SignatureValue of every envelope sent for this (outbound) message."""
        lines = (self.signature_values or "").split()
        return frozenset(base64.b64decode(line) for line in lines)


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    at: datetime
    status: str
    attempt: int | None
    error_code: str | None


@dataclass(frozen=True, kw_only=True)
class PupilFacts:
    """The searchable fields of a dossier (personal data: stored hashed + encrypted)."""

    family_name: str | None = None
    given_names: str | None = None
    birth_date: date | None = None


@dataclass(frozen=True, kw_only=True)
class DossierSummary:
    dossier_id: str
    message_id: str
    sending_school: str | None
    receiving_school: str | None
    payload_digest: str
    size: int
    imported_at: datetime
    pupil: PupilFacts


@dataclass(frozen=True, kw_only=True)
class Imported:
    """``import_inbound`` stored the message and its dossier."""

    message: MessageRecord
    dossier_id: str


@dataclass(frozen=True, kw_only=True)
class Duplicate:
    """The message id was seen before; ``message`` is the original row (with its receipt)."""

    message: MessageRecord


def _record(row: m.Message) -> MessageRecord:
    return MessageRecord(
        pk=row.id,
        direction=row.direction,
        message_id=row.message_id,
        action=row.action,
        status=row.status,
        our_oin=row.our_oin,
        our_school=row.our_school,
        counterpart_oin=row.counterpart_oin,
        counterpart_school=row.counterpart_school,
        endpoint=row.endpoint,
        relates_to=row.relates_to,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        lease_until=row.lease_until,
        last_error_code=row.last_error_code,
        payload_size=row.payload_size,
        message_size=row.message_size,
        payload_digest=row.payload_digest,
        signer_fingerprint=row.signer_fingerprint,
        signature_value=row.signature_value,
        signature_values=row.signature_values,
        sealed=row.sealed,
        receipt=row.receipt,
        created_at=row.created_at,
        updated_at=row.updated_at,
        client_id=row.client_id,
        categories=row.categories,
        duplicate_of=row.duplicate_of,
        note=row.note,
    )


def _inbound_record(pk: int, values: Mapping[str, object]) -> MessageRecord:
    """The record of a row inserted from ``values`` (column name -> value; a column the insert
    did not name is NULL)."""
    fields = {f.name for f in dataclasses.fields(MessageRecord)} - {"pk"}
    return MessageRecord(pk=pk, **{name: values.get(name) for name in fields})  # type: ignore[arg-type]


def _outbox_aad(message_id: str) -> bytes:
    return aad_for("messages", f"{m.OUT}:{message_id}", "payload")


def _dossier_aad(dossier_id: str, message_id: str) -> bytes:
    return aad_for("dossiers", dossier_id, message_id)


def _index_aad(dossier_id: str) -> bytes:
    return aad_for("dossier_index", dossier_id)


@dataclass(eq=False)
class _Unit(Generic[_T]):
    work: Callable[[Session], _T]
    result: _T | None = None
    error: BaseException | None = None
    done: bool = False


class GroupCommit:
    """Write transactions of concurrent threads share one COMMIT (group commit).

    A committed transaction costs a disk flush (SQLite in WAL mode with ``synchronous=FULL``,
    the default, syncs the WAL at every COMMIT; PostgreSQL flushes its WAL), and SQLite has one
    writer at a time, so flushing one import after another caps a receiver at one dossier per
    flush. Here a thread queues its unit of work and takes the leader lock; the leader runs every
    queued unit in ONE transaction, each inside its own SAVEPOINT, and commits once.

    Still durable: ``run`` returns a unit's result only after that COMMIT returned, so whoever
    answers "stored" (a receipt) does so after the data is on disk, exactly as with a commit of
    its own; one flush now covers several units. Still isolated: a unit that raises (its id is
    taken, its hook fails) is rolled back to its savepoint alone, and ``run`` raises its error.
    A database failure, or a failed COMMIT, fails every unit of the batch (nothing was stored).

    SQLite only. PostgreSQL takes concurrent writers and merges their WAL flushes itself, and
    there a batch could deadlock with another process's batch (one holds the transfer log's
    advisory lock from an earlier unit and waits on the MessageID the other inserted), so on
    PostgreSQL every unit stays a transaction of its own, run concurrently as before.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._grouped = engine.dialect.name == "sqlite"
        self._queue: list[_Unit[Any]] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()
        self._gate = writer_gate(engine)

    def run(self, work: Callable[[Session], _T]) -> _T:
        """Run ``work(session)`` in a shared transaction; its result once that committed."""
        unit = _Unit(work)
        if not self._grouped:
            self._commit([unit])
        else:
            with self._queue_lock:
                self._queue.append(unit)
            with self._leader:
                if not unit.done:  # no earlier leader took it: lead a batch (with it) now
                    with self._queue_lock:
                        batch, self._queue = self._queue, []
                    self._commit(batch)
        if unit.error is not None:
            raise unit.error
        return cast("_T", unit.result)

    def _commit(self, batch: list[_Unit[Any]]) -> None:
        try:
            with (
                unavailable_as_typed_error(),
                self._gate(),
                Session(self._engine) as session,
                session.begin(),
            ):
                if len(batch) == 1:  # alone: its failure simply rolls the transaction back
                    batch[0].result = batch[0].work(session)
                    return
                for unit in batch:
                    try:
                        with session.begin_nested():
                            unit.result = unit.work(session)
                    except sa_exc.DBAPIError as exc:
                        if not isinstance(exc, sa_exc.IntegrityError):
                            raise  # the database failed, not this unit: fail the batch
                        unit.error = exc
                    except Exception as exc:
                        unit.error = exc
        except BaseException as exc:
            for unit in batch:  # nothing of the batch was committed
                unit.error, unit.result = exc, None
            if not isinstance(exc, Exception):
                raise
        finally:
            for unit in batch:
                unit.done = True


class Store:
    """Repository over one engine. ``cipher`` is needed for anything stored encrypted."""

    def __init__(self, engine: Engine, cipher: AtRestCipher | None = None) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self._cipher = cipher
        self._imports = GroupCommit(self._writer)

    @property
    def cipher(self) -> AtRestCipher:
        if self._cipher is None:
            raise ConfigError("no at-rest storage key configured (storage.key / storage.key_file)")
        return self._cipher

    # --- plumbing ---------------------------------------------------------------------------

    def _write(self, work: Callable[[Session], _T]) -> _T:
        with unavailable_as_typed_error(), Session(self._writer) as session, session.begin():
            return work(session)

    def _read(self, work: Callable[[Session], _T]) -> _T:
        with unavailable_as_typed_error(), Session(self.engine) as session, session.begin():
            return work(session)

    @staticmethod
    def _event(
        session: Session,
        row: m.Message,
        status: str,
        now: datetime,
        error_code: str | None = None,
    ) -> None:
        row.status = status
        row.updated_at = now
        session.add(
            m.MessageEvent(
                message_pk=row.id,
                at=now,
                status=status,
                attempt=row.attempts or None,
                error_code=error_code,
            )
        )
        # The chained transfer-log entry, in the same transaction: no status change can go
        # unlogged, and no log entry outlives a rolled-back change.
        translog.append_log_events(
            session, [translog.message_log_event(row, status, now, error_code)], now=now
        )

    @staticmethod
    def _get(session: Session, pk: int) -> m.Message:
        row = session.get(m.Message, pk)
        if row is None:
            raise LookupError(f"no message row {pk}")
        return row

    # --- outbound ---------------------------------------------------------------------------

    def enqueue_outbound(
        self,
        *,
        message_id: str,
        action: str,
        payload: bytes,
        payload_digest: str,
        now: datetime,
        our_oin: str | None = None,
        our_school: str | None = None,
        counterpart_oin: str | None = None,
        counterpart_school: str | None = None,
        endpoint: str | None = None,
        relates_to: str | None = None,
        client_id: str | None = None,
        categories: str | None = None,
        after_insert: Callable[[Session, MessageRecord], None] | None = None,
    ) -> MessageRecord | Duplicate:
        """Put a message in the outbox (status ``queued``, due now). The payload is encrypted.

        ``after_insert`` runs in the same transaction (the school API records its
        Idempotency-Key there); if it raises, nothing is queued.
        """
        ciphertext = self.cipher.encrypt(payload, aad=_outbox_aad(message_id))

        def work(session: Session) -> MessageRecord:
            row = m.Message(
                direction=m.OUT,
                message_id=message_id,
                action=action,
                status=m.QUEUED,
                our_oin=our_oin,
                our_school=our_school,
                counterpart_oin=counterpart_oin,
                counterpart_school=counterpart_school,
                endpoint=endpoint,
                relates_to=relates_to,
                attempts=0,
                next_attempt_at=now,
                payload_size=len(payload),
                payload_digest=payload_digest,
                payload_key_id=self.cipher.key_id,
                payload_ciphertext=ciphertext,
                created_at=now,
                updated_at=now,
                client_id=client_id,
                categories=categories,
            )
            session.add(row)
            session.flush()
            self._event(session, row, m.QUEUED, now)
            session.flush()
            record = _record(row)
            if after_insert is not None:
                after_insert(session, record)
            return record

        try:
            return self._write(work)
        except sa_exc.IntegrityError:
            existing = self.find_message(m.OUT, message_id)
            if existing is None:  # pragma: no cover - the violation was something else
                raise
            return Duplicate(message=existing)

    def outbound_payload(self, record: MessageRecord) -> bytes:
        """The decrypted payload of an outbound message (to seal it for an attempt)."""

        def work(session: Session) -> tuple[str | None, bytes | None]:
            row = self._get(session, record.pk)
            return row.payload_key_id, row.payload_ciphertext

        key_id, blob = self._read(work)
        if key_id is None or blob is None:
            raise LookupError(f"outbound message row {record.pk} has no payload")
        return self.cipher.decrypt(blob, aad=_outbox_aad(record.message_id), key_id=key_id)

    def claim_next_outbound(self, *, now: datetime, lease: timedelta) -> MessageRecord | None:
        """Take the next due outbound message for sending, exclusively; None when none is due.

        Due: queued/retrying with ``next_attempt_at <= now``, or a sending/awaiting_receipt row
        whose worker's lease ran out (it crashed). The row becomes ``sending``, ``attempts`` + 1.
        """

        def work(session: Session) -> MessageRecord | None:
            due = or_(
                and_(
                    m.Message.status.in_((m.QUEUED, m.RETRYING)), m.Message.next_attempt_at <= now
                ),
                and_(
                    m.Message.status.in_((m.SENDING, m.AWAITING_RECEIPT)),
                    m.Message.lease_until < now,
                ),
            )
            stmt = (
                select(m.Message)
                .where(m.Message.direction == m.OUT, due)
                .order_by(m.Message.next_attempt_at, m.Message.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            row = session.scalars(stmt).first()
            if row is None:
                return None
            row.attempts += 1
            row.lease_until = now + lease
            self._event(session, row, m.SENDING, now)
            session.flush()
            return _record(row)

        return self._write(work)

    def extend_lease(self, pk: int, *, attempt: int, until: datetime) -> bool:
        """Heartbeat of a send in progress: keep the claim of attempt ``attempt`` until ``until``.

        False when the claim is no longer ours (the row moved on, or another worker took it over
        after our lease ran out): the caller's attempt is then stale.
        """

        def work(session: Session) -> bool:
            result = session.execute(
                update(m.Message)
                .where(
                    m.Message.id == pk,
                    m.Message.attempts == attempt,
                    m.Message.status.in_((m.SENDING, m.AWAITING_RECEIPT)),
                )
                .values(lease_until=until)
            )
            return bool(getattr(result, "rowcount", 0))

        return self._write(work)

    def mark_sent(
        self,
        pk: int,
        *,
        sealed: bytes,
        signature_value: bytes,
        now: datetime,
        endpoint: str | None = None,
        counterpart_oin: str | None = None,
    ) -> MessageRecord:
        """The envelope went out; waiting for the receipt. ``endpoint`` / ``counterpart_oin``:
        where it went when the directory changed since the message was queued."""

        def work(session: Session) -> MessageRecord:
            row = self._get(session, pk)
            if endpoint is not None:
                row.endpoint = endpoint
            if counterpart_oin is not None:
                row.counterpart_oin = counterpart_oin
            row.sealed = sealed
            row.signature_value = signature_value
            sent = base64.b64encode(signature_value).decode("ascii")
            if sent not in (row.signature_values or "").split():  # kept for every attempt
                row.signature_values = "\n".join(filter(None, [row.signature_values, sent]))
            row.message_size = len(sealed)
            self._event(session, row, m.AWAITING_RECEIPT, now)
            session.flush()
            return _record(row)

        return self._write(work)

    def mark_delivered(
        self, pk: int, *, receipt: bytes, now: datetime, signer_fingerprint: str | None = None
    ) -> MessageRecord:
        """A valid receipt came back: done. The outbox payload is dropped (no longer needed)."""

        def work(session: Session) -> MessageRecord:
            row = self._get(session, pk)
            row.receipt = receipt
            row.signer_fingerprint = signer_fingerprint
            row.lease_until = None
            row.next_attempt_at = None
            row.last_error_code = None
            row.payload_ciphertext = None
            self._event(session, row, m.DELIVERED, now)
            session.flush()
            return _record(row)

        return self._write(work)

    def mark_retry(
        self, pk: int, *, error_code: str, next_attempt_at: datetime, now: datetime
    ) -> MessageRecord:
        def work(session: Session) -> MessageRecord:
            row = self._get(session, pk)
            row.last_error_code = error_code
            row.next_attempt_at = next_attempt_at
            row.lease_until = None
            self._event(session, row, m.RETRYING, now, error_code)
            session.flush()
            return _record(row)

        return self._write(work)

    def mark_failed(self, pk: int, *, error_code: str, now: datetime) -> MessageRecord:
        def work(session: Session) -> MessageRecord:
            row = self._get(session, pk)
            row.last_error_code = error_code
            row.next_attempt_at = None
            row.lease_until = None
            self._event(session, row, m.FAILED, now, error_code)
            session.flush()
            return _record(row)

        return self._write(work)

    def requeue_outbound(self, pk: int, *, now: datetime) -> MessageRecord:
        """Operator action: send a ``failed`` message again, due now, with a fresh attempt budget.

        ``LookupError`` when the row is not a failed outbound message that still has its payload.
        """

        def work(session: Session) -> MessageRecord:
            row = self._get(session, pk)
            if row.direction != m.OUT or row.status != m.FAILED or row.payload_ciphertext is None:
                raise LookupError(f"message row {pk} is not a failed outbound message")
            row.attempts = 0
            row.next_attempt_at = now
            row.lease_until = None
            self._event(session, row, m.QUEUED, now)
            session.flush()
            return _record(row)

        return self._write(work)

    # --- inbound ----------------------------------------------------------------------------

    def import_inbound(
        self,
        *,
        message_id: str,
        action: str,
        dossier: bytes | None,
        payload_digest: str,
        receipt: bytes,
        now: datetime,
        our_oin: str | None = None,
        our_school: str | None = None,
        counterpart_oin: str | None = None,
        counterpart_school: str | None = None,
        signer_fingerprint: str | None = None,
        message_size: int | None = None,
        relates_to: str | None = None,
        pupil: PupilFacts | None = None,
        after_insert: Callable[[Session, MessageRecord], None] | None = None,
        payload_size: int | None = None,
        categories: str | None = None,
        duplicate_of: int | None = None,
    ) -> Imported | Duplicate:
        """Record a verified inbound message and import its dossier, all in ONE transaction.

        ``dossier`` None: a message kind that carries no dossier (a request, an answer): only the
        message, its events and receipt are stored (``payload_size`` gives its size), and
        ``after_insert`` writes the kind's own rows.

        Events ``received → verified → imported`` are written with it, and appended to the
        transfer log. ``after_insert`` (tests: a crash) runs inside the same transaction; if it
        raises, nothing is stored.
        A message id seen before from the same counterpart (signer) gives ``Duplicate`` with the
        original row and receipt.

        ``duplicate_of``: the pk of an earlier inbound message with the same dossier content;
        the message is then recorded (``received → verified → duplicate``) with its receipt but
        no second copy of the dossier is stored.
        """
        if counterpart_oin is None:  # the duplicate key is (signer OIN, MessageID)
            raise ValueError("an imported message needs its signer's OIN (counterpart_oin)")
        cipher = self.cipher
        dossier_id = str(uuid.uuid4())
        sealed_dossier = None
        index_values: dict[str, object] = {}
        if dossier is not None and duplicate_of is not None:
            payload_size, dossier = len(dossier), None  # the first copy holds the content
        if dossier is not None:
            sealed_dossier = cipher.encrypt(dossier, aad=_dossier_aad(dossier_id, message_id))
            index_values = self._index_row(dossier_id, pupil or PupilFacts())
            payload_size = len(dossier)
        message_values = {
            "direction": m.IN,
            "message_id": message_id,
            "action": action,
            "status": m.IMPORTED,
            "our_oin": our_oin,
            "our_school": our_school,
            "counterpart_oin": counterpart_oin,
            "counterpart_school": counterpart_school,
            "endpoint": None,
            "relates_to": relates_to,
            "attempts": 0,
            "next_attempt_at": None,
            "lease_until": None,
            "last_error_code": None,
            "payload_size": payload_size,
            "message_size": message_size,
            "payload_digest": payload_digest,
            "signer_fingerprint": signer_fingerprint,
            "payload_key_id": None,
            "payload_ciphertext": None,
            "sealed": None,
            "signature_value": None,
            "signature_values": None,
            "receipt": receipt,
            "created_at": now,
            "updated_at": now,
            "categories": categories,
            "duplicate_of": duplicate_of,
        }
        final = m.IMPORTED if duplicate_of is None else m.DUPLICATE
        message_values["status"] = final
        statuses = (m.RECEIVED, m.VERIFIED, final)

        def work(session: Session) -> Imported:
            # Core inserts, not the ORM unit of work: this runs while holding the write lock, once
            # per incoming dossier, so it is kept to four statements (the events in one batch).
            connection = session.connection()
            # (the unique index decides on this insert)
            key = connection.execute(insert(m.Message), message_values).inserted_primary_key
            assert key is not None
            pk = int(key[0])
            connection.execute(
                insert(m.MessageEvent),
                [
                    {"message_pk": pk, "at": now, "status": status, "attempt": None}
                    for status in statuses
                ],
            )
            if sealed_dossier is not None:
                connection.execute(
                    insert(m.Dossier),
                    {
                        "id": dossier_id,
                        "message_pk": pk,
                        "sending_school": counterpart_school,
                        "receiving_school": our_school,
                        "payload_digest": payload_digest,
                        "size": payload_size,
                        "key_id": cipher.key_id,
                        "ciphertext": sealed_dossier,
                        "imported_at": now,
                    },
                )
                connection.execute(insert(m.DossierIndex), index_values)
            record = _inbound_record(pk, message_values)
            if after_insert is not None:
                after_insert(session, record)
            # Logged last: the log's lock (an advisory lock on PostgreSQL) is then held only from
            # here to the commit, so concurrent imports wait on each other as little as possible.
            translog.append_log_events(
                session,
                [translog.message_log_event(message_values, status, now) for status in statuses],
                now=now,
            )
            return Imported(message=record, dossier_id=dossier_id)

        try:
            return self._imports.run(work)
        except sa_exc.IntegrityError:
            existing = self.find_message(m.IN, message_id, counterpart_oin=counterpart_oin)
            if existing is None:
                raise
            return Duplicate(message=existing)

    def record_rejected_inbound(
        self,
        *,
        message_id: str,
        action: str,
        error_code: str,
        now: datetime,
        counterpart_oin: str | None = None,
        counterpart_school: str | None = None,
        our_school: str | None = None,
        message_size: int | None = None,
        payload_digest: str | None = None,
        signer_fingerprint: str | None = None,
    ) -> MessageRecord:
        """Record an inbound message we rejected (``received → rejected``). Nothing is imported,
        and the message id stays free for a later, valid message."""

        def work(session: Session) -> MessageRecord:
            row = m.Message(
                direction=m.IN,
                message_id=message_id[:100],
                action=action[:255],
                status=m.REJECTED,  # never occupies the unique slot, not even inside the txn
                counterpart_oin=counterpart_oin,
                counterpart_school=counterpart_school,
                our_school=our_school,
                attempts=0,
                message_size=message_size,
                payload_digest=payload_digest,
                signer_fingerprint=signer_fingerprint,
                last_error_code=error_code,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            session.add(m.MessageEvent(message_pk=row.id, at=now, status=m.RECEIVED))
            translog.append_log_events(
                session, [translog.message_log_event(row, m.RECEIVED, now)], now=now
            )
            self._event(session, row, m.REJECTED, now, error_code)
            session.flush()
            return _record(row)

        return self._write(work)

    # --- queries ----------------------------------------------------------------------------

    def find_message(
        self, direction: str, message_id: str, *, counterpart_oin: str | None = None
    ) -> MessageRecord | None:
        """The accepted (not rejected) message with this id in this direction, if any.

        A MessageID is unique per counterpart (an inbound message's signer): without
        ``counterpart_oin`` the oldest of several is returned.
        """

        def work(session: Session) -> MessageRecord | None:
            query = select(m.Message).where(
                m.Message.direction == direction,
                m.Message.message_id == message_id,
                m.Message.status != m.REJECTED,
            )
            if counterpart_oin is not None:
                query = query.where(m.Message.counterpart_oin == counterpart_oin)
            row = session.scalars(query.order_by(m.Message.id)).first()
            return None if row is None else _record(row)

        return self._read(work)

    def get_message(self, pk: int) -> MessageRecord:
        return self._read(lambda session: _record(self._get(session, pk)))

    def list_messages(
        self,
        *,
        direction: str | None = None,
        statuses: Sequence[str] = (),
        limit: int = 100,
        before_pk: int | None = None,
    ) -> list[MessageRecord]:
        """Newest first; page with ``before_pk`` (the last pk of the previous page)."""

        def work(session: Session) -> list[MessageRecord]:
            stmt = select(m.Message).order_by(m.Message.id.desc()).limit(limit)
            if direction is not None:
                stmt = stmt.where(m.Message.direction == direction)
            if statuses:
                stmt = stmt.where(m.Message.status.in_(tuple(statuses)))
            if before_pk is not None:
                stmt = stmt.where(m.Message.id < before_pk)
            return [_record(r) for r in session.scalars(stmt)]

        return self._read(work)

    def events(self, pk: int) -> list[EventRecord]:
        def work(session: Session) -> list[EventRecord]:
            rows = session.scalars(
                select(m.MessageEvent)
                .where(m.MessageEvent.message_pk == pk)
                .order_by(m.MessageEvent.id)
            )
            return [
                EventRecord(at=r.at, status=r.status, attempt=r.attempt, error_code=r.error_code)
                for r in rows
            ]

        return self._read(work)

    # --- dossiers ---------------------------------------------------------------------------

    def _index_row(self, dossier_id: str, pupil: PupilFacts) -> dict[str, object]:
        """The ``dossier_index`` row of a dossier (values for an insert)."""
        cipher = self.cipher
        display = json.dumps(
            {
                "family_name": pupil.family_name,
                "given_names": pupil.given_names,
                "birth_date": pupil.birth_date.isoformat() if pupil.birth_date else None,
            },
            sort_keys=True,
        ).encode("utf-8")
        return dict(
            dossier_id=dossier_id,
            name_hmac=cipher.lookup_hash("family_name", pupil.family_name)
            if pupil.family_name
            else None,
            birth_date_hmac=cipher.lookup_hash("birth_date", pupil.birth_date.isoformat())
            if pupil.birth_date
            else None,
            key_id=cipher.key_id,
            ciphertext=cipher.encrypt(display, aad=_index_aad(dossier_id)),
        )

    def load_dossier(self, dossier_id: str) -> bytes:
        """The decrypted dossier XML. ``LookupError`` when absent, E504 when it won't decrypt."""

        def work(session: Session) -> tuple[str, bytes, str]:
            row = session.get(m.Dossier, dossier_id)
            if row is None:
                raise LookupError(f"no dossier {dossier_id}")
            message = self._get(session, row.message_pk)
            return row.key_id, row.ciphertext, message.message_id

        key_id, blob, message_id = self._read(work)
        return self.cipher.decrypt(blob, aad=_dossier_aad(dossier_id, message_id), key_id=key_id)

    def find_dossiers(
        self,
        *,
        family_name: str | None = None,
        birth_date: date | None = None,
        sending_school: str | None = None,
        limit: int = 100,
    ) -> list[DossierSummary]:
        """Exact search (case/accent-insensitive name) over the keyed hashes; newest first."""
        cipher = self.cipher

        def work(session: Session) -> list[tuple[DossierSummary, str, bytes]]:
            stmt = (
                select(m.Dossier, m.DossierIndex, m.Message.message_id)
                .join(m.DossierIndex, m.DossierIndex.dossier_id == m.Dossier.id)
                .join(m.Message, m.Message.id == m.Dossier.message_pk)
                .order_by(m.Dossier.imported_at.desc(), m.Dossier.id)
                .limit(limit)
            )
            if family_name is not None:
                stmt = stmt.where(
                    m.DossierIndex.name_hmac == cipher.lookup_hash("family_name", family_name)
                )
            if birth_date is not None:
                stmt = stmt.where(
                    m.DossierIndex.birth_date_hmac
                    == cipher.lookup_hash("birth_date", birth_date.isoformat())
                )
            if sending_school is not None:
                stmt = stmt.where(m.Dossier.sending_school == sending_school)
            found = []
            for dossier, index, message_id in session.execute(stmt):
                summary = DossierSummary(
                    dossier_id=dossier.id,
                    message_id=message_id,
                    sending_school=dossier.sending_school,
                    receiving_school=dossier.receiving_school,
                    payload_digest=dossier.payload_digest,
                    size=dossier.size,
                    imported_at=dossier.imported_at,
                    pupil=PupilFacts(),
                )
                found.append((summary, index.key_id, index.ciphertext))
            return found

        result = []
        for summary, key_id, blob in self._read(work):
            facts = json.loads(
                cipher.decrypt(blob, aad=_index_aad(summary.dossier_id), key_id=key_id)
            )
            born = facts.get("birth_date")
            pupil = PupilFacts(
                family_name=facts.get("family_name"),
                given_names=facts.get("given_names"),
                birth_date=date.fromisoformat(born) if born else None,
            )
            result.append(dataclasses.replace(summary, pupil=pupil))
        return result

    # --- transfer log -----------------------------------------------------------------------

    def append_log(
        self, events: Sequence[Mapping[str, str]], *, now: datetime
    ) -> list[StoredEvent]:
        """Append events to the hash-chained transfer log, in a transaction of their own."""
        return self._write(lambda session: translog.append_log_events(session, events, now=now))

    def log_entries(self, *, after_seq: int = 0, limit: int | None = None) -> list[StoredEvent]:
        """Stored log entries in order (for verification and export)."""
        return self._read(
            lambda session: translog.log_entries(session, after_seq=after_seq, limit=limit)
        )
