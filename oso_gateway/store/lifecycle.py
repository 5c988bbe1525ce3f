"""The privacy lifecycle's tables: data-key rotation, the retention purge (crypto-shredding).

``Lifecycle`` works on the same engine and cipher as ``Store``. Every method is one transaction.

Rotation re-wraps data keys under the active storage key of their school in batches, each batch
a transaction of its own: a crash loses at most the batch in flight, and running it again picks
up where it stopped (the work list is "every data key not under its active key"). Rows from
before data keys are re-encrypted under a data key of their own in the same way.

The purge erases content by destroying its data key and ciphertext (crypto-shredding): dossier,
index row, outbound payload and sealed envelope; and a closed pull request's encrypted pupil
facts, decline text, held dossier and inzage texts. PII-free metadata stays (the message row, its
events, the transfer log), marked ``purged_at``. Each purged message and each run's count per
kind is a transfer-log event, in the purge's own transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Engine, delete, func, or_, select, update
from sqlalchemy.orm import Session

from oso_gateway.store import blobs, translog
from oso_gateway.store import models as m
from oso_gateway.store.api_clients import ApiIdempotency
from oso_gateway.store.crypto import AtRestCipher, aad_for, seal_note
from oso_gateway.store.engine import checkpoint_after_delete, unavailable_as_typed_error, writer
from oso_gateway.store.logchain import Anchor, StoredEvent, make_event
from oso_gateway.store.pull import INZAGE_PUPIL, OPEN_STATUSES

#: the purge's checkpoint waits at most this long for other readers and writers (ms): it holds
#: new writers meanwhile; a reader holding the WAL longer delays the truncation to the next one
PURGE_CHECKPOINT_WAIT_MS = 1000

#: the kinds of data the retention policy names (``RetentionSettings``)
RECEIVED = "received_dossier"
OUTBOUND = "outbound_payload"
REJECTED_FAILED = "rejected_failed"
REQUEST = "request_record"
#: the parents' view and a waiver's reason recorded for a push (an inzage with no request; one
#: with a request goes with the request). The record itself stays: a later push still finds it.
PUSH_INZAGE = "push_inzage_text"
#: an inzage record of a push (school, keyed hash of the pupil, date, how, version), once the
#: retention period for requests has passed: it no longer lets a push through, and it was kept
#: without end (a privacy walkthrough)
PUSH_INZAGE_RECORD = "push_inzage_record"
#: a school-API Idempotency-Key's record (no pupil data: the key's keyed hash; a key kept
#: verbatim by an earlier version may hold a pupil number), named by the message it made
IDEMPOTENCY = "idempotency_key"
KINDS = (
    RECEIVED,
    OUTBOUND,
    REJECTED_FAILED,
    REQUEST,
    PUSH_INZAGE,
    PUSH_INZAGE_RECORD,
    IDEMPOTENCY,
)

#: a pull request in these states waits for nothing more (``transfer.pull.service.CLOSED``);
#: its retention counts from its last status change (``updated_at``)
CLOSED_REQUEST_STATUSES = ("delivered", "declined", "withdrawn", "expired")


@dataclass(frozen=True, kw_only=True)
class Cutoffs:
    """Content older than these instants is purged (per kind)."""

    received_acknowledged: datetime
    received_unfetched: datetime
    outbound_undelivered: datetime
    rejected_failed: datetime
    requests: datetime
    #: Idempotency-Key records made before this are forgotten (None: none are)
    idempotency_keys: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class PurgeCandidate:
    pk: int
    message_id: str
    kind: str
    direction: str


@dataclass(kw_only=True)
class PurgeResult:
    purged: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.purged.values())


@dataclass(frozen=True, kw_only=True)
class KeyUse:
    """How many stored items a storage key still wraps (data keys + rows from before them)."""

    key_id: str
    data_keys: int
    legacy_rows: int

    @property
    def total(self) -> int:
        return self.data_keys + self.legacy_rows


def _dossier_aad(dossier_id: str, message_id: str) -> bytes:
    return aad_for("dossiers", dossier_id, message_id)


def _index_aad(dossier_id: str) -> bytes:
    return aad_for("dossier_index", dossier_id)


def _outbox_aad(message_id: str) -> bytes:
    return aad_for("messages", f"{m.OUT}:{message_id}", "payload")


class Lifecycle:
    """Key rotation and retention purge over the store's tables."""

    def __init__(self, engine: Engine, cipher: AtRestCipher | None) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self._cipher = cipher

    @property
    def cipher(self) -> AtRestCipher:
        if self._cipher is None:
            from oso_gateway.errors import ConfigError

            raise ConfigError("no at-rest storage key configured (storage.key / keyring)")
        return self._cipher

    def _write(self, work: Callable[[Session], object]) -> object:
        with unavailable_as_typed_error(), Session(self._writer) as session, session.begin():
            return work(session)

    def _read(self, work: Callable[[Session], object]) -> object:
        with unavailable_as_typed_error(), Session(self.engine) as session, session.begin():
            return work(session)

    # --- key use ------------------------------------------------------------------------------

    def key_ids_in_use(self) -> set[str]:
        """Every storage key id some stored item names (a data key's wrapping key, or a row
        encrypted directly under a key): what a keyring must hold for the data to open."""

        def work(session: Session) -> set[str]:
            found: set[str] = set(session.scalars(select(m.DataKeyRow.kek_id).distinct()))
            found |= set(
                session.scalars(
                    select(m.Dossier.key_id)
                    .where(m.Dossier.data_key_id.is_(None), m.Dossier.key_id.is_not(None))
                    .distinct()
                )
            )
            found |= set(
                session.scalars(
                    select(m.Message.payload_key_id)
                    .where(
                        m.Message.payload_key_id.is_not(None),
                        m.Message.payload_data_key_id.is_(None),
                        blobs.has(blobs.PAYLOAD),
                    )
                    .distinct()
                )
            )
            for table in (m.PullRequest, m.InzageRecord):
                found |= set(
                    session.scalars(
                        select(table.key_id).where(table.key_id.is_not(None)).distinct()
                    )
                )
            return {key_id for key_id in found if key_id}

        return cast(set[str], self._read(work))

    def data_keys_by_school(self) -> dict[str, int]:
        """How many data keys each school's stored items have (items of no school left out):
        what is still stored for a school, encrypted under its data keys."""

        def work(session: Session) -> dict[str, int]:
            rows = session.execute(
                select(m.DataKeyRow.school, func.count())
                .where(m.DataKeyRow.school.is_not(None))
                .group_by(m.DataKeyRow.school)
            ).all()
            return {str(school): int(count) for school, count in rows}

        result = self._read(work)
        assert isinstance(result, dict)
        return result

    def key_use(self, key_id: str) -> KeyUse:
        def work(session: Session) -> KeyUse:
            data_keys = session.scalar(
                select(func.count()).select_from(m.DataKeyRow).where(m.DataKeyRow.kek_id == key_id)
            )
            legacy = session.scalar(
                select(func.count())
                .select_from(m.Dossier)
                .where(m.Dossier.key_id == key_id, m.Dossier.data_key_id.is_(None))
            )
            legacy_out = session.scalar(
                select(func.count())
                .select_from(m.Message)
                .where(
                    m.Message.payload_key_id == key_id,
                    m.Message.payload_data_key_id.is_(None),
                    blobs.has(blobs.PAYLOAD),
                )
            )
            # the pull workflow's rows are encrypted directly under a storage key (by key id)
            others = sum(
                session.scalar(
                    select(func.count()).select_from(table).where(table.key_id == key_id)
                )
                or 0
                for table in (m.PullRequest, m.InzageRecord)
            )
            return KeyUse(
                key_id=key_id,
                data_keys=data_keys or 0,
                legacy_rows=(legacy or 0) + (legacy_out or 0) + others,
            )

        result = self._read(work)
        assert isinstance(result, KeyUse)
        return result

    # --- rotation -----------------------------------------------------------------------------

    def rewrap_batch(self, *, batch: int) -> int:
        """Re-wrap up to ``batch`` data keys that are not under their school's active key."""
        cipher = self.cipher

        def work(session: Session) -> int:
            schools = session.scalars(select(m.DataKeyRow.school).distinct()).all()
            done = 0
            for school in schools:
                target = cipher.provider.active_key_id(school)
                same_school = (
                    m.DataKeyRow.school.is_(None)
                    if school is None
                    else m.DataKeyRow.school == school
                )
                rows = session.scalars(
                    select(m.DataKeyRow)
                    .where(same_school, m.DataKeyRow.kek_id != target)
                    .order_by(m.DataKeyRow.id)
                    .limit(batch - done)
                    .with_for_update(skip_locked=True)
                ).all()
                for row in rows:
                    row.wrapped = cipher.rewrap(
                        row.id, kek_id=row.kek_id, wrapped=row.wrapped, school=row.school, to=target
                    )
                    row.kek_id = target
                done += len(rows)
                if done >= batch:
                    break
            session.flush()
            return done

        result = self._write(work)
        assert isinstance(result, int)
        return result

    def upgrade_legacy_batch(self, *, batch: int, now: datetime) -> int:
        """Give up to ``batch`` rows from before data keys a data key of their own."""
        cipher = self.cipher

        def work(session: Session) -> int:
            done = 0
            dossiers = session.scalars(
                select(m.Dossier)
                .where(m.Dossier.data_key_id.is_(None))
                .order_by(m.Dossier.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            for dossier in dossiers:
                message_id = session.scalars(
                    select(m.Message.message_id).where(m.Message.id == dossier.message_pk)
                ).one()
                key = cipher.new_data_key(dossier.receiving_school)
                aad = _dossier_aad(dossier.id, message_id)
                plain = cipher.decrypt(dossier.ciphertext, aad=aad, key_id=dossier.key_id)
                dossier.ciphertext = cipher.seal(key.key, plain, aad=aad)
                index = session.get(m.DossierIndex, dossier.id)
                if index is not None:
                    aad = _index_aad(dossier.id)
                    shown = cipher.decrypt(index.ciphertext, aad=aad, key_id=index.key_id)
                    index.ciphertext = cipher.seal(key.key, shown, aad=aad)
                    index.key_id, index.data_key_id = key.kek_id, key.id
                dossier.key_id, dossier.data_key_id = key.kek_id, key.id
                session.add(_key_row(key, now))
                done += 1
            messages = session.scalars(
                select(m.Message)
                .where(
                    m.Message.payload_data_key_id.is_(None),
                    blobs.has(blobs.PAYLOAD),
                )
                .order_by(m.Message.id)
                .limit(batch - done)
                .with_for_update(skip_locked=True)
            ).all()
            for message in messages:
                stored = blobs.get(session, message.id, blobs.PAYLOAD)
                assert stored is not None and message.payload_key_id
                key = cipher.new_data_key(message.our_school)
                aad = _outbox_aad(message.message_id)
                plain = cipher.decrypt(stored, aad=aad, key_id=message.payload_key_id)
                del stored
                size, pieces = cipher.seal_pieces(key.key, plain, aad=aad)
                blobs.put(session, message.id, blobs.PAYLOAD, pieces, size)
                message.payload_key_id, message.payload_data_key_id = key.kek_id, key.id
                session.add(_key_row(key, now))
                done += 1
            done += _encrypt_legacy_notes(session, cipher, limit=batch - done, now=now)
            session.flush()
            return done

        result = self._write(work)
        assert isinstance(result, int)
        return result

    def reencrypt_pull_batch(self, *, batch: int) -> int:
        """Move up to ``batch`` rows of the pull workflow (encrypted directly under a storage
        key, by id) to the active default key."""
        cipher = self.cipher
        target = cipher.key_id

        def work(session: Session) -> int:
            done = _reencrypt_rows(
                session,
                cipher,
                m.PullRequest,
                _PULL_COLUMNS,
                table="pull_requests",
                owner=lambda row: f"{row.side}/{row.counterpart_oin}/{row.request_id}",
                target=target,
                limit=batch,
            )
            done += _reencrypt_rows(
                session,
                cipher,
                m.InzageRecord,
                _INZAGE_COLUMNS,
                table="inzage",
                owner=lambda rec: f"{rec.school}/{rec.request_pk}/{rec.pupil_hmac}",
                target=target,
                limit=batch - done,
            )
            session.flush()
            return done

        result = self._write(work)
        assert isinstance(result, int)
        return result

    # --- retention purge ----------------------------------------------------------------------

    def push_inzage_about(self, pupil_identifier: str) -> list[PurgeCandidate]:
        """The inzage records of pushes of this pupil that still hold a free text (for an
        erasure on request)."""
        hashed = self.cipher.lookup_hash(INZAGE_PUPIL, pupil_identifier)
        found = self._read(
            lambda s: push_inzage_candidates(s, m.InzageRecord.pupil_hmac == hashed, limit=None)
        )
        assert isinstance(found, list)
        return found

    def purge_candidates(self, cutoffs: Cutoffs, *, limit: int = 1000) -> list[PurgeCandidate]:
        """What the purge would erase now (oldest first, at most ``limit``)."""

        def work(session: Session) -> list[PurgeCandidate]:
            found = _message_candidates(
                session,
                RECEIVED,
                or_(
                    m.Dossier.acknowledged_at < cutoffs.received_acknowledged,
                    (m.Dossier.acknowledged_at.is_(None))
                    & (m.Dossier.imported_at < cutoffs.received_unfetched),
                ),
                limit=limit,
                with_dossier=True,
            )
            # a declined dossier is gone already; its reason goes after the same period, counted
            # from the decline (the school system's answer, as an acknowledgement is)
            found += _message_candidates(
                session,
                RECEIVED,
                m.Message.direction == m.IN,
                m.Message.status == m.DECLINED,
                m.Message.note.is_not(None),
                m.Message.updated_at < cutoffs.received_acknowledged,
                limit=limit,
            )
            found += _message_candidates(
                session,
                OUTBOUND,
                m.Message.direction == m.OUT,
                m.Message.status.in_((m.QUEUED, m.RETRYING)),
                m.Message.created_at < cutoffs.outbound_undelivered,
                limit=limit,
            )
            found += _message_candidates(
                session,
                REJECTED_FAILED,
                m.Message.status.in_((m.REJECTED, m.FAILED)),
                m.Message.updated_at < cutoffs.rejected_failed,
                limit=limit,
            )
            requests = session.execute(
                select(m.PullRequest.id, m.PullRequest.request_id, m.PullRequest.side)
                .where(
                    m.PullRequest.status.in_(CLOSED_REQUEST_STATUSES),
                    m.PullRequest.pupil_ciphertext != b"",
                    m.PullRequest.updated_at < cutoffs.requests,
                )
                .order_by(m.PullRequest.id)
                .limit(limit)
            ).all()
            found += [
                PurgeCandidate(pk=r[0], message_id=r[1], kind=REQUEST, direction=_side(r[2]))
                for r in requests
            ]
            found += push_inzage_candidates(
                session,
                m.InzageRecord.recorded_at < cutoffs.requests,
                limit=limit,
                kind=PUSH_INZAGE_RECORD,
            )
            if cutoffs.idempotency_keys is not None:
                found += _idempotency_candidates(session, cutoffs.idempotency_keys, limit=limit)
            return found

        result = self._read(work)
        assert isinstance(result, list)
        return result

    def purge(
        self, candidates: Sequence[PurgeCandidate], *, now: datetime, reason: str = "retention"
    ) -> PurgeResult:
        """Erase the candidates' content in one transaction, logged and kept with each row
        (``reason``: ``retention``, or ``erasure`` on a person's request: ``m.PURGED_BY_*``);
        then flush SQLite's WAL."""
        outcome = PurgeResult()

        def work(session: Session) -> None:
            events = []
            for cand in candidates:
                if cand.kind == REQUEST:
                    events += _purge_request(session, cand, outcome, now=now, reason=reason)
                    continue
                if cand.kind in (PUSH_INZAGE, PUSH_INZAGE_RECORD):
                    events += _purge_push_inzage(session, cand, outcome, now=now, reason=reason)
                    continue
                if cand.kind == IDEMPOTENCY:  # no content: counted in purge_done, not per row
                    gone = session.execute(
                        delete(ApiIdempotency).where(ApiIdempotency.message_pk == cand.pk)
                    )
                    if gone.rowcount:  # type: ignore[attr-defined]
                        outcome.purged[IDEMPOTENCY].append(cand.message_id)
                    continue
                row = session.get(m.Message, cand.pk, with_for_update=True)
                if row is None or row.purged_at is not None:
                    continue
                if cand.kind == OUTBOUND and row.status not in (m.QUEUED, m.RETRYING):
                    continue  # it was claimed for sending meanwhile: not purged this time
                if cand.kind == REJECTED_FAILED and row.status not in (m.REJECTED, m.FAILED):
                    continue  # retried meanwhile: it is waiting to be sent again
                _shred_message(session, row)
                row.purged_at, row.purge_reason = now, reason
                if cand.kind == OUTBOUND:
                    row.status, row.last_error_code = m.FAILED, "OSO-E530"
                    row.next_attempt_at = None
                    session.add(
                        m.MessageEvent(
                            message_pk=row.id, at=now, status=m.FAILED, error_code="OSO-E530"
                        )
                    )
                outcome.purged[cand.kind].append(row.message_id)
                events.append(
                    make_event(
                        at=now,
                        kind="system",
                        status="purged",
                        operation=f"{reason}.{cand.kind}",
                        direction=row.direction,
                        message_id=_loggable(row.message_id),
                    )
                )
            for kind, ids in outcome.purged.items():
                if ids:
                    events.append(
                        make_event(
                            at=now,
                            kind="system",
                            status="purge_done",
                            operation=f"{reason}.{kind}",
                            count=len(ids),
                        )
                    )
            if events:
                translog.append_log_events(session, events, now=now)

        self._write(work)
        if outcome.total:
            self.flush_deleted()
        return outcome

    # --- the transfer log's own retention -----------------------------------------------------

    def prune_log_batch(
        self,
        *,
        before: datetime,
        batch: int,
        now: datetime,
        read_anchors: Callable[[], Sequence[Anchor]],
        before_delete: Callable[[Sequence[StoredEvent]], None],
        sign_base: Callable[[StoredEvent], None],
    ) -> list[StoredEvent]:
        """``translog.prune_log_batch`` in a transaction of its own."""
        return cast(
            "list[StoredEvent]",
            self._write(
                lambda session: translog.prune_log_batch(
                    session,
                    before=before,
                    batch=batch,
                    now=now,
                    read_anchors=read_anchors,
                    before_delete=before_delete,
                    sign_base=sign_base,
                )
            ),
        )

    def log_prunable(self, before: datetime, anchors: Sequence[Anchor]) -> tuple[int, int]:
        """(how many, through which seq) of the stored events pruning ``before`` would remove
        now: the prefix of the chain that says it happened before ``before``, as far as
        ``anchors`` vouch for it (``translog.due_for_pruning``)."""
        return cast(
            "tuple[int, int]",
            self._read(lambda session: translog.due_for_pruning(session, before, anchors)),
        )

    def log_base(self) -> tuple[int, str]:
        """``translog.log_base``: where the stored log starts."""
        return cast("tuple[int, str]", self._read(translog.log_base))

    def flush_deleted(self) -> None:
        """SQLite: copy the WAL into the database and truncate it, so no earlier page image
        (with a destroyed key or ciphertext) stays in the WAL file. Deleted cells were zeroed
        (``secure_delete``). Readers that hold old snapshots can keep the WAL busy: then it is
        truncated at a later purge or checkpoint."""
        checkpoint_after_delete(self.engine, wait_ms=PURGE_CHECKPOINT_WAIT_MS)

    def acknowledge(self, message_pk: int, *, now: datetime, fetched_only: bool = False) -> None:
        """The school system fetched (or acknowledged) an inbound dossier: retention counts from
        the acknowledgement."""
        column = m.Dossier.fetched_at if fetched_only else m.Dossier.acknowledged_at

        def work(session: Session) -> None:
            session.execute(
                update(m.Dossier)
                .where(m.Dossier.message_pk == message_pk, column.is_(None))
                .values({column: now})
            )

        self._write(work)

    def log_key_event(
        self, operation: str, key_id: str, *, now: datetime, count: int | None = None
    ) -> None:
        event = make_event(
            at=now, kind="system", status="done", operation=operation, key_id=key_id, count=count
        )
        self._write(lambda session: translog.append_log_events(session, [event], now=now))


_PULL_COLUMNS = (
    ("pupil_ciphertext", "pupil"),
    ("decline_text_ciphertext", "decline"),
    ("held_ciphertext", "held"),
)
_INZAGE_COLUMNS = (("zienswijze_ciphertext", "view"), ("waiver_ciphertext", "waiver"))


def _reencrypt_rows(
    session: Session,
    cipher: AtRestCipher,
    model: Any,
    columns: tuple[tuple[str, str], ...],
    *,
    table: str,
    owner: Callable[[Any], str],
    target: str,
    limit: int,
) -> int:
    """Re-encrypt up to ``limit`` rows of ``model`` not yet under ``target``, column by column,
    each bound to its table, owner and column (associated data); returns how many moved."""
    rows = session.scalars(
        select(model)
        .where(model.key_id != target)
        .order_by(model.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        for column, what in columns:
            _reencrypt(cipher, row, column, aad_for(table, owner(row), what))
        row.key_id = target
    return len(rows)


def _reencrypt(
    cipher: AtRestCipher, row: m.PullRequest | m.InzageRecord, column: str, aad: bytes
) -> None:
    blob = getattr(row, column)
    if blob:
        plain = cipher.decrypt(blob, aad=aad, key_id=row.key_id)
        setattr(row, column, cipher.encrypt(plain, aad=aad))


def _message_candidates(
    session: Session,
    kind: str,
    *conditions: ColumnElement[bool],
    limit: int,
    with_dossier: bool = False,
) -> list[PurgeCandidate]:
    """The messages not purged yet that meet ``conditions`` (oldest first, at most ``limit``),
    as purge candidates of ``kind``; ``with_dossier``: only those with a dossier row (which the
    conditions may name)."""
    query = select(m.Message.id, m.Message.message_id, m.Message.direction)
    if with_dossier:
        query = query.join(m.Dossier, m.Dossier.message_pk == m.Message.id)
    rows = session.execute(
        query.where(m.Message.purged_at.is_(None), *conditions).order_by(m.Message.id).limit(limit)
    ).all()
    return [PurgeCandidate(pk=r[0], message_id=r[1], kind=kind, direction=r[2]) for r in rows]


def plain_text_rows(engine: Engine) -> int:
    """How many decline reasons an older version stored as typed (before migration 0010) are
    still in plain text: ``keys rotate`` encrypts them (``_encrypt_legacy_notes``). Needs no
    key, so ``db upgrade`` can say so (nothing did: a vendor's upgrade)."""
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count())
            .select_from(m.Message)
            .where(m.Message.note.is_not(None), m.Message.note_data_key_id.is_(None))
        ).scalar()
    return int(count or 0)


PLAIN_TEXT_NOTE = (
    "note: {count} decline reason(s) stored by a version before migration 0010 are in plain "
    "text: run `oso-gateway keys rotate` once to encrypt them"
)


def _encrypt_legacy_notes(
    session: Session, cipher: AtRestCipher, *, limit: int, now: datetime
) -> int:
    """Encrypt up to ``limit`` decline reasons stored as typed (before migration 0010), each
    under a data key of its own; returns how many."""
    if limit <= 0:
        return 0
    rows = session.scalars(
        select(m.Message)
        .where(m.Message.note.is_not(None), m.Message.note_data_key_id.is_(None))
        .order_by(m.Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        assert row.note is not None
        key = cipher.new_data_key(row.our_school)
        row.note = seal_note(key.key, row.note, message_id=row.message_id)
        row.note_data_key_id = key.id
        session.add(_key_row(key, now))
    return len(rows)


def _shred_message(session: Session, row: m.Message) -> None:
    """Destroy every data key and ciphertext of one message (the row itself stays)."""
    key_ids = [row.payload_data_key_id, row.note_data_key_id]
    row.note = row.note_data_key_id = None  # a decline reason, with its key
    dossier = session.scalars(select(m.Dossier).where(m.Dossier.message_pk == row.id)).first()
    if dossier is not None:
        key_ids.append(dossier.data_key_id)
        session.execute(delete(m.DossierIndex).where(m.DossierIndex.dossier_id == dossier.id))
        dossier.ciphertext = b""  # the row stays as a tombstone: reading it says "purged"
    for key_id in filter(None, key_ids):
        session.execute(delete(m.DataKeyRow).where(m.DataKeyRow.id == key_id))
    blobs.drop(session, row.id)
    row.payload_data_key_id = None


def _purge_request(
    session: Session, cand: PurgeCandidate, outcome: PurgeResult, *, now: datetime, reason: str
) -> list[dict[str, str]]:
    """Erase one closed request record's encrypted content (pupil facts and their keyed hash,
    decline text, held dossier, the parents' view and waiver); the row stays as a PII-free
    tombstone with its status and events, its pupil ciphertext emptied (``b""``: "purged")."""
    row = session.get(m.PullRequest, cand.pk, with_for_update=True)
    if row is None or row.pupil_ciphertext == b"":
        return []  # already purged
    if (
        reason == "erasure"
        and row.side == m.REQUESTER
        and row.status in OPEN_STATUSES
        and row.deadline < now
    ):
        # ours, past its deadline: it waits for nothing more (the pull service's refresh
        # would expire it); expired here, under the row lock, so no answer slips in between
        row.status, row.updated_at, row.held_ciphertext = "expired", now, None
        session.add(m.PullRequestEvent(request_pk=row.id, at=now, status="expired"))
    if row.status not in CLOSED_REQUEST_STATUSES:
        return []  # open: an answer or the delivery still needs its facts
    row.pupil_ciphertext = b""
    row.pupil_hmac = None  # the pupil's keyed hash goes with the facts: the tombstone names none
    row.decline_text_ciphertext = None
    row.held_ciphertext = None
    row.purge_reason = reason
    session.execute(
        update(m.InzageRecord)
        .where(m.InzageRecord.request_pk == row.id)
        .values(zienswijze_ciphertext=None, waiver_ciphertext=None)
    )
    session.add(m.PullRequestEvent(request_pk=row.id, at=now, status=row.status, code="purged"))
    outcome.purged[REQUEST].append(row.request_id)
    return [
        make_event(
            at=now,
            kind="system",
            status="purged",
            operation=f"{reason}.{REQUEST}",
            direction=cand.direction,
            message_id=_loggable(row.request_id),
        )
    ]


def push_inzage_candidates(
    session: Session,
    *conditions: ColumnElement[bool],
    limit: int | None = 1000,
    kind: str = PUSH_INZAGE,
) -> list[PurgeCandidate]:
    """Inzage records of a push (no request) that meet ``conditions`` (oldest first; at most
    ``limit``, None: all), named ``inzage:<row>`` (they have no id): with ``PUSH_INZAGE``, those
    that still hold the parents' view or a waiver's reason (their texts go); with
    ``PUSH_INZAGE_RECORD``, every one (the whole record goes)."""
    if kind == PUSH_INZAGE:
        conditions += (
            or_(
                m.InzageRecord.zienswijze_ciphertext.is_not(None),
                m.InzageRecord.waiver_ciphertext.is_not(None),
            ),
        )
    stmt = (
        select(m.InzageRecord.id)
        .where(m.InzageRecord.request_pk.is_(None), *conditions)
        .order_by(m.InzageRecord.id)
    )
    rows = session.scalars(stmt if limit is None else stmt.limit(limit)).all()
    return [
        PurgeCandidate(pk=pk, message_id=f"inzage:{pk}", kind=kind, direction=m.OUT) for pk in rows
    ]


def _purge_push_inzage(
    session: Session, cand: PurgeCandidate, outcome: PurgeResult, *, now: datetime, reason: str
) -> list[dict[str, str]]:
    """One push's inzage record: its free texts erased (``PUSH_INZAGE``: the date, how, and
    whether a view was given or the inzage waived stay, for the push's gate and its disclosure
    record), or the whole record deleted past the retention period (``PUSH_INZAGE_RECORD``: a
    later push of the pupil then needs a new inzage; a disclosure record keeps its own copy)."""
    row = session.get(m.InzageRecord, cand.pk, with_for_update=True)
    if row is None or row.request_pk is not None:
        return []
    if cand.kind == PUSH_INZAGE_RECORD:
        # the pushes that went under it say so no more by its id, which SQLite may give to the
        # next inzage (a push on that one was refused as made already: a review)
        session.execute(
            update(m.Disclosure)
            .where(m.Disclosure.inzage_pk == row.id)
            .values(inzage_pk=m.INZAGE_DELETED)
        )
        session.delete(row)
    elif row.zienswijze_ciphertext is None and row.waiver_ciphertext is None:
        return []  # erased meanwhile
    else:
        row.zienswijze_ciphertext = row.waiver_ciphertext = None
    outcome.purged[cand.kind].append(cand.message_id)
    return [
        make_event(
            at=now,
            kind="system",
            status="purged",
            operation=f"{reason}.{cand.kind}",
            direction=m.OUT,
        )
    ]


def _idempotency_candidates(
    session: Session, before: datetime, *, limit: int
) -> list[PurgeCandidate]:
    """Idempotency-Key records made before ``before`` (oldest first, at most ``limit``), each
    named by the message its call made."""
    rows = session.execute(
        select(ApiIdempotency.message_pk, m.Message.message_id, m.Message.direction)
        .join(m.Message, m.Message.id == ApiIdempotency.message_pk)
        .where(ApiIdempotency.created_at < before)
        .order_by(ApiIdempotency.created_at, ApiIdempotency.message_pk)
        .limit(limit)
    ).all()
    return [
        PurgeCandidate(pk=pk, message_id=message_id, kind=IDEMPOTENCY, direction=direction)
        for pk, message_id, direction in rows
    ]


def _side(side: str) -> str:
    """A request we sent went out; one we received came in (the log's direction)."""
    return m.OUT if side == m.REQUESTER else m.IN


def _loggable(message_id: str) -> str | None:
    return message_id if re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", message_id) else None


def _key_row(key: object, now: datetime) -> m.DataKeyRow:
    from oso_gateway.store.crypto import DataKey

    assert isinstance(key, DataKey)
    return m.DataKeyRow(
        id=key.id, kek_id=key.kek_id, school=key.school, wrapped=key.wrapped, created_at=now
    )
