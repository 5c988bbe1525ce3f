"""What the store hands out: plain frozen records (no ORM object leaves the store), and the
associated data that binds each encrypted value to its row."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from oso_gateway.store import models as m
from oso_gateway.store.crypto import DataKey, aad_for

_T = TypeVar("_T")


#: Runs inside an import transaction with its session and the stored message row (the message
#: kind's own rows; tests: a crash).
AfterInsert = Callable[[Session, "MessageRecord"], None]
#: A store transaction's session as the layers above the store name it in their types (they
#: import no SQLAlchemy: lint-imports' contract).
TransactionSession = Session
#: Runs inside the outbox's queueing transaction: session, message id, the message's columns.
OnInsert = Callable[[Session, str, dict[str, object]], None]


def in_turn(*hooks: AfterInsert | None) -> AfterInsert | None:
    """One ``AfterInsert`` that runs ``hooks`` (None: skipped) in turn; None when none is
    given, the hook itself when one is."""
    present = [hook for hook in hooks if hook is not None]
    if len(present) < 2:
        return present[0] if present else None

    def run(session: Session, record: MessageRecord) -> None:
        for hook in present:
            hook(session, record)

    return run


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
    #: the retention purge erased the content (only PII-free metadata remains)
    purged_at: datetime | None = None

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
    #: BSN (or onderwijsnummer): stored only as a keyed hash, for subject access
    bsn: str | None = None


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


def record_of(row: m.Message) -> MessageRecord:
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
        receipt=row.receipt,
        created_at=row.created_at,
        updated_at=row.updated_at,
        client_id=row.client_id,
        categories=row.categories,
        duplicate_of=row.duplicate_of,
        note=row.note,
        purged_at=row.purged_at,
    )


def inbound_record(pk: int, values: Mapping[str, object]) -> MessageRecord:
    """The record of a row inserted from ``values`` (column name -> value; a column the insert
    did not name is NULL)."""
    fields = {f.name for f in dataclasses.fields(MessageRecord)} - {"pk"}
    return MessageRecord(pk=pk, **{name: values.get(name) for name in fields})  # type: ignore[arg-type]


def data_key_values(data_key: DataKey, now: datetime) -> dict[str, object]:
    """The ``data_keys`` row of a fresh data key (values for an insert)."""
    return {
        "id": data_key.id,
        "kek_id": data_key.kek_id,
        "school": data_key.school,
        "wrapped": data_key.wrapped,
        "created_at": now,
    }


def outbox_aad(message_id: str) -> bytes:
    return aad_for("messages", f"{m.OUT}:{message_id}", "payload")


def dossier_aad(dossier_id: str, message_id: str) -> bytes:
    return aad_for("dossiers", dossier_id, message_id)


def index_aad(dossier_id: str) -> bytes:
    return aad_for("dossier_index", dossier_id)
