"""The outbox: outbound messages queued, claimed by a worker, sent, delivered, retried or failed.

Outbox claim: ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (several workers, several
machines); on SQLite the claim transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time),
which makes the same select-then-update exclusive."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from oso_gateway.errors import DossierPurged
from oso_gateway.store import blobs
from oso_gateway.store import models as m
from oso_gateway.store.messages import MessageQueries
from oso_gateway.store.records import (
    AfterInsert,
    Duplicate,
    MessageRecord,
    data_key_values,
    outbox_aad,
    record_of,
)

_T = TypeVar("_T")


class OutboxRepository(MessageQueries):
    """Outbound messages (encrypted payload, sealed attempts, receipts)."""

    def enqueue_outbound(
        self,
        *,
        message_id: str,
        action: str,
        payload: bytes,
        payload_digest: str,
        now: datetime,
        sealed: bytes | None = None,
        signature_value: bytes | None = None,
        our_oin: str | None = None,
        our_school: str | None = None,
        counterpart_oin: str | None = None,
        counterpart_school: str | None = None,
        endpoint: str | None = None,
        relates_to: str | None = None,
        client_id: str | None = None,
        categories: str | None = None,
        after_insert: AfterInsert | None = None,
        on_insert: Callable[[Session, str, dict[str, object]], None] | None = None,
    ) -> MessageRecord | Duplicate:
        """Put a message in the outbox (status ``queued``, due now). The payload is encrypted
        under a data key of its own (wrapped by our school's storage key). ``sealed`` (with its
        ``signature_value``): the first sealing, kept for attempt 1 (not yet sent).

        ``after_insert`` runs in the same transaction (the school API records its
        Idempotency-Key there); if it raises, nothing is queued. ``on_insert(session,
        message_id, columns)`` too (the disclosure record).
        """
        data_key = self.cipher.new_data_key(our_school)

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
                payload_key_id=data_key.kek_id,
                payload_data_key_id=data_key.id,
                signature_value=signature_value if sealed is not None else None,
                message_size=len(sealed) if sealed is not None else None,
                created_at=now,
                updated_at=now,
                client_id=client_id,
                categories=categories,
            )
            session.add(m.DataKeyRow(**data_key_values(data_key, now)))
            session.add(row)
            session.flush()
            size, pieces = self.cipher.seal_pieces(
                data_key.key, payload, aad=outbox_aad(message_id)
            )
            blobs.put(session, row.id, blobs.PAYLOAD, pieces, size)
            if sealed is not None:
                blobs.put(session, row.id, blobs.SEALED, (sealed,), len(sealed))
            if on_insert is not None:
                on_insert(
                    session,
                    message_id,
                    {
                        "our_school": our_school,
                        "counterpart_school": counterpart_school,
                        "counterpart_oin": counterpart_oin,
                        "payload_digest": payload_digest,
                    },
                )
            self._event(session, row, m.QUEUED, now)
            session.flush()
            record = record_of(row)
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

        def work(session: Session) -> tuple[str | None, bytes | None, bytes | None]:
            row = self._get(session, record.pk)
            if row.purged_at is not None:
                raise DossierPurged(f"the payload of {row.message_id} was purged")
            key = self._data_key(session, row.payload_data_key_id)
            return row.payload_key_id, blobs.get(session, row.id, blobs.PAYLOAD), key

        key_id, blob, data_key = self._read(work)
        if key_id is None or blob is None:
            raise LookupError(f"outbound message row {record.pk} has no payload")
        aad = outbox_aad(record.message_id)
        if data_key is not None:
            return self.cipher.open(data_key, blob, aad=aad)
        return self.cipher.decrypt(blob, aad=aad, key_id=key_id)

    def outbound_envelope(self, pk: int) -> tuple[bytes, bytes] | None:
        """The latest sealed envelope of outbound message ``pk`` and its SignatureValue (read
        once, to send it again while it is valid); None when there is none."""

        def work(session: Session) -> tuple[bytes, bytes] | None:
            value = session.scalar(select(m.Message.signature_value).where(m.Message.id == pk))
            if value is None:
                return None
            sealed = blobs.get(session, pk, blobs.SEALED)
            return None if sealed is None else (sealed, value)

        return self._read(work)

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
            return record_of(row)

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
        sealed: bytes | None,
        signature_value: bytes,
        now: datetime,
        endpoint: str | None = None,
        counterpart_oin: str | None = None,
    ) -> MessageRecord:
        """The envelope goes out; waiting for the receipt. ``sealed``: a fresh sealing (stored
        as the latest), None when the stored one (``outbound_envelope``) is sent again.
        ``endpoint`` / ``counterpart_oin``: where it went when the directory changed since the
        message was queued."""

        def work(session: Session) -> MessageRecord:
            row = self._get(session, pk)
            if endpoint is not None:
                row.endpoint = endpoint
            if counterpart_oin is not None:
                row.counterpart_oin = counterpart_oin
            if sealed is not None:
                blobs.put(session, pk, blobs.SEALED, (sealed,), len(sealed))
                row.message_size = len(sealed)
            row.signature_value = signature_value
            sent = base64.b64encode(signature_value).decode("ascii")
            if sent not in (row.signature_values or "").split():  # kept for every attempt
                row.signature_values = "\n".join(filter(None, [row.signature_values, sent]))
            self._event(session, row, m.AWAITING_RECEIPT, now)
            session.flush()
            return record_of(row)

        return self._write(work)

    def mark_delivered(
        self, pk: int, *, receipt: bytes, now: datetime, signer_fingerprint: str | None = None
    ) -> MessageRecord:
        """A valid receipt came back: done. The outbox payload and its data key are dropped (no
        longer needed); the disclosure record keeps the receipt's digest."""

        def shred(session: Session, row: m.Message) -> None:
            session.execute(
                update(m.Disclosure)
                .where(m.Disclosure.message_id == row.message_id)
                .values(delivered_at=now, receipt_digest=hashlib.sha256(receipt).hexdigest())
            )
            if row.payload_data_key_id is not None:
                session.execute(
                    delete(m.DataKeyRow).where(m.DataKeyRow.id == row.payload_data_key_id)
                )
                row.payload_data_key_id = None
            blobs.drop(session, row.id)

        return self._change(
            pk,
            m.DELIVERED,
            now,
            hook=shred,
            receipt=receipt,
            signer_fingerprint=signer_fingerprint,
            lease_until=None,
            next_attempt_at=None,
            last_error_code=None,
        )

    def mark_retry(
        self, pk: int, *, error_code: str, next_attempt_at: datetime, now: datetime
    ) -> MessageRecord:
        return self._change(
            pk,
            m.RETRYING,
            now,
            error_code,
            last_error_code=error_code,
            next_attempt_at=next_attempt_at,
            lease_until=None,
        )

    def mark_failed(self, pk: int, *, error_code: str, now: datetime) -> MessageRecord:
        return self._change(
            pk,
            m.FAILED,
            now,
            error_code,
            last_error_code=error_code,
            next_attempt_at=None,
            lease_until=None,
        )

    def requeue_outbound(self, pk: int, *, now: datetime) -> MessageRecord:
        """Operator action: send a ``failed`` message again, due now, with a fresh attempt budget.

        ``LookupError`` when the row is not a failed outbound message that still has its payload.
        """

        def work(session: Session) -> MessageRecord:
            row = self._get(session, pk)
            if (
                row.direction != m.OUT
                or row.status != m.FAILED
                or blobs.get_id(session, pk, blobs.PAYLOAD) is None
            ):
                raise LookupError(f"message row {pk} is not a failed outbound message")
            row.attempts = 0
            row.next_attempt_at = now
            row.lease_until = None
            self._event(session, row, m.QUEUED, now)
            session.flush()
            return record_of(row)

        return self._write(work)

    def _change(
        self,
        pk: int,
        status: str,
        now: datetime,
        error_code: str | None = None,
        hook: Callable[[Session, m.Message], None] | None = None,
        **columns: Any,
    ) -> MessageRecord:
        """Set ``columns`` of message row ``pk`` and move it to ``status`` (with its event and
        transfer-log entry), in one transaction."""

        def work(session: Session) -> MessageRecord:
            row = self._get(session, pk)
            for name, value in columns.items():
                setattr(row, name, value)
            if hook is not None:
                hook(session, row)
            self._event(session, row, status, now, error_code)
            session.flush()
            return record_of(row)

        return self._write(work)
