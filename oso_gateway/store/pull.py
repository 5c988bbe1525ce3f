"""Repository of the pull workflow: dossier requests (either side), their events, inzage records.

All SQL of the pull workflow lives here. The pupil's facts, a decline's text, a dossier held for
the parents' inzage and the parents' view (zienswijze) are encrypted at rest with the store's
cipher; associated data binds each ciphertext to its row. Functions named ``*_in`` run inside a
caller's transaction (the receive service's import transaction); the ``PullStore`` methods are one
transaction each.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from oso_gateway.errors import GatewayError, RequestPurged, RequestStateInvalid
from oso_gateway.store import models as m
from oso_gateway.store import translog
from oso_gateway.store.crypto import AtRestCipher, aad_for
from oso_gateway.store.engine import (
    advisory_xact_lock,
    read_transaction,
    write_transaction,
    writer,
)
from oso_gateway.store.logchain import make_event
from oso_gateway.store.repository import Store

_T = TypeVar("_T")

#: the lookup-hash kind of the pupil an inzage for a push names (``InzageRecord.pupil_hmac``)
INZAGE_PUPIL = "pupil_id"
#: the lookup-hash kind of the pupil a request of ours asks for (``PullRequest.pupil_hmac``):
#: a kind of its own, so the hash matches no other table's hash of the same pupil
REQUEST_PUPIL = "request_pupil"
#: a request of ours that still waits for the old school (and is not past its deadline)
OPEN_SENT = ("sent", "accepted")


@dataclass(frozen=True, kw_only=True)
class RequestRecord:
    pk: int
    side: str
    request_id: str
    our_school: str
    counterpart_school: str
    counterpart_oin: str
    status: str
    requested_date: str
    deadline: datetime
    ready_by: str | None
    decline_reason: str | None
    delivery_message_id: str | None
    name_warning: bool
    last_error_code: str | None
    held: bool
    #: its content (pupil facts, decline text, the parents' view) was erased: a tombstone
    purged: bool
    created_at: datetime
    updated_at: datetime
    #: what erased it (``m.PURGED_BY_RETENTION``, ``m.PURGED_BY_ERASURE``); None: not purged, or
    #: purged before the store kept it
    purge_reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class RequestEvent:
    at: datetime
    status: str
    code: str | None


@dataclass(frozen=True, kw_only=True)
class InzageEntry:
    school: str
    request_pk: int | None
    inzage_date: str | None
    how: str | None
    zienswijze: bool
    waived: bool
    recorded_at: datetime
    #: the parents' view or a waiver's reason is still held (not yet erased)
    text_held: bool = False
    #: the version of the dossier the parents were shown, when the inzage named it
    previewed: str | None = None
    #: its row (``inzage_records.id``); None before it is in the store
    pk: int | None = None


@dataclass(frozen=True, kw_only=True)
class NewRequest:
    side: str
    request_id: str
    our_school: str
    counterpart_school: str
    counterpart_oin: str
    status: str
    requested_date: str
    deadline: datetime
    pupil: dict[str, Any]
    #: a request of ours: the pupil's keyed hash (``PullStore.request_pupil_hash``)
    pupil_hmac: str | None = None


def _record(row: m.PullRequest) -> RequestRecord:
    return RequestRecord(
        pk=row.id,
        side=row.side,
        request_id=row.request_id,
        our_school=row.our_school,
        counterpart_school=row.counterpart_school,
        counterpart_oin=row.counterpart_oin,
        status=row.status,
        requested_date=row.requested_date,
        deadline=row.deadline,
        ready_by=row.ready_by,
        decline_reason=row.decline_reason,
        delivery_message_id=row.delivery_message_id,
        name_warning=bool(row.name_warning),
        last_error_code=row.last_error_code,
        held=row.held_ciphertext is not None,
        purged=row.pupil_ciphertext == b"",
        created_at=row.created_at,
        updated_at=row.updated_at,
        purge_reason=row.purge_reason if row.pupil_ciphertext == b"" else None,
    )


def _aad(row: m.PullRequest | NewRequest, what: str) -> bytes:
    return _aad_of(row.side, row.counterpart_oin, row.request_id, what)


def _aad_of(side: str, counterpart_oin: str, request_id: str, what: str) -> bytes:
    return aad_for("pull_requests", f"{side}/{counterpart_oin}/{request_id}", what)


def insert_request_in(
    session: Session, cipher: AtRestCipher, new: NewRequest, *, now: datetime
) -> RequestRecord:
    """Insert a request (and its first event) in the caller's transaction."""
    row = m.PullRequest(
        side=new.side,
        request_id=new.request_id,
        our_school=new.our_school,
        counterpart_school=new.counterpart_school,
        counterpart_oin=new.counterpart_oin,
        status=new.status,
        requested_date=new.requested_date,
        deadline=new.deadline,
        key_id=cipher.key_id,
        pupil_ciphertext=cipher.encrypt(
            json.dumps(new.pupil, sort_keys=True).encode("utf-8"), aad=_aad(new, "pupil")
        ),
        name_warning=False,
        pupil_hmac=new.pupil_hmac,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    session.add(m.PullRequestEvent(request_pk=row.id, at=now, status=new.status))
    session.flush()
    return _record(row)


def transition_in(
    session: Session,
    cipher: AtRestCipher,
    pk: int,
    *,
    status: str,
    now: datetime,
    code: str | None = None,
    decline_text: str | None = None,
    expected: Collection[str] | None = None,
    as_read: RequestRecord | None = None,
    **fields: Any,
) -> RequestRecord:
    """Change a request's status (an event with ``code``) and the given columns. ``expected``:
    the statuses the caller read and decided on; ``as_read``: the record it decided on, whose
    answer (a dossier held or queued) must be unchanged too. A row that moved on meanwhile (an
    answer, a dossier, a refresh in between) is left as it is: ``RequestStateInvalid`` (E474)."""
    row = session.get(m.PullRequest, pk, with_for_update=True)
    if row is None:
        raise LookupError(f"no request row {pk}")
    if expected is not None and row.status not in expected:
        raise RequestStateInvalid(f"request {row.request_id} is {row.status} now")
    if as_read is not None and (
        row.delivery_message_id != as_read.delivery_message_id
        or (row.held_ciphertext is not None) != as_read.held
    ):
        raise RequestStateInvalid(f"request {row.request_id} was answered with a dossier meanwhile")
    allowed = {"ready_by", "decline_reason", "delivery_message_id", "name_warning"}
    allowed |= {"last_error_code"}
    for name, value in fields.items():
        if name not in allowed:
            raise ValueError(f"not a request column to set: {name}")
        setattr(row, name, value)
    if decline_text is not None:
        row.decline_text_ciphertext = cipher.encrypt(
            decline_text.encode("utf-8"), aad=_aad(row, "decline")
        )
    if status != row.status:
        session.add(m.PullRequestEvent(request_pk=pk, at=now, status=status, code=code))
    if status not in OPEN_STATUSES:
        # A closed request (declined, withdrawn, expired, delivered) holds no dossier for the
        # parents' inzage any more: a decline while one was held kept it until the purge.
        row.held_ciphertext = None
    row.status = status
    row.updated_at = now
    session.flush()
    return _record(row)


def find_request_in(
    session: Session,
    *,
    side: str,
    request_id: str,
    counterpart_oin: str | None = None,
    schools: Collection[str] | None = None,
) -> RequestRecord | None:
    """The one request with this id on ``side`` (of ``counterpart_oin``, for one of
    ``schools``: None, any); None when there is none, or more than one (ambiguous)."""
    stmt = select(m.PullRequest).where(
        m.PullRequest.side == side, m.PullRequest.request_id == request_id
    )
    if counterpart_oin is not None:
        stmt = stmt.where(m.PullRequest.counterpart_oin == counterpart_oin)
    if schools is not None:
        stmt = stmt.where(m.PullRequest.our_school.in_(list(schools)))
    rows = session.scalars(stmt).all()
    return _record(rows[0]) if len(rows) == 1 else None


def lock_pupil_requests(
    session: Session, our_school: str, old_school: str, pupil_hmac: str
) -> None:
    """Queue the transactions that check and store a request of ``our_school`` to
    ``old_school`` for one pupil (``pupil_hmac``) until this one ends: on PostgreSQL a
    transaction-scoped advisory lock on their hash; SQLite's write transactions (``BEGIN
    IMMEDIATE``) are queued already."""
    advisory_xact_lock(session, "request", our_school, old_school, pupil_hmac)


def open_request_in(
    session: Session, *, our_school: str, old_school: str, pupil_hmac: str, now: datetime
) -> RequestRecord | None:
    """The oldest request of ours from ``our_school`` to ``old_school`` for the pupil whose
    keyed hash is ``pupil_hmac`` that is still open: ``sent`` or ``accepted`` and not past its
    deadline (one past it is expired, whether or not a refresh wrote so yet). Declined,
    withdrawn, expired and delivered ones are closed; rows without a hash (made before
    migration 0016, or purged) are never found. None when there is none."""
    stmt = (
        select(m.PullRequest)
        .where(
            m.PullRequest.pupil_hmac == pupil_hmac,
            m.PullRequest.our_school == our_school,
            m.PullRequest.counterpart_school == old_school,
            m.PullRequest.side == m.REQUESTER,
            m.PullRequest.status.in_(OPEN_SENT),
            m.PullRequest.deadline >= now,
        )
        .order_by(m.PullRequest.id)
        .limit(1)
    )
    row = session.scalars(stmt).first()
    return None if row is None else _record(row)


class PullStore:
    """The pull workflow's tables over one engine (one transaction per method)."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self._store = store
        self._writer = writer(store.engine)

    @property
    def cipher(self) -> AtRestCipher:
        """The store's at-rest cipher (ConfigError when no storage key is configured)."""
        return self._store.cipher

    def _write(self, work: Callable[[Session], _T]) -> _T:
        return write_transaction(self._writer, work)

    def _read(self, work: Callable[[Session], _T]) -> _T:
        return read_transaction(self.engine, work)

    # --- requests ------------------------------------------------------------------------------

    def insert(self, new: NewRequest, *, now: datetime) -> RequestRecord:
        return self._write(lambda s: insert_request_in(s, self.cipher, new, now=now))

    def transition(
        self,
        pk: int,
        *,
        status: str,
        now: datetime,
        code: str | None = None,
        decline_text: str | None = None,
        expected: Collection[str] | None = None,
        as_read: RequestRecord | None = None,
        **fields: Any,
    ) -> RequestRecord:
        return self._write(
            lambda s: transition_in(
                s,
                self.cipher,
                pk,
                status=status,
                now=now,
                code=code,
                decline_text=decline_text,
                expected=expected,
                as_read=as_read,
                **fields,
            )
        )

    def find(
        self,
        *,
        side: str,
        request_id: str,
        counterpart_oin: str | None = None,
        schools: Collection[str] | None = None,
    ) -> RequestRecord | None:
        return self._read(
            lambda s: find_request_in(
                s,
                side=side,
                request_id=request_id,
                counterpart_oin=counterpart_oin,
                schools=schools,
            )
        )

    def request_pupil_hash(self, pupil_number: str) -> str:
        """The keyed hash a request of ours keeps of its pupil's BSN or onderwijsnummer."""
        return self.cipher.lookup_hash(REQUEST_PUPIL, pupil_number)

    def open_request(
        self, *, our_school: str, old_school: str, pupil_hmac: str, now: datetime
    ) -> RequestRecord | None:
        """``open_request_in`` in a read of its own."""
        return self._read(
            lambda s: open_request_in(
                s, our_school=our_school, old_school=old_school, pupil_hmac=pupil_hmac, now=now
            )
        )

    def get(self, pk: int) -> RequestRecord | None:
        def work(session: Session) -> RequestRecord | None:
            row = session.get(m.PullRequest, pk)
            return None if row is None else _record(row)

        return self._read(work)

    def list_requests(
        self,
        *,
        side: str | None = None,
        statuses: Sequence[str] = (),
        schools: Sequence[str] | None = None,
        newest_first: bool = False,
        before_pk: int | None = None,
        limit: int | None = None,
        either_school: str | None = None,
        request_ids: Collection[str] | None = None,
        with_error_code: bool = False,
    ) -> list[RequestRecord]:
        """The requests, oldest first (``newest_first``: newest first). ``schools``: only these
        schools' requests (None: every school's; empty: none). A page: ``before_pk``, only rows
        with a smaller key (the cursor of a newest-first list), and at most ``limit`` rows.
        ``either_school``: only those with a school on either side that starts so (a BRIN, or
        BRIN + vestiging: an operator's filter). ``request_ids``: only these (at most a few
        hundred); ``with_error_code``: only those that carry a failed message's code."""
        if (schools is not None and not schools) or (request_ids is not None and not request_ids):
            return []

        def work(session: Session) -> list[RequestRecord]:
            key = m.PullRequest.id
            stmt = select(m.PullRequest).order_by(key.desc() if newest_first else key)
            if side is not None:
                stmt = stmt.where(m.PullRequest.side == side)
            if statuses:
                stmt = stmt.where(m.PullRequest.status.in_(list(statuses)))
            if schools is not None:
                stmt = stmt.where(m.PullRequest.our_school.in_(list(schools)))
            if either_school is not None:
                stmt = stmt.where(
                    or_(
                        m.PullRequest.our_school.startswith(either_school, autoescape=True),
                        m.PullRequest.counterpart_school.startswith(either_school, autoescape=True),
                    )
                )
            if request_ids is not None:
                stmt = stmt.where(m.PullRequest.request_id.in_(sorted(set(request_ids))))
            if with_error_code:
                stmt = stmt.where(m.PullRequest.last_error_code.is_not(None))
            if before_pk is not None:
                stmt = stmt.where(key < before_pk)
            if limit is not None:
                stmt = stmt.limit(limit)
            return [_record(row) for row in session.scalars(stmt)]

        return self._read(work)

    def naming(self, pupil_number: str, *, batch: int = 500) -> list[RequestRecord]:
        """The requests, on either side, whose pupil facts name this BSN or onderwijsnummer
        (purged ones excepted), for subject access and erasure. The facts are encrypted and not
        indexed, so each request's are decrypted in turn, ``batch`` rows per read; a row that
        does not decrypt raises (the answer would otherwise be incomplete)."""
        wanted = pupil_number.strip()
        cipher = self.cipher
        columns = (
            m.PullRequest.id,
            m.PullRequest.side,
            m.PullRequest.counterpart_oin,
            m.PullRequest.request_id,
            m.PullRequest.key_id,
            m.PullRequest.pupil_ciphertext,
        )
        found: list[int] = []
        after = 0
        while True:
            stmt = (
                select(*columns)
                .where(m.PullRequest.id > after, m.PullRequest.pupil_ciphertext != b"")
                .order_by(m.PullRequest.id)
                .limit(batch)
            )
            rows = self._read(lambda s, stmt=stmt: s.execute(stmt).all())  # type: ignore[misc]
            for pk, side, oin, request_id, key_id, blob in rows:
                aad = _aad_of(side, oin, request_id, "pupil")
                try:
                    facts = json.loads(cipher.decrypt(blob, aad=aad, key_id=key_id))
                except GatewayError as exc:  # which row: an operator must find it (no PII)
                    exc.detail = f"request row {pk} ({request_id}): {exc.detail}"
                    exc.args = (f"{exc.code}: {exc.detail}",)
                    raise
                if wanted in (facts.get("bsn"), facts.get("onderwijsnummer")):
                    found.append(pk)
            if len(rows) < batch:
                break
            after = rows[-1][0]
        return [record for record in map(self.get, found) if record is not None]

    def events(self, pk: int) -> list[RequestEvent]:
        def work(session: Session) -> list[RequestEvent]:
            stmt = (
                select(m.PullRequestEvent)
                .where(m.PullRequestEvent.request_pk == pk)
                .order_by(m.PullRequestEvent.id)
            )
            return [
                RequestEvent(at=e.at, status=e.status, code=e.code) for e in session.scalars(stmt)
            ]

        return self._read(work)

    def _blob(self, pk: int, column: str, what: str) -> bytes | None:
        """Decrypt one encrypted column of a request row (None when empty)."""
        found = self._blob_and_ciphertext(pk, column, what)
        return None if found is None else found[0]

    def _blob_and_ciphertext(self, pk: int, column: str, what: str) -> tuple[bytes, bytes] | None:
        """One encrypted column of a request row, decrypted, with its ciphertext as read."""

        def work(session: Session) -> tuple[bytes, bytes | None, str]:
            row = session.get(m.PullRequest, pk)
            if row is None:
                raise LookupError(f"no request row {pk}")
            return _aad(row, what), getattr(row, column), row.key_id

        aad, blob, key_id = self._read(work)
        if blob is None:
            return None
        if blob == b"" and column == "pupil_ciphertext":
            raise RequestPurged(f"request row {pk}: its content was purged (retention, erasure)")
        return self.cipher.decrypt(blob, aad=aad, key_id=key_id), blob

    def pupil_or_none(self, pk: int) -> dict[str, Any] | None:
        """The request's pupil facts, None once they were purged (a tombstone; also when the
        purge lands between reading the record and reading its facts)."""
        try:
            return self.pupil(pk)
        except RequestPurged:
            return None

    def pupil(self, pk: int) -> dict[str, Any]:
        """The request's pupil facts (personal data: for matching and for the school's view)."""
        data = self._blob(pk, "pupil_ciphertext", "pupil")
        assert data is not None
        value: dict[str, Any] = json.loads(data)
        return value

    def decline_text(self, pk: int) -> str | None:
        data = self._blob(pk, "decline_text_ciphertext", "decline")
        return None if data is None else data.decode("utf-8")

    # --- a dossier held until the parents' inzage ----------------------------------------------

    def hold(self, pk: int, payload: bytes, *, now: datetime, name_warning: bool) -> None:
        """Keep the dossier (encrypted) until the parents' inzage; E474 when the request was
        closed or answered with a dossier meanwhile."""

        def work(session: Session) -> None:
            row = _unanswered(session, pk)
            row.held_ciphertext = self.cipher.encrypt(payload, aad=_aad(row, "held"))
            row.name_warning = name_warning
            row.updated_at = now
            session.add(m.PullRequestEvent(request_pk=pk, at=now, status=row.status, code="held"))

        self._write(work)

    def held_payload(self, pk: int) -> bytes | None:
        return self._blob(pk, "held_ciphertext", "held")

    def held_with_token(self, pk: int) -> tuple[bytes, str] | None:
        """The held dossier and a token of exactly this hold (the SHA-256 of its ciphertext,
        new with every hand-in), read together: ``release_in`` releases only the hold the
        token names, so the dossier that leaves is the one the parents were shown."""
        found = self._blob_and_ciphertext(pk, "held_ciphertext", "held")
        return None if found is None else (found[0], held_token(found[1]))

    # --- inzage --------------------------------------------------------------------------------

    def record(self, new: NewInzage, *, now: datetime) -> InzageEntry:
        """Record ``new`` in a transaction of its own (``insert_inzage_in``)."""
        return self._write(lambda session: insert_inzage_in(session, self.cipher, new, now=now))

    def find_inzage(
        self, *, school: str, request_pk: int | None = None, pupil_identifier: str | None = None
    ) -> InzageEntry | None:
        """The latest inzage record for a request, or for a pupil at a school (a push)."""
        pupil_hmac = (
            self.cipher.lookup_hash(INZAGE_PUPIL, pupil_identifier) if pupil_identifier else None
        )
        if request_pk is None and pupil_hmac is None:
            return None

        def work(session: Session) -> InzageEntry | None:
            stmt = select(m.InzageRecord).where(m.InzageRecord.school == school)
            if request_pk is not None:
                stmt = stmt.where(m.InzageRecord.request_pk == request_pk)
            else:
                stmt = stmt.where(m.InzageRecord.pupil_hmac == pupil_hmac)
            row = session.scalars(stmt.order_by(m.InzageRecord.id.desc()).limit(1)).first()
            return None if row is None else _inzage(row)

        return self._read(work)

    def inzage_texts(self, *, school: str, request_pk: int) -> tuple[str | None, str | None]:
        """The parents' view and the waiver's reason of the latest inzage recorded for a
        request, decrypted (None: not given, or erased by the retention purge); for telling a
        repeated inzage from one with other texts."""

        def work(session: Session) -> tuple[str | None, str | None]:
            row = session.scalars(
                select(m.InzageRecord)
                .where(m.InzageRecord.school == school, m.InzageRecord.request_pk == request_pk)
                .order_by(m.InzageRecord.id.desc())
                .limit(1)
            ).first()
            if row is None:
                return None, None
            owner = f"{row.school}/{row.request_pk}/{row.pupil_hmac}"

            def text(blob: bytes | None, part: str) -> str | None:
                if blob is None:
                    return None
                aad = aad_for("inzage", owner, part)
                return self.cipher.decrypt(blob, aad=aad, key_id=row.key_id).decode()

            return text(row.zienswijze_ciphertext, "view"), text(row.waiver_ciphertext, "waiver")

        return self._read(work)

    def push_inzage_of(self, pupil_identifier: str) -> list[InzageEntry]:
        """Every inzage recorded for a push of this pupil, at any school (subject access)."""
        hashed = self.cipher.lookup_hash(INZAGE_PUPIL, pupil_identifier)

        def work(session: Session) -> list[InzageEntry]:
            stmt = (
                select(m.InzageRecord)
                .where(m.InzageRecord.pupil_hmac == hashed, m.InzageRecord.request_pk.is_(None))
                .order_by(m.InzageRecord.id)
            )
            return [_inzage(row) for row in session.scalars(stmt)]

        return self._read(work)


def _unanswered(session: Session, pk: int) -> m.PullRequest:
    """The request's row, locked, still open and not yet answered with a queued dossier (E474
    otherwise: a decline, a withdrawal or another answer came first)."""
    row = session.get(m.PullRequest, pk, with_for_update=True)
    if row is None:
        raise LookupError(f"no request row {pk}")
    if row.status not in OPEN_STATUSES or row.delivery_message_id is not None:
        raise RequestStateInvalid(f"request {row.request_id} is {row.status} now")
    return row


def held_token(ciphertext: bytes) -> str:
    """A token of one hold: the SHA-256 of the held dossier's ciphertext (new at every
    hand-in: a fresh data key and nonce)."""
    return hashlib.sha256(ciphertext).hexdigest()


@dataclass(frozen=True, kw_only=True)
class NewInzage:
    """An inzage (or its waiver) to record: for a request, or for a pupil's push."""

    school: str
    request_pk: int | None
    pupil_identifier: str | None
    inzage_date: str | None
    how: str | None
    zienswijze: str | None
    waiver: str | None
    previewed: str | None = None

    def entry(self, now: datetime) -> InzageEntry:
        """The record as ``insert_inzage_in`` makes it at ``now`` (before it is in the store:
        the disclosure record of the delivery it releases is made first)."""
        return InzageEntry(
            school=self.school,
            request_pk=self.request_pk,
            inzage_date=self.inzage_date,
            how=self.how,
            zienswijze=self.zienswijze is not None,
            waived=self.waiver is not None,
            recorded_at=now,
            text_held=self.zienswijze is not None or self.waiver is not None,
            previewed=self.previewed,
        )


def insert_inzage_in(
    session: Session, cipher: AtRestCipher, new: NewInzage, *, now: datetime
) -> InzageEntry:
    """Record ``new`` in the caller's transaction (for a request with a held dossier: the one
    that releases it, so that an inzage whose release is refused is not recorded either)."""
    pupil_hmac = (
        cipher.lookup_hash(INZAGE_PUPIL, new.pupil_identifier) if new.pupil_identifier else None
    )
    owner = f"{new.school}/{new.request_pk}/{pupil_hmac}"
    row = m.InzageRecord(
        school=new.school,
        request_pk=new.request_pk,
        pupil_hmac=pupil_hmac,
        inzage_date=new.inzage_date,
        how=new.how,
        zienswijze=new.zienswijze is not None,
        waived=new.waiver is not None,
        key_id=cipher.key_id,
        zienswijze_ciphertext=None
        if new.zienswijze is None
        else cipher.encrypt(new.zienswijze.encode(), aad=aad_for("inzage", owner, "view")),
        waiver_ciphertext=None
        if new.waiver is None
        else cipher.encrypt(new.waiver.encode(), aad=aad_for("inzage", owner, "waiver")),
        recorded_at=now,
        previewed=new.previewed,
    )
    session.add(row)
    session.flush()
    request = None if new.request_pk is None else session.get(m.PullRequest, new.request_pk)
    operation = "inzage.waive" if new.waiver is not None else "inzage.record"
    record_event(
        session,
        operation,
        new.school,
        now=now,
        request_id=None if request is None else request.request_id,
    )
    return _inzage(row)


def record_event(
    session: Session, operation: str, school: str, *, now: datetime, request_id: str | None = None
) -> None:
    """A record a school made of the parents' say, in the transfer log in the record's own
    transaction (an objection, an inzage or its waiver): the school, when, and the request it
    was for; never the pupil, a date, a category or a text (the log holds no pupil data; the
    record itself is the school's). None of them was in the log (an administrator's walkthrough)."""
    fields: dict[str, object] = {
        "at": now,
        "kind": "operator",
        "direction": "local",
        "status": "ok",
        "operation": operation,
        "school_brin": school[:4],
        "school_vestiging": school[4:] or None,
    }
    try:  # a request id a peer chose need not have the log's form: then it is left out
        event = make_event(**fields, message_id=request_id)
    except ValueError:
        event = make_event(**fields)
    translog.append_log_events(session, [event], now=now)


def release_in(
    session: Session,
    pk: int,
    *,
    delivery_message_id: str,
    now: datetime,
    held: str | None = None,
) -> RequestRecord:
    """In the caller's transaction (the one that queues the delivery): drop the held dossier
    and remember the delivery's MessageID; E474, undoing the queueing, when the request was
    closed or answered meanwhile, or (``held``: a ``held_token``) when the dossier held is no
    longer that one (handed in again since the parents were shown it)."""
    row = _unanswered(session, pk)
    if held is not None and (
        row.held_ciphertext is None or held_token(row.held_ciphertext) != held
    ):
        raise RequestStateInvalid(
            f"request {row.request_id}: the dossier held changed while the inzage was "
            "recorded; record the inzage again once the parents saw the one held now"
        )
    row.held_ciphertext = None
    row.delivery_message_id = delivery_message_id
    row.updated_at = now
    session.add(m.PullRequestEvent(request_pk=pk, at=now, status=row.status, code="queued"))
    session.flush()
    return _record(row)


def _inzage(row: m.InzageRecord) -> InzageEntry:
    return InzageEntry(
        school=row.school,
        request_pk=row.request_pk,
        inzage_date=row.inzage_date,
        how=row.how,
        zienswijze=bool(row.zienswijze),
        waived=bool(row.waived),
        recorded_at=row.recorded_at,
        text_held=row.zienswijze_ciphertext is not None or row.waiver_ciphertext is not None,
        previewed=row.previewed,
        pk=row.id,
    )


def drop_held_in(session: Session, pk: int) -> None:
    """Forget a dossier held for the parents' inzage (the request was withdrawn)."""
    row = session.get(m.PullRequest, pk, with_for_update=True)
    if row is not None:
        row.held_ciphertext = None


#: the states in which a request still waits for something
OPEN_STATUSES = ("sent", "received", "accepted")


def effective_status(record: RequestRecord, now: datetime) -> str:
    """The status to show: a sent request past its deadline is ``expired`` even before the
    service's ``refresh`` has written it (a read-only view, e.g. the console or metrics)."""
    if record.side == m.REQUESTER and record.status in OPEN_STATUSES and record.deadline < now:
        return "expired"
    return record.status


def request_counts(store: Store, *, now: datetime) -> dict[tuple[str, str], int]:
    """(side, effective status) → number of requests; and (side, "overdue") for open requests
    of the old school past their answer deadline."""
    counts: dict[tuple[str, str], int] = {}
    for record in PullStore(store).list_requests():
        key = (record.side, effective_status(record, now))
        counts[key] = counts.get(key, 0) + 1
        if (
            record.side == m.HOLDER
            and record.status in OPEN_STATUSES
            and record.deadline < now
            and record.delivery_message_id is None
        ):
            counts[(record.side, "overdue")] = counts.get((record.side, "overdue"), 0) + 1
    return counts
