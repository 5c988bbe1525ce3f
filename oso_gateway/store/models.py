"""Database tables (SQLAlchemy 2.x typed models). Schema changes go through Alembic migrations.

* ``messages``: one row per message in either direction. Outbound rows are the outbox (their
  payload and latest sealed envelope are in ``outbox_blobs``; the receipt); inbound rows keep the
  receipt we answered with, so a duplicate gets the original receipt back.
  Exactly-once: unique indexes over every row that was not rejected (a rejected message does not
  block a later, valid one with the same id): outbound on message_id (our own ids), inbound on
  (counterpart_oin, message_id), since a MessageID is unique only per signer: another gateway
  that uses a sender's MessageID first must not block that sender's message.
* ``outbox_blobs``: an outbound message's payload (encrypted) and latest sealed envelope,
  apart from its often-updated row.
* ``message_events``: the status lifecycle, append-only, no personal data.
* ``dossiers``: imported dossiers, AES-256-GCM encrypted at rest.
* ``dossier_index``: the searchable fields (pupil name, birth date) as keyed hashes for exact
  lookup plus an encrypted copy for display; see ``oso_gateway.store.crypto``.
* ``transfer_log``: the hash-chained, append-only transfer log (rows written by the log service).

The event and log tables are append-only: the migration adds triggers that refuse UPDATE and
DELETE on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER (the rowid alias, autoincrementing) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

OUT = "out"
IN = "in"
#: ``purge_reason``: the retention purge, or a subject erasure (a person's request)
PURGED_BY_RETENTION = "retention"
PURGED_BY_ERASURE = "erasure"

# Outbound lifecycle
QUEUED = "queued"
SENDING = "sending"
AWAITING_RECEIPT = "awaiting_receipt"
DELIVERED = "delivered"
RETRYING = "retrying"
FAILED = "failed"
# Inbound lifecycle
RECEIVED = "received"
VERIFIED = "verified"
IMPORTED = "imported"
REJECTED = "rejected"
#: inbound, after import: the school's system has taken the dossier (the school API's ack)
FETCHED = "fetched"
#: inbound: the school declined the dossier; its content is dropped, the row kept for audit
DECLINED = "declined"
#: inbound: the same dossier content arrived again under a new MessageID (``duplicate_of``)
DUPLICATE = "duplicate"
#: outbound: cancelled before delivery; the payload is dropped
CANCELLED = "cancelled"

#: the rows that hold a MessageID (partial unique indexes; the migrations use the same text)
OUT_NOT_REJECTED = "direction = 'out' AND status <> 'rejected'"
IN_NOT_REJECTED = "direction = 'in' AND status <> 'rejected'"

OUTBOUND_STATUSES = (QUEUED, SENDING, AWAITING_RECEIPT, DELIVERED, RETRYING, FAILED, CANCELLED)
INBOUND_STATUSES = (RECEIVED, VERIFIED, IMPORTED, REJECTED, FETCHED, DECLINED, DUPLICATE)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    direction: Mapped[str] = mapped_column(String(3))
    message_id: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    our_oin: Mapped[str | None] = mapped_column(String(20))
    our_school: Mapped[str | None] = mapped_column(String(6))
    counterpart_oin: Mapped[str | None] = mapped_column(String(20))
    counterpart_school: Mapped[str | None] = mapped_column(String(6))
    #: outbound: where it goes
    endpoint: Mapped[str | None] = mapped_column(String(500))
    relates_to: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: a claimed (sending) row belongs to its worker until then; afterwards it may be re-claimed
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error_code: Mapped[str | None] = mapped_column(String(12))
    payload_size: Mapped[int | None] = mapped_column(BigInteger)
    message_size: Mapped[int | None] = mapped_column(BigInteger)
    payload_digest: Mapped[str | None] = mapped_column(String(64))
    signer_fingerprint: Mapped[str | None] = mapped_column(String(64))
    #: outbound: the key of the payload to (re)seal, which is stored encrypted at rest in
    #: ``outbox_blobs`` (a sealed envelope expires in minutes)
    payload_key_id: Mapped[str | None] = mapped_column(String(16))
    #: the payload's own data key (``data_keys``); None: a row from before data keys
    payload_data_key_id: Mapped[str | None] = mapped_column(String(36))
    #: outbound: the SignatureValue of the latest sealed envelope (``outbox_blobs``): the
    #: receipt must confirm it
    signature_value: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: outbound: the SignatureValue of EVERY envelope sent (base64, one a line): a receipt may
    #: confirm an earlier attempt's, but never one we did not make
    signature_values: Mapped[str | None] = mapped_column(Text)
    #: outbound: the receipt we got; inbound: the receipt we answered with
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: outbound: the school-API client that submitted it (None: the CLI or the console)
    client_id: Mapped[str | None] = mapped_column(String(40))
    #: the categorie_uitlevering keys the payload holds (comma-separated, sorted)
    categories: Mapped[str | None] = mapped_column(String(400))
    #: inbound duplicate dossier: the row (pk) of the first copy
    duplicate_of: Mapped[int | None] = mapped_column(BigId)
    #: a decline reason (kept for audit, never logged): encrypted under the data key
    #: ``note_data_key_id`` ("v1:" and the base64 of nonce, ciphertext and tag); as typed when
    #: that is empty (a reason stored before migration 0010, until ``keys rotate`` encrypts it)
    note: Mapped[str | None] = mapped_column(Text)
    note_data_key_id: Mapped[str | None] = mapped_column(String(36))
    #: the retention purge or a subject erasure erased this message's content (data key and
    #: ciphertext destroyed)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: what erased it: PURGED_BY_RETENTION or PURGED_BY_ERASURE (None: not purged, or purged
    #: before migration ``purge_reason_1``)
    purge_reason: Mapped[str | None] = mapped_column(String(10))

    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index(
            "uq_messages_out_message_id",
            "message_id",
            unique=True,
            sqlite_where=text(OUT_NOT_REJECTED),
            postgresql_where=text(OUT_NOT_REJECTED),
        ),
        Index(
            "uq_messages_in_counterpart_oin_message_id",
            "counterpart_oin",
            "message_id",
            unique=True,
            sqlite_where=text(IN_NOT_REJECTED),
            postgresql_where=text(IN_NOT_REJECTED),
        ),
        Index("ix_messages_due", "direction", "status", "next_attempt_at"),
        Index("ix_messages_direction_payload_digest", "direction", "payload_digest"),
        # the messages of a pull request (subject access and erasure look them up by it)
        Index("ix_messages_direction_relates_to", "direction", "relates_to"),
    )


class OutboxBlob(Base):
    """An outbound message's large values, apart from its row: the payload (encrypted at rest)
    and the latest sealed envelope, one row each (``kind``).

    The ``messages`` row changes on every lease, heartbeat and status change; SQLite rewrites a
    whole row on any update, so with tens of MB in it each of those cost a dossier-sized copy
    in memory and on disk. Here a blob is written once and read once per attempt. ``data`` is
    the last column: on SQLite a blob is inserted as a ``zeroblob`` and written, and read,
    piecewise through the incremental blob API (``store/blobs.py``).
    """

    __tablename__ = "outbox_blobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    kind: Mapped[str] = mapped_column(String(16))
    data: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("uq_outbox_blobs_message_pk_kind", "message_pk", "kind", unique=True),
        CheckConstraint("kind IN ('payload', 'sealed')", name="kind"),
    )


class MessageEvent(Base):
    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(12))


class Dossier(Base):
    __tablename__ = "dossiers"

    #: random UUID, chosen before insert: it is part of the ciphertext's associated data
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    sending_school: Mapped[str | None] = mapped_column(String(6), index=True)
    receiving_school: Mapped[str | None] = mapped_column(String(6), index=True)
    payload_digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str] = mapped_column(String(16))
    #: the dossier's own data key (also encrypts its index row); None: from before data keys
    data_key_id: Mapped[str | None] = mapped_column(String(36))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: the school system fetched it (first export) / acknowledged it (retention counts from here)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DossierIndex(Base):
    __tablename__ = "dossier_index"

    dossier_id: Mapped[str] = mapped_column(
        ForeignKey("dossiers.id", ondelete="CASCADE"), primary_key=True
    )
    #: HMAC-SHA256 (key derived from the storage key) of the normalised family name
    name_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    #: HMAC-SHA256 of the ISO birth date
    birth_date_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    #: HMAC-SHA256 of the BSN (subject access; never stored in clear)
    bsn_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    key_id: Mapped[str] = mapped_column(String(16))
    data_key_id: Mapped[str | None] = mapped_column(String(36))
    #: the display values (JSON), encrypted like the dossier
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)


class DataKeyRow(Base):
    """One data key, wrapped under a storage key (``kek_id``). Deleting it shreds its content."""

    __tablename__ = "data_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kek_id: Mapped[str] = mapped_column(String(16), index=True)
    #: the school whose storage key wraps it (per-school keys); None: the default key
    school: Mapped[str | None] = mapped_column(String(6))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Disclosure(Base):
    """What left the sending school about a pupil: kept at delivery, without the dossier."""

    __tablename__ = "disclosures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(100), unique=True)
    sending_school: Mapped[str | None] = mapped_column(String(6))
    recipient_school: Mapped[str | None] = mapped_column(String(6))
    #: the school's name as the directory gave it at the time
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    recipient_oin: Mapped[str | None] = mapped_column(String(20))
    #: HMAC-SHA256 (keyring lookup key) of the pupil's BSN: findable by pupil, never in clear
    bsn_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    #: JSON: category keys sent; withheld as [{"category", "reason"}]; the inzage record
    categories_sent: Mapped[str] = mapped_column(Text)
    categories_withheld: Mapped[str] = mapped_column(Text)
    inzage: Mapped[str | None] = mapped_column(Text)
    payload_digest: Mapped[str | None] = mapped_column(String(64))
    receipt_digest: Mapped[str | None] = mapped_column(String(64))
    prepared_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: a push: the inzage record (``inzage_records.id``) it went under, the latest recorded for
    #: the pupil at the school when it was queued ("one inzage, one push" asks whether a push
    #: names the inzage, not whether it was queued after it: two processes' clocks); None:
    #: none (or a request's delivery); ``INZAGE_UNLINKED``: queued before pushes named it.
    #: No foreign key: a disclosure record outlives the inzage record (retention, erasure).
    inzage_pk: Mapped[int | None] = mapped_column(BigInteger)


#: ``Disclosure.inzage_pk`` of a record made before pushes named their inzage (migration
#: ``push_inzage_link_1``): taken as made on every inzage recorded at or before its queue time
INZAGE_UNLINKED = 0
#: ``Disclosure.inzage_pk`` once the inzage record it named was deleted (retention): on SQLite a
#: new inzage may get the deleted one's id, and a push would then be refused as made on it
INZAGE_DELETED = -1


class StoreCheck(Base):
    """A value the store checks its configuration against (``store.check_lookup_key``): the
    keyed hash of a fixed text under the lookup key, so that a storage key other than the one
    the keyed hashes were made with is refused instead of finding none of them."""

    __tablename__ = "store_checks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class Objection(Base):
    """A parents' objection to sending one category of a pupil's data (at the sending school)."""

    __tablename__ = "objections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    school: Mapped[str] = mapped_column(String(6))
    bsn_hmac: Mapped[str] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("uq_objections_pupil_category", "school", "bsn_hmac", "category", unique=True),
    )


class TransferLogEntry(Base):
    __tablename__ = "transfer_log"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: canonical JSON of the event (no personal data)
    event: Mapped[str] = mapped_column(Text)


class TransferLogBase(Base):
    """Where the stored transfer log starts after events past ``retention.transfer_log_days``
    were pruned: the last pruned event (seq, hash), which the first kept event links to. One row
    per pruning step, append-only; the base is the highest. No row: the log starts at event 1."""

    __tablename__ = "transfer_log_base"

    through_seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    pruned_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- the pull workflow (oso_gateway.store.pull) ---------------------------------------------

#: a request we sent (the new school) / a request we received (the old school)
REQUESTER = "requester"
HOLDER = "holder"


class PullRequest(Base):
    """A dossier request, on either side. The pupil's facts, a decline text and a dossier held
    until the parents' inzage are encrypted at rest; the rest names no pupil."""

    __tablename__ = "pull_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    side: Mapped[str] = mapped_column(String(10))
    #: the request message's wsa:MessageID
    request_id: Mapped[str] = mapped_column(String(100))
    our_school: Mapped[str] = mapped_column(String(6))
    counterpart_school: Mapped[str] = mapped_column(String(6))
    counterpart_oin: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    requested_date: Mapped[str] = mapped_column(String(10))
    #: requester: expires when not delivered by then; holder: answer by then
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    ready_by: Mapped[str | None] = mapped_column(String(10))
    decline_reason: Mapped[str | None] = mapped_column(String(30))
    key_id: Mapped[str] = mapped_column(String(16))
    pupil_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    decline_text_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: holder: the prepared dossier, waiting for the parents' inzage before it is queued
    held_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: holder: the delivery we queued; requester: the delivery we imported
    delivery_message_id: Mapped[str | None] = mapped_column(String(100))
    name_warning: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error_code: Mapped[str | None] = mapped_column(String(12))
    #: requester: a keyed hash (keyring lookup key, kind ``request_pupil``) of the pupil's BSN
    #: or onderwijsnummer, to find an open request for the same pupil (E486); NULL on the
    #: holder's rows, on rows made before migration 0016, and once the content is purged
    pupil_hmac: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: what erased its content (as ``Message.purge_reason``)
    purge_reason: Mapped[str | None] = mapped_column(String(10))

    __table_args__ = (
        CheckConstraint("side IN ('requester', 'holder')", name="side"),
        Index(
            "ix_pull_requests_pupil_hmac",
            "pupil_hmac",
            "our_school",
            "counterpart_school",
        ),
        Index(
            "uq_pull_requests_side_counterpart_oin_request_id",
            "side",
            "counterpart_oin",
            "request_id",
            unique=True,
        ),
        Index("ix_pull_requests_status", "side", "status", "deadline"),
    )


class PullRequestEvent(Base):
    """A request's state changes (append-only; codes, never pupil data)."""

    __tablename__ = "pull_request_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_pk: Mapped[int] = mapped_column(ForeignKey("pull_requests.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    #: a decline reason or an error code
    code: Mapped[str | None] = mapped_column(String(40))


class InzageRecord(Base):
    """The parents' inzage of a dossier before it leaves (or its recorded waiver), at the old
    school: for a request, or for a pupil (a push) by a keyed hash of the identifier."""

    __tablename__ = "inzage_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    school: Mapped[str] = mapped_column(String(6))
    request_pk: Mapped[int | None] = mapped_column(ForeignKey("pull_requests.id"), index=True)
    pupil_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    inzage_date: Mapped[str | None] = mapped_column(String(10))
    how: Mapped[str | None] = mapped_column(String(20))
    zienswijze: Mapped[bool] = mapped_column(Boolean, default=False)
    waived: Mapped[bool] = mapped_column(Boolean, default=False)
    key_id: Mapped[str] = mapped_column(String(16))
    #: the parents' view (zienswijze) and a waiver's reason: free text, encrypted at rest
    zienswijze_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    waiver_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: the version of the dossier the parents were shown (its preview's), when named
    previewed: Mapped[str | None] = mapped_column(String(16))
