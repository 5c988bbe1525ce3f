"""Inbound messages: the exactly-once import of a verified message (with its dossier and receipt)
in one transaction, and the record of a rejection.

Exactly-once: inbound (direction, message_id) is unique over rows that were not rejected. Two
workers importing the same message race on that index; the loser's transaction rolls back and it
gets ``Duplicate`` with the winner's row (and its receipt), never an exception."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, func, insert
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from oso_gateway.store import models as m
from oso_gateway.store import translog
from oso_gateway.store.crypto import seal_parts
from oso_gateway.store.dossiers import DossierSearch
from oso_gateway.store.keyring import NONCE_BYTES, TAG_BYTES
from oso_gateway.store.messages import MessageQueries
from oso_gateway.store.records import (
    AfterInsert,
    Duplicate,
    Imported,
    MessageRecord,
    PupilFacts,
    data_key_values,
    dossier_aad,
    inbound_record,
    record_of,
)

_T = TypeVar("_T")


class InboundRepository(MessageQueries, DossierSearch):
    """Imports and rejections of inbound messages."""

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
        after_insert: AfterInsert | None = None,
        payload_size: int | None = None,
        categories: str | None = None,
        duplicate_of: int | None = None,
    ) -> Imported | Duplicate:
        """Record a verified inbound message and import its dossier, all in ONE transaction.

        ``dossier`` None: a message kind that carries no dossier (a request, an answer): only the
        message, its events and receipt are stored (``payload_size`` gives its size), and
        ``after_insert`` writes the kind's own rows. With a dossier, ``payload_size`` (default:
        the dossier's length) is the size of the bytes its digest covers.

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
        dossier_id = str(uuid.uuid4())
        rows: _DossierRows | None = None
        if payload_size is None and dossier is not None:
            payload_size = len(dossier)  # the caller's size (the digest's bytes) comes first
        if dossier is not None and duplicate_of is not None:
            dossier = None  # the first copy holds the content
        if dossier is not None:
            rows = self._dossier_rows(
                dossier_id,
                dossier,
                message_id=message_id,
                pupil=pupil or PupilFacts(),
                sending_school=counterpart_school,
                receiving_school=our_school,
                payload_digest=payload_digest,
                now=now,
            )
        message_values = _inbound_message_values(
            message_id=message_id,
            action=action,
            our_oin=our_oin,
            our_school=our_school,
            counterpart_oin=counterpart_oin,
            counterpart_school=counterpart_school,
            relates_to=relates_to,
            payload_size=payload_size,
            message_size=message_size,
            payload_digest=payload_digest,
            signer_fingerprint=signer_fingerprint,
            receipt=receipt,
            now=now,
        )
        final = m.IMPORTED if duplicate_of is None else m.DUPLICATE
        message_values.update(status=final, categories=categories, duplicate_of=duplicate_of)
        statuses = (m.RECEIVED, m.VERIFIED, final)

        def work(session: Session) -> Imported:
            record = _insert_import(session, message_values, rows, statuses=statuses, now=now)
            if after_insert is not None:
                after_insert(session, record)
            # Logged last: the log's lock (an advisory lock on PostgreSQL) is then held only from
            # here to the commit, so concurrent imports wait on each other as little as possible.
            translog.append_log_events(
                session,
                [translog.message_log_event(message_values, s, now) for s in statuses],
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

    def _dossier_rows(
        self,
        dossier_id: str,
        dossier: bytes,
        *,
        message_id: str,
        pupil: PupilFacts,
        sending_school: str | None,
        receiving_school: str | None,
        payload_digest: str,
        now: datetime,
    ) -> _DossierRows:
        """The dossier row (the dossier encrypted at rest, bound to its id and message) and its
        search-index row; the dossier row gets ``message_pk`` once the message row has its pk."""
        cipher = self.cipher
        data_key = cipher.new_data_key(receiving_school)  # its own key: erasure shreds it
        dossier_row: dict[str, object] = {
            "id": dossier_id,
            "sending_school": sending_school,
            "receiving_school": receiving_school,
            "payload_digest": payload_digest,
            "size": len(dossier),
            "key_id": data_key.kek_id,
            "data_key_id": data_key.id,
            "imported_at": now,
        }
        aad = dossier_aad(dossier_id, message_id)
        return _DossierRows(
            dossier=dossier_row,
            ciphertext=_Sealed(
                size=NONCE_BYTES + len(dossier) + TAG_BYTES,
                parts=lambda: seal_parts(data_key.key, dossier, aad),
            ),
            index=self._index_row(dossier_id, pupil, data_key),
            data_key=data_key_values(data_key, now),
        )

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
            return record_of(row)

        return self._write(work)


@dataclass(frozen=True, kw_only=True)
class _Sealed:
    """A dossier's ciphertext at rest (``size`` bytes), made while it is written."""

    size: int
    parts: Callable[[], Iterator[bytes]]

    def whole(self) -> bytes | bytearray:
        """All of it in one buffer (filled piece by piece: no second copy of a large one)."""
        if self.size < _BLOB_MIN:
            return b"".join(self.parts())
        out, filled = bytearray(self.size), 0
        for part in self.parts():
            out[filled : filled + len(part)] = part
            filled += len(part)
        assert filled == self.size
        return out


@dataclass(frozen=True, kw_only=True)
class _DossierRows:
    dossier: dict[str, object]
    ciphertext: _Sealed
    index: dict[str, object]
    data_key: dict[str, object]


#: a dossier ciphertext at least this large is written into SQLite in place (``_insert_dossier``)
_BLOB_MIN = 1024 * 1024


def _inbound_message_values(
    *,
    message_id: str,
    action: str,
    our_oin: str | None,
    our_school: str | None,
    counterpart_oin: str,
    counterpart_school: str | None,
    relates_to: str | None,
    payload_size: int | None,
    message_size: int | None,
    payload_digest: str,
    signer_fingerprint: str | None,
    receipt: bytes,
    now: datetime,
) -> dict[str, object]:
    """Every column of an imported message's row (the outbox's columns NULL)."""
    return {
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
        "payload_data_key_id": None,
        "signature_value": None,
        "signature_values": None,
        "receipt": receipt,
        "created_at": now,
        "updated_at": now,
        "purged_at": None,
    }


def _insert_import(
    session: Session,
    message_values: dict[str, object],
    rows: _DossierRows | None,
    *,
    statuses: tuple[str, ...],
    now: datetime,
) -> MessageRecord:
    """Insert the message (the unique index decides on a duplicate here), its events and the
    dossier rows. Core inserts, not the ORM unit of work: this runs while holding the write lock,
    once per incoming message, so it is kept to a few statements (the events in one batch)."""
    connection = session.connection()
    key = connection.execute(insert(m.Message), message_values).inserted_primary_key
    assert key is not None
    pk = int(key[0])
    connection.execute(
        insert(m.MessageEvent),
        [{"message_pk": pk, "at": now, "status": s, "attempt": None} for s in statuses],
    )
    if rows is not None:
        connection.execute(insert(m.DataKeyRow), rows.data_key)
        _insert_dossier(connection, {**rows.dossier, "message_pk": pk}, rows.ciphertext)
        connection.execute(insert(m.DossierIndex), rows.index)
    return inbound_record(pk, message_values)


def _insert_dossier(connection: Connection, values: dict[str, object], sealed: _Sealed) -> None:
    """Insert the dossier row with its ciphertext.

    On SQLite a large ciphertext is never held whole: the row is inserted with a zeroblob of
    its size, and the dossier is encrypted straight into it piece by piece (incremental blob
    I/O, in the same transaction). The insert itself still costs about twice the size for a
    moment (the zeroblob is not the table's last column, so SQLite expands it into the row's
    record), as binding the bytes would (the binding's copy, then the record).
    """
    if connection.dialect.name != "sqlite" or sealed.size < _BLOB_MIN:
        connection.execute(insert(m.Dossier), {**values, "ciphertext": sealed.whole()})
        return
    statement = insert(m.Dossier).values(ciphertext=func.zeroblob(sealed.size))
    rowid = connection.execute(statement, values).lastrowid
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    with driver.blobopen(m.Dossier.__tablename__, "ciphertext", rowid) as blob:
        for part in sealed.parts():
            blob.write(part)
        assert blob.tell() == sealed.size
