"""The pull workflow's service: each side's requests, the inzage gate, sending through the outbox.

New school (requester): ``send_request`` → ``sent``; the old school's answer makes it
``accepted`` or ``declined``; ``withdraw`` → ``withdrawn``; a matching delivery → ``delivered``;
past its deadline without a delivery → ``expired`` (``refresh``).

Old school (holder): a request arrives ``received`` (deadline: answer within ``answer_days``);
``accept`` → ``accepted``; ``decline`` → ``declined``; the requester's withdrawal → ``withdrawn``;
``answer_with_dossier`` checks the pupil against the request (E470) and queues the delivery, or
holds it (encrypted) until the parents' inzage is recorded when the school's policy asks for it;
``record_inzage`` releases a held dossier; once the delivery's receipt is verified → ``delivered``.

Prints nothing; times are arguments; pupil data never reaches a log line or an error text.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lxml import etree

from oso_gateway.config import INZAGE_NOT_REQUIRED, INZAGE_OR_WAIVER, PullSettings
from oso_gateway.dossier.rules import bsn_is_valid, onderwijsnummer_is_valid
from oso_gateway.errors import (
    DeliveryPupilMismatch,
    DeliveryRequestClosed,
    DeliveryRequestOtherSchool,
    DeliveryRequestUnknown,
    DossierParseError,
    DuplicateRequest,
    GatewayError,
    InzageMissing,
    InzageWaiverNotAllowed,
    PupilIdentifierInvalid,
    PupilMismatch,
    ReadyByInPast,
    RequestNotFound,
    RequestPayloadInvalid,
    RequestSchoolMismatch,
    RequestStateInvalid,
)
from oso_gateway.protocol import is_clean_text, shown_id
from oso_gateway.security.xmlparse import ParseLimits, parse_xml
from oso_gateway.store import models as m
from oso_gateway.store.mailbox import Mailbox, TransitionRefused
from oso_gateway.store.pull import (
    InzageEntry,
    NewInzage,
    NewRequest,
    PullStore,
    RequestRecord,
    find_request_in,
    insert_inzage_in,
    insert_request_in,
    lock_pupil_requests,
    open_request_in,
    release_in,
    transition_in,
)
from oso_gateway.store.records import MessageRecord
from oso_gateway.store.repository import Store
from oso_gateway.transfer import wire
from oso_gateway.transfer.handlers.base import Inbound, Persist
from oso_gateway.transfer.outbox import Outbox
from oso_gateway.transfer.pull import payloads as p
from oso_gateway.transfer.pull.matching import match_pupil
from oso_gateway.transfer.schools import DirectoryLike, School, sending_school
from oso_gateway.transfer.send import (
    VERSION_DIGITS,
    PreparedDossier,
    PreparedMessage,
    SenderConfig,
    dossier_version,
    objections_of,
    payload_version,
    prepare_dossier,
    prepare_message,
    typed_version,
)

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.dossier.preview import DossierPreview

log = logging.getLogger(__name__)

# Requester (new school) states
SENT = "sent"
ACCEPTED = "accepted"
DELIVERED = "delivered"
DECLINED = "declined"
WITHDRAWN = "withdrawn"
EXPIRED = "expired"
# Holder (old school) states: received, then the same words
RECEIVED = "received"

OPEN_REQUESTER = (SENT, ACCEPTED)
OPEN_HOLDER = (RECEIVED, ACCEPTED)
CLOSED = (DELIVERED, DECLINED, WITHDRAWN, EXPIRED)
#: every status a request has, on either side
STATUSES = (SENT, RECEIVED, ACCEPTED, *CLOSED)

#: how the parents saw the dossier (``inzage record --how``)
INZAGE_HOW = ("meeting", "paper", "digital", "other")

_DOSSIER_LIMITS = ParseLimits(max_bytes=64 * 1024 * 1024)


@dataclass(frozen=True, kw_only=True)
class AnswerOutcome:
    """What ``answer_with_dossier`` / ``record_inzage`` did with a dossier."""

    request: RequestRecord
    #: "queued" (the delivery is in the outbox) or "held" (waiting for the parents' inzage)
    outcome: str
    delivery_message_id: str | None = None
    #: the dossier's family name differs from the request's (a warning, not a refusal)
    name_warning: bool = False


def _refuse_open(existing: RequestRecord | None, requesting: School, old_school: School) -> None:
    """OSO-E486 naming ``existing``, an open request of ours for the same pupil to the same
    school (nothing when None). The text names the request and the schools, never the pupil."""
    if existing is None:
        return
    raise DuplicateRequest(
        f"request {existing.request_id} of school {requesting} to {old_school} for this pupil "
        f"is still open ({existing.status}); withdraw it first to ask again",
        original=existing.request_id,
    )


class PullService:
    """One gateway's requests, on both sides."""

    def __init__(
        self,
        *,
        store: Store,
        directory: DirectoryLike,
        outbox: Outbox,
        sender_config: SenderConfig,
        settings: PullSettings,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.requests = PullStore(store)
        self.directory = directory
        self.outbox = outbox
        self.sender_config = sender_config
        self.settings = settings
        self.clock = clock

    # --- lookups ---------------------------------------------------------------------------

    def find(
        self,
        request_id: str,
        *,
        side: str | None = None,
        schools: Collection[str] | None = None,
    ) -> RequestRecord:
        """A request by id (E473 when unknown); ``side`` when the id is known on both sides.

        ``schools``: only a request of one of these schools of ours (a school-API client's
        scope; None: any, the operator's). One gateway may host both schools of a request (the
        requester's and the holder's row then share the id), and a peer chooses the ids of the
        requests it sends: each action looks the request up on its own side, within the
        caller's schools, so that no caller acts on a row it was not shown. An id that is still
        ambiguous there is not found, rather than guessed.
        """
        sides = [side] if side else [m.REQUESTER, m.HOLDER]
        for which in sides:
            record = self.requests.find(side=which, request_id=request_id, schools=schools)
            if record is not None:
                # as a list shows it: delivered once its delivery's receipt is verified,
                # expired past its deadline (a LAS polling one request saw 'accepted' for good)
                if self._refresh_record(record, self.clock()):
                    record = (
                        self.requests.find(side=which, request_id=request_id, schools=schools)
                        or record
                    )
                return record
        shown = {m.REQUESTER: "sent", m.HOLDER: "received"}.get(side or "", "sent or received")
        raise RequestNotFound(f"no request {shown_id(request_id)} ({shown}) here")

    def list(
        self,
        *,
        side: str | None = None,
        statuses: Sequence[str] = (),
        schools: Sequence[str] | None = None,
        before_pk: int | None = None,
        limit: int | None = None,
    ) -> list[RequestRecord]:
        """The requests, newest first (as every list of the gateway), brought up to date.
        ``schools``: only theirs (None: every school's); ``before_pk``, ``limit``: one page (the
        ``pk`` of a page's last record is the next page's ``before_pk``)."""
        self.refresh(schools=schools)
        return self.requests.list_requests(
            side=side,
            statuses=statuses,
            schools=schools,
            newest_first=True,
            before_pk=before_pk,
            limit=limit,
        )

    def refresh(self, now: datetime | None = None, *, schools: Sequence[str] | None = None) -> None:
        """Expire overdue sent requests; mark a holder's request delivered once its delivery's
        receipt is verified (and note the code of a failed delivery). ``schools``: only their
        requests (a school's list need not bring every school's of the gateway up to date)."""
        now = now or self.clock()
        asking = self.requests.list_requests(
            side=m.REQUESTER, statuses=OPEN_REQUESTER, schools=schools
        )
        # which of their messages failed, in one read of those messages only (not a look-up per
        # open request, nor every failed message the gateway holds)
        sent = self.store.message_states(m.OUT, [r.request_id for r in asking])
        failed = {message_id for message_id, (status, _) in sent.items() if status == m.FAILED}
        for record in asking:
            self._refresh_record(record, now, failed=failed)
        holding = self.requests.list_requests(side=m.HOLDER, statuses=(ACCEPTED,), schools=schools)
        # their deliveries' states, in one read (not a look-up per accepted request)
        deliveries = self.store.message_states(
            m.OUT, [r.delivery_message_id for r in holding if r.delivery_message_id]
        )
        for record in holding:
            self._refresh_record(record, now, deliveries=deliveries)
        self._refresh_answers(now, schools=schools)

    def _refresh_answers(self, now: datetime, *, schools: Sequence[str] | None) -> None:
        """An old school's answer (accepted, declined) whose message never reached the new
        school (every retry failed) puts that message's code on the request, as a failed
        request or delivery does (it read "declined" with no code while the new school waited
        for its deadline: an administrator's walkthrough); delivered after a retry, it takes
        the code off. A request whose dossier left carries its delivery's code instead."""
        answered = (ACCEPTED, DECLINED)
        failing = self.store.latest_related(m.OUT, p.ACTION_ANSWER, failed_only=True)
        noted = self.requests.list_requests(
            side=m.HOLDER, statuses=answered, schools=schools, with_error_code=True
        )
        ids = set(failing) | {r.request_id for r in noted if r.delivery_message_id is None}
        records = self.requests.list_requests(
            side=m.HOLDER, statuses=answered, schools=schools, request_ids=ids
        )
        answers = self.store.latest_related(
            m.OUT, p.ACTION_ANSWER, relates_to=[r.request_id for r in records]
        )
        for record in records:
            answer = answers.get(record.request_id)
            if record.delivery_message_id is not None or answer is None:
                continue
            if answer.status not in (m.FAILED, m.DELIVERED):  # queued again: kept until it ends
                continue
            code = answer.last_error_code if answer.status == m.FAILED else None
            if code != record.last_error_code:
                with contextlib.suppress(RequestStateInvalid):
                    self.requests.transition(
                        record.pk,
                        status=record.status,
                        now=now,
                        expected=(record.status,),
                        as_read=record,
                        last_error_code=code,
                    )

    def _refresh_record(
        self,
        record: RequestRecord,
        now: datetime,
        *,
        failed: set[str] | None = None,
        deliveries: dict[str, tuple[str, str | None]] | None = None,
    ) -> bool:
        """``refresh`` for one request; True when it changed. Each change is made only if the
        request is still as read (``expected``): an answer, a decline or a withdrawal stored
        meanwhile stands. ``failed``: the outbound MessageIDs that failed, when known (then a
        request with no code whose message did not fail needs no look-up); ``deliveries``: the
        (status, error code) of outbound messages by MessageID, when known (``message_states``)."""
        if record.side == m.REQUESTER:
            if record.status not in OPEN_REQUESTER:
                return False
            if record.deadline < now:
                with contextlib.suppress(RequestStateInvalid):
                    self.requests.transition(
                        record.pk, status=EXPIRED, now=now, expected=OPEN_REQUESTER
                    )
                    return True
                return False
            if failed is not None and record.last_error_code is None:
                if record.request_id not in failed:
                    return False
            return self._note_failed_request(record, now)
        if record.status != ACCEPTED or record.delivery_message_id is None:
            return False
        state = None if deliveries is None else deliveries.get(record.delivery_message_id)
        if state is None or (state[0] == m.FAILED and state[1] != record.last_error_code):
            # not in the list's read, or a failure to note: read as it is now (it may have been
            # retried since the list's read, and a stale code is not written over the request)
            message = self.store.find_message(m.OUT, record.delivery_message_id)
            state = None if message is None else (message.status, message.last_error_code)
        if state is None:
            return False
        status, error_code = state
        with contextlib.suppress(RequestStateInvalid):
            if status == m.DELIVERED:  # a failed attempt before it is past
                self.requests.transition(
                    record.pk,
                    status=DELIVERED,
                    now=now,
                    expected=(ACCEPTED,),
                    last_error_code=None,
                )
                return True
            if status == m.FAILED and error_code != record.last_error_code:
                self.requests.transition(
                    record.pk,
                    status=ACCEPTED,
                    now=now,
                    expected=(ACCEPTED,),
                    last_error_code=error_code,
                )
                return True
        return False

    def _note_failed_request(self, record: RequestRecord, now: datetime) -> bool:
        """An open request whose message never reached the old school (every retry failed)
        keeps its status but carries that message's error code, as a failed delivery does
        (it read 'sent' with no code; `outbox retry <request id>` sends it again)."""
        message = self.store.find_message(m.OUT, record.request_id)
        if message is None or message.status not in (m.FAILED, m.DELIVERED):
            return False
        # failed: its code; delivered after a retry: no code any more
        code = message.last_error_code if message.status == m.FAILED else None
        if code == record.last_error_code:
            return False
        with contextlib.suppress(RequestStateInvalid):
            self.requests.transition(
                record.pk,
                status=record.status,  # sent, or accepted (answered after a retry)
                now=now,
                expected=(record.status,),
                last_error_code=code,
            )
            return True
        return False

    # --- the new school (requester) ----------------------------------------------------------

    def send_request(
        self,
        *,
        requesting: School,
        old_school: School,
        pupil: p.Pupil,
        requested_date: date | None = None,
        now: datetime | None = None,
        after_insert: Callable[[Any, MessageRecord], None] | None = None,
    ) -> RequestRecord:
        """Queue a request for the pupil's dossier to the old school. ``after_insert(session,
        message)`` runs in the transaction that stores the request and its message.

        ``DuplicateRequest`` (E486, naming it) while a request of ``requesting`` to
        ``old_school`` for the same pupil (the same BSN or onderwijsnummer, by its keyed hash)
        is still open: ``sent`` or ``accepted`` and not past its deadline. Checked again under
        a lock on school, school and pupil in the storing transaction, so of two at once one
        is stored and the other refused."""
        now = now or self.clock()
        pupil.check()
        if pupil.birth_date > now.date():
            raise PupilIdentifierInvalid("the birth date lies in the future")
        if requesting == old_school:
            raise RequestPayloadInvalid(f"a request of school {requesting} addressed to itself")
        # an open request of ours for this pupil to this school: refused before the work of
        # sealing, and again in the transaction that stores the new one (``insert`` below)
        pupil_hmac = self.requests.request_pupil_hash(pupil.identifier)
        ours, theirs = requesting.code, old_school.code
        found = self.requests.open_request(
            our_school=ours, old_school=theirs, pupil_hmac=pupil_hmac, now=now
        )
        _refuse_open(found, requesting, old_school)
        from oso_gateway.transfer.send import new_message_id

        request_id = new_message_id()
        payload = p.build_request(
            p.DossierRequest(
                request_id=request_id,
                requested_at=now,
                requested_date=requested_date or now.date(),
                requesting_school=requesting,
                old_school=old_school,
                pupil=pupil,
            )
        )
        prepared = prepare_message(
            payload,
            action=p.ACTION_REQUEST,
            sending=requesting,
            to=old_school,
            directory=self.directory,
            config=self.sender_config,
            now=now,
            message_id=request_id,
        )
        new = NewRequest(
            side=m.REQUESTER,
            request_id=request_id,
            our_school=requesting.code,
            counterpart_school=old_school.code,
            counterpart_oin=prepared.recipient_oin,
            status=SENT,
            requested_date=(requested_date or now.date()).isoformat(),
            deadline=now + timedelta(days=self.settings.expire_days),
            pupil=pupil.as_dict(),
            pupil_hmac=pupil_hmac,
        )
        inserted: list[RequestRecord] = []
        cipher = self.requests.cipher

        def insert(session: Any, queued: MessageRecord) -> None:
            # the request and its message in one transaction: both, or neither (a school
            # API client's Idempotency-Key is recorded in it too, ``after_insert``). Of two
            # such transactions for one pupil at once, the second waits here for the first
            # and then finds its request: refused, nothing queued.
            lock_pupil_requests(session, ours, theirs, pupil_hmac)
            again = open_request_in(
                session, our_school=ours, old_school=theirs, pupil_hmac=pupil_hmac, now=now
            )
            _refuse_open(again, requesting, old_school)
            inserted.append(insert_request_in(session, cipher, new, now=now))
            if after_insert is not None:
                after_insert(session, queued)

        self.outbox.enqueue(prepared, after_insert=insert)
        log.info("request %s sent from %s to %s", request_id, requesting, old_school)
        return inserted[0]

    def withdraw(
        self,
        request_id: str,
        *,
        now: datetime | None = None,
        schools: Collection[str] | None = None,
    ) -> RequestRecord:
        now = now or self.clock()
        record = self.find(request_id, side=m.REQUESTER, schools=schools)
        if record.status == WITHDRAWN:  # sent again (a retry after a timeout): as the first
            return record
        # an expired request may still be withdrawn: the old school is then told, and stops
        withdrawable = (*OPEN_REQUESTER, EXPIRED)
        if record.status not in withdrawable:
            raise RequestStateInvalid(f"request {request_id} is {record.status}")
        try:
            record = self.requests.transition(
                record.pk, status=WITHDRAWN, now=now, expected=withdrawable
            )
        except RequestStateInvalid:  # a withdrawal sent twice at once: the first answers both
            again = self.find(request_id, side=m.REQUESTER, schools=schools)
            if again.status != WITHDRAWN:
                raise
            return again
        self._send_answer(record, p.WITHDRAWN, now=now)
        return record

    def retry(
        self,
        request_id: str,
        *,
        side: str,
        now: datetime | None = None,
        schools: Collection[str] | None = None,
    ) -> RequestRecord:
        """Send a request's failed message again, with a fresh attempt budget (what the
        operator's ``outbox retry`` does), for the school's own system: the new school's request
        that never reached the old school, or the old school's delivery, or before a delivery
        its answer (accepted, declined). E474 when that message did not fail (or there is none
        yet)."""
        now = now or self.clock()
        record = self.find(request_id, side=side, schools=schools)
        message_id = record.request_id if side == m.REQUESTER else record.delivery_message_id
        message = None if message_id is None else self.store.find_message(m.OUT, message_id)
        what = "request" if side == m.REQUESTER else "delivery"
        if side == m.HOLDER and message_id is None:
            answers = self.store.latest_related(m.OUT, p.ACTION_ANSWER, relates_to=[request_id])
            message, what = answers.get(request_id), "answer"
        if message is None or message.status != m.FAILED:
            state = "none yet" if message is None else message.status
            raise RequestStateInvalid(f"only a failed {what} is sent again; its {what}: {state}")
        try:
            Mailbox(self.store).retry(message.pk, now=now)
        except TransitionRefused as exc:  # retried or dropped meanwhile
            raise RequestStateInvalid(f"its {what} is {exc.status}") from None
        return self.find(request_id, side=side, schools=schools)

    # --- the old school (holder) -------------------------------------------------------------

    def accept(
        self,
        request_id: str,
        *,
        ready_by: date,
        now: datetime | None = None,
        schools: Collection[str] | None = None,
    ) -> RequestRecord:
        now = now or self.clock()
        record = self.find(request_id, side=m.HOLDER, schools=schools)
        if record.status != RECEIVED:
            if _accepted_as(record, ready_by):  # sent again (a retry after a timeout)
                return record
            raise RequestStateInvalid(_accept_refused(record))
        # UTC's date is never ahead of the schools' own (Dutch time is UTC+1 or +2), so this
        # refuses only a date that has gone by for them too.
        today = now.astimezone(UTC).date()
        if ready_by < today:
            raise ReadyByInPast(f"ready-by {ready_by.isoformat()} is before today ({today})")
        try:
            record = self.requests.transition(
                record.pk,
                status=ACCEPTED,
                now=now,
                expected=(RECEIVED,),
                ready_by=ready_by.isoformat(),
            )
        except RequestStateInvalid:  # the same acceptance sent twice at once: the first answers
            again = self.find(request_id, side=m.HOLDER, schools=schools)
            if not _accepted_as(again, ready_by):
                raise RequestStateInvalid(_accept_refused(again)) from None
            return again
        self._send_answer(record, p.ACCEPTED, ready_by=ready_by, now=now)
        return record

    def decline(
        self,
        request_id: str,
        *,
        reason: str,
        text: str | None = None,
        now: datetime | None = None,
        schools: Collection[str] | None = None,
    ) -> RequestRecord:
        now = now or self.clock()
        record = self.find(request_id, side=m.HOLDER, schools=schools)
        if record.status not in OPEN_HOLDER:
            if self._declined_as(record, reason, text):  # sent again (a retry after a timeout)
                return record
            raise RequestStateInvalid(_decline_refused(record))
        delivery = self._undeliverable(record)
        answer_check = p.RequestAnswer(
            request_id=request_id,
            answered_at=now,
            sender=School.parse(record.our_school),
            recipient=School.parse(record.counterpart_school),
            outcome=p.DECLINED,
            reason=reason,
            text=text,
        )
        answer_check.check()
        if delivery is not None and delivery.status == m.FAILED:
            try:  # its payload goes now; a retry meanwhile wins (E474)
                Mailbox(self.store).cancel(delivery.pk, now=now, allowed=(m.FAILED,))
            except TransitionRefused as exc:
                raise RequestStateInvalid(
                    f"request {request_id}: its dossier is {exc.status} now"
                ) from None
        try:
            record = self.requests.transition(
                record.pk,
                expected=OPEN_HOLDER,
                as_read=record,
                status=DECLINED,
                now=now,
                code=reason,
                decline_reason=reason,
                decline_text=text,
            )
        except RequestStateInvalid:  # the same decline sent twice at once: the first answers
            again = self.find(request_id, side=m.HOLDER, schools=schools)
            if not self._declined_as(again, reason, text):
                raise
            return again
        self.store.checkpoint_after_delete()  # a held dossier was dropped
        self._send_answer(record, p.DECLINED, reason=reason, text=text, now=now)
        return record

    def _declined_as(self, record: RequestRecord, reason: str, text: str | None) -> bool:
        """Whether ``record`` was declined with this reason and text (a decline sent again)."""
        if record.status != DECLINED or record.decline_reason != reason:
            return False
        return self.requests.decline_text(record.pk) == text

    def _undeliverable(self, record: RequestRecord) -> MessageRecord | None:
        """A request answered with a dossier may still be declined once that delivery failed
        (given up, or its payload purged) or was cancelled: else it would stay open for ever,
        beyond the retention purge and an erasure. Its delivery, None if it had none; an
        E474 while the delivery may still arrive (queued, being sent, delivered)."""
        if record.delivery_message_id is None:
            return None
        delivery = self.store.find_message(m.OUT, record.delivery_message_id)
        if delivery is None or delivery.status not in (m.FAILED, m.CANCELLED):
            state = delivery.status if delivery is not None else "gone"
            raise RequestStateInvalid(
                f"request {record.request_id} is {record.status}, its dossier {state}"
            )
        return delivery

    def answer_with_dossier(
        self,
        request_id: str,
        dossier: bytes,
        *,
        now: datetime | None = None,
        schools: Collection[str] | None = None,
    ) -> AnswerOutcome:
        """Check the dossier against the request and queue it, or hold it for the inzage."""
        now = now or self.clock()
        record = self.find(request_id, side=m.HOLDER, schools=schools)
        if record.status not in OPEN_HOLDER or record.delivery_message_id is not None:
            raise RequestStateInvalid(f"request {request_id} is {record.status}")
        name_warning = self._check_dossier(record, dossier)
        released = self._released_at_hand_in(record)
        if not released:
            # what a release will do, done now and before the request is accepted: a dossier
            # that cannot leave (invalid, or a parents' objection to a category it marks
            # VERPLICHT) is refused at its hand-in, not held for an inzage after which it fails
            # (an administrator's walkthrough), and the new school is not told "accepted"
            # (a review)
            self._prepare(record, dossier, now=now)
        if record.status == RECEIVED:  # answering with the dossier accepts the request
            record = self.accept(
                request_id, ready_by=now.date(), now=now, schools=(record.our_school,)
            )
        if not released:
            self.requests.hold(record.pk, dossier, now=now, name_warning=name_warning)
            log.info("request %s: dossier held until the parents' inzage", request_id)
            held = self.find(request_id, side=m.HOLDER, schools=(record.our_school,))
            return AnswerOutcome(request=held, outcome="held", name_warning=name_warning)
        return self._deliver(record, dossier, now=now, name_warning=name_warning)

    def record_inzage(
        self,
        request_id: str,
        *,
        inzage_date: date | None,
        how: str | None,
        zienswijze: str | None = None,
        waiver: str | None = None,
        now: datetime | None = None,
        schools: Collection[str] | None = None,
        previewed: str | None = None,
    ) -> AnswerOutcome | None:
        """Record the parents' inzage (or its waiver) for a request; release a held dossier.

        An inzage is of the dossier that goes: it is recorded only while the dossier is held
        (handed in, checked, minimised, shown by the preview). Recorded before, it let the
        dossier leave at once on its hand-in, never held nor previewed (a privacy walkthrough).
        A waiver needs no dossier: it says the parents will not see it.

        ``previewed``: the version the parents' preview showed (``DossierPreview.version``: the
        digest of what would be sent, ``send.dossier_version``). When the school system handed
        in another dossier since, or an objection was recorded or withdrawn, the inzage is not
        of what would leave: E474, nothing recorded, nothing released.

        With a dossier held, the inzage is recorded in the transaction that queues it: a release
        refused (a hand-in meanwhile) or failed records no inzage either (a security review).

        The same inzage (or waiver) sent again once it released the dossier (a retry after a
        timeout, or several at once) is answered as the first was (``_inzage_repeated``); one
        with other content is E474 saying what was done (it said no dossier was held)."""
        now = now or self.clock()
        record = self.find(request_id, side=m.HOLDER, schools=schools)
        sent = _SentInzage(inzage_date, how, zienswijze, waiver, previewed)
        repeated, outcome = self._inzage_repeated(record, sent)
        if repeated:
            return outcome
        if record.status not in OPEN_HOLDER or record.delivery_message_id is not None:
            raise RequestStateInvalid(self._inzage_refused(record))
        previewed = self._check_inzage_args(record.our_school, sent, now=now)
        shown = self.requests.held_with_token(record.pk)  # what the parents were shown
        if waiver is None and shown is None:
            raise RequestStateInvalid(
                f"request {request_id}: no dossier is held for the parents' inzage; hand in "
                "the dossier first (the inzage is of the dossier that goes)"
            )
        new = sent.new(record.our_school, request_pk=record.pk, previewed=previewed)
        if shown is None:  # a waiver before the hand-in: the dossier goes when handed in
            self.requests.record(new, now=now)
            return None
        # exactly the dossier shown: one handed in again meanwhile is not released (E474)
        dossier, token = shown
        if previewed is not None:  # checked first, so that a refusal costs no sealing
            _check_previewed(request_id, previewed, self._version_of(dossier))
        try:
            return self._deliver(
                record,
                dossier,
                now=now,
                name_warning=record.name_warning,
                held=token,
                inzage=new,
                version=previewed,
            )
        except RequestStateInvalid:
            # the same inzage sent more than once at once: one releases the dossier (the
            # others' release is refused, their inzage not recorded); they answer as it did
            again = self.find(request_id, side=m.HOLDER, schools=schools)
            repeated, outcome = self._inzage_repeated(again, sent)
            if not repeated:
                raise
            return outcome

    def _inzage_repeated(
        self, record: RequestRecord, sent: _SentInzage
    ) -> tuple[bool, AnswerOutcome | None]:
        """Whether ``sent`` repeats the inzage (or waiver) recorded for ``record``, and then
        the answer the first gave, with the request's state now: ``queued`` once it released
        the dossier (delivered since, or not); None for a waiver recorded before the hand-in.

        The same: a waiver again after a waiver with the same reason; an inzage with the same
        date, how and previewed version (any case), and the same view or none as before (the
        texts, stored encrypted, are read back to compare: a changed view sent again was
        answered as taken, and the first text stayed: a review)."""
        if record.status not in (*OPEN_HOLDER, DELIVERED):
            return False, None
        entry = self.requests.find_inzage(school=record.our_school, request_pk=record.pk)
        if entry is None or not sent.same_as(entry):
            return False, None
        if sent.zienswijze is not None or sent.waiver is not None:
            view, reason = self.requests.inzage_texts(
                school=record.our_school, request_pk=record.pk
            )
            if (view, reason) != (sent.zienswijze, sent.waiver):
                return False, None
        if record.delivery_message_id is not None:
            return True, AnswerOutcome(
                request=record,
                outcome="queued",
                delivery_message_id=record.delivery_message_id,
                name_warning=record.name_warning,
            )
        # a waiver before the hand-in: nothing released yet, nothing held
        return (entry.waived and not record.held and record.status != DELIVERED), None

    def _inzage_refused(self, record: RequestRecord) -> str:
        """E474's detail for an inzage the request's state does not allow: its state, and what
        was done already (the inzage or waiver recorded, the dossier released: its status)."""
        head = f"request {record.request_id} is {record.status}"
        if record.delivery_message_id is None:
            return head
        delivery = self.store.find_message(m.OUT, record.delivery_message_id)
        state = "gone" if delivery is None else delivery.status
        entry = self.requests.find_inzage(school=record.our_school, request_pk=record.pk)
        if entry is None:  # released at its hand-in: the school's policy needed no inzage
            done = f"its dossier was released ({state}) already"
        else:
            what = "waiver" if entry.waived else "inzage"
            done = f"the {what} was recorded and the dossier released ({state}) already"
        if record.status in (ACCEPTED, DELIVERED):
            done += "; an inzage with other content is not recorded"
        return f"{head}: {done}"

    def _version_of(self, dossier: bytes) -> str:
        """The version a delivery of ``dossier`` would send now (``send.dossier_version``)."""
        return dossier_version(dossier, objections=self.outbox.objections)

    def record_push_inzage(
        self,
        *,
        school: School,
        pupil_identifier: str,
        inzage_date: date | None,
        how: str | None,
        zienswijze: str | None = None,
        waiver: str | None = None,
        now: datetime | None = None,
        previewed: str | None = None,
    ) -> None:
        """Record the inzage of a dossier that will be pushed (no request). ``previewed``: the
        version its preview showed (``send.dossier_version``): then only a push of that version
        passes the gate (``check_push``)."""
        now = now or self.clock()
        if not (bsn_is_valid(pupil_identifier) or onderwijsnummer_is_valid(pupil_identifier)):
            raise PupilIdentifierInvalid("the pupil identifier fails the 11-proef")
        sent = _SentInzage(inzage_date, how, zienswijze, waiver, previewed)
        previewed = self._check_inzage_args(school.code, sent, now=now)
        self.requests.record(
            sent.new(school.code, pupil_identifier=pupil_identifier, previewed=previewed), now=now
        )

    def check_push(self, prepared: PreparedMessage) -> None:
        """The inzage gate for a pushed dossier, when the school's policy extends it to pushes
        (E471). Used by the outbox before it queues an unrequested delivery."""
        if prepared.relates_to is not None or prepared.action != wire.ACTION_DELIVER:
            return
        school = prepared.sending_school.code
        policy = self.settings.policy_for(school)
        if not policy.push_requires_inzage or policy.inzage == INZAGE_NOT_REQUIRED:
            return
        root = parse_xml(prepared.payload, limits=_DOSSIER_LIMITS).getroot()
        identifier = _dossier_identifier(root)
        entry = (
            self.requests.find_inzage(school=school, pupil_identifier=identifier)
            if identifier
            else None
        )
        if entry is None or (entry.waived and policy.inzage != INZAGE_OR_WAIVER):
            raise InzageMissing(f"push from school {school}: no inzage recorded for the pupil")
        if not entry.waived and identifier and self._push_since(school, identifier, entry):
            raise InzageMissing(
                f"push from school {school}: the inzage recorded {entry.recorded_at:%Y-%m-%d} "
                "was of an earlier push of this pupil; record the parents' inzage of this dossier"
            )
        pushed = payload_version(prepared.payload_digest)
        if entry.previewed is not None and entry.previewed != pushed:
            raise InzageMissing(
                f"push from school {school}: the parents were shown version {entry.previewed} "
                f"of the dossier, this one is version {pushed} (another file, or an objection "
                "since); record the parents' inzage of this dossier"
            )

    def _push_since(self, school: str, identifier: str, entry: InzageEntry) -> bool:
        """Whether a push of the pupil from ``school`` went under ``entry`` and left (or may
        have: it was tried): ``PrivacyRecords.pushed_on``. An inzage is of the dossier that
        goes, as on the pull path: one recorded once let every later push of the pupil through
        (a security review). A push cancelled before any attempt never left, and does not
        count."""
        from oso_gateway.store.disclosures import PrivacyRecords

        assert entry.pk is not None  # read from the store
        records = PrivacyRecords(self.store.engine, self.store.cipher)
        return records.pushed_on(
            school=school,
            pupil_number=identifier,
            inzage_pk=entry.pk,
            recorded_at=entry.recorded_at,
        )

    def recheck_push(self, session: Any, prepared: PreparedMessage, message_id: str) -> int | None:
        """``check_push``'s "one inzage, one push" once more inside the queueing transaction of
        ``message_id``, under a lock on the school and pupil (``lock_pupil_pushes``): of several
        pushes of one pupil queued at once on one inzage, only the first passes (each passed
        the early check, made before any of them was queued: a security review sent one
        inzage's dossier to three schools). Raises E471; nothing is then queued. Answers the
        inzage record the push goes under (the latest recorded for the pupil at the school,
        read under the lock; a waiver's too, and also when the policy asks none), which its
        disclosure record names: "one inzage, one push" asks which inzage a push went under,
        never whether it was queued after the inzage was recorded (two processes' clocks).
        ``session``: the queueing transaction's (a SQLAlchemy session: no type of it here,
        where no SQLAlchemy is imported, the import-linter's contract)."""
        from oso_gateway.store.disclosures import PrivacyRecords, lock_pupil_pushes

        number = getattr(prepared, "pupil_number", None)
        if prepared.relates_to is not None or prepared.action != wire.ACTION_DELIVER or not number:
            return None
        school = prepared.sending_school.code
        policy = self.settings.policy_for(school)
        gated = policy.push_requires_inzage and policy.inzage != INZAGE_NOT_REQUIRED
        records = PrivacyRecords(self.store.engine, self.store.cipher)
        if gated:
            lock_pupil_pushes(session, school, records.pupil_hash(number))
        entry = self.requests.find_inzage(school=school, pupil_identifier=number)
        if entry is None or entry.pk is None:
            return None
        if not gated or entry.waived:
            return entry.pk  # the early check decided (a waiver is of no one dossier)
        if records.pushed_on(
            school=school,
            pupil_number=number,
            inzage_pk=entry.pk,
            recorded_at=entry.recorded_at,
            session=session,
            other_than=message_id,
        ):
            raise InzageMissing(
                f"push from school {school}: the inzage recorded {entry.recorded_at:%Y-%m-%d} "
                "was of another push of this pupil, queued at the same time; record the "
                "parents' inzage of this dossier"
            )
        return entry.pk

    def preview(
        self,
        request_id: str,
        *,
        include_details: bool = False,
        schools: Collection[str] | None = None,
    ) -> DossierPreview | None:
        """What the parents are shown: per category, what leaves and what is withheld (their
        objections, OPT-UIT: ``removed``, with what it held; it read "not present", as if the
        school held no such data: a privacy walkthrough); values (personal data) only with
        ``include_details``, and only of what leaves (minimised). None when no dossier is held."""
        from dataclasses import replace

        from oso_gateway.dossier.minimise import minimise, with_opt_out
        from oso_gateway.dossier.preview import preview

        record = self.find(request_id, side=m.HOLDER, schools=schools)
        held = self.requests.held_payload(record.pk)
        if held is None:
            return None
        root = parse_xml(held, limits=_DOSSIER_LIMITS).getroot()
        objected = objections_of(root, self.outbox.objections)
        version = dossier_version(held, objections=lambda *_: objected)
        shown = replace(preview(with_opt_out(root, objected)), version=version)
        if not include_details:
            return shown
        leaving = preview(minimise(root, opt_out=objected).root, include_details=True)
        return replace(shown, details=leaving.details)

    # --- the new school receives a delivery for its request -----------------------------------

    def match_delivery(
        self, message: Inbound, *, request_id: str, sending: School, dossier: etree._Element
    ) -> Persist:
        """A delivery relating to a request must belong to it: our request (E476), between the
        same schools and gateways (E477), still open (E478), for the same pupil (E479)."""
        record = self.requests.find(side=m.REQUESTER, request_id=request_id)
        if record is None:
            raise DeliveryRequestUnknown(
                f"delivery relates to unknown request {shown_id(request_id)}"
            )
        if (
            record.our_school != message.served.school.code
            or record.counterpart_school != sending.code
            or record.counterpart_oin != message.signer_oin
        ):
            raise DeliveryRequestOtherSchool(
                f"request {request_id} is between {record.our_school} and "
                f"{record.counterpart_school}; delivery from {sending} to {message.served.school}"
            )
        if record.status not in OPEN_REQUESTER or record.deadline < message.now:
            raise DeliveryRequestClosed(f"request {request_id} is {record.status}")
        pupil = p.Pupil.from_dict(self.requests.pupil(record.pk))
        result = match_pupil(dossier, pupil)
        if not result.matches:
            raise DeliveryPupilMismatch(
                f"delivery for request {request_id} differs in {', '.join(result.differs)}"
            )
        cipher = self.store.cipher

        def persist(session: Any, _record: Any) -> None:
            current = find_request_in(session, side=m.REQUESTER, request_id=request_id)
            if current is None or current.status not in OPEN_REQUESTER:
                raise DeliveryRequestClosed(f"request {request_id} closed meanwhile")
            transition_in(
                session,
                cipher,
                current.pk,
                status=DELIVERED,
                now=message.now,
                delivery_message_id=message.opened.message_id,
                name_warning=result.name_warning,
                last_error_code=None,  # the request plainly arrived
            )

        return persist

    # --- steps ---------------------------------------------------------------------------------

    def _check_dossier(self, record: RequestRecord, dossier: bytes) -> bool:
        """E470 unless the dossier's pupil is the request's; returns the name warning."""
        try:
            root = parse_xml(dossier, limits=_DOSSIER_LIMITS).getroot()
        except GatewayError as exc:
            raise DossierParseError(f"the dossier cannot be parsed ({exc.code})") from None
        if sending_school(root).code != record.our_school:
            raise RequestSchoolMismatch(
                f"the dossier's school is not {record.our_school}, the school that was asked"
            )
        pupil = p.Pupil.from_dict(self.requests.pupil(record.pk))
        result = match_pupil(root, pupil)
        if not result.matches:
            raise PupilMismatch(
                f"request {record.request_id}: dossier differs in {', '.join(result.differs)}"
            )
        if result.name_warning:
            log.warning("request %s: the family name differs (warning)", record.request_id)
        return result.name_warning

    def _released_at_hand_in(self, record: RequestRecord) -> bool:
        """Whether a dossier handed in now goes at once: under a policy that needs no inzage,
        or after a waiver the policy allows. An inzage recorded before is of another dossier
        (one held then, whose release failed or that is handed in again): it released this
        one unseen (a security review); the new one is held, for the parents to see."""
        policy = self.settings.policy_for(record.our_school)
        if policy.inzage == INZAGE_NOT_REQUIRED:
            return True
        entry = self.requests.find_inzage(school=record.our_school, request_pk=record.pk)
        return entry is not None and entry.waived and policy.inzage == INZAGE_OR_WAIVER

    def _check_inzage_args(self, school: str, sent: _SentInzage, *, now: datetime) -> str | None:
        """Refuse what an inzage (or its waiver) may not be; return the version it names,
        normalised (``_version``), or None."""
        inzage_date, how, waiver = sent.inzage_date, sent.how, sent.waiver
        zienswijze, previewed = sent.zienswijze, sent.previewed
        if zienswijze is not None and not is_clean_text(zienswijze):
            raise RequestPayloadInvalid("the view holds control or bidi-override characters")
        if waiver is not None:
            if not waiver.strip():
                raise InzageWaiverNotAllowed("a waiver needs a reason")
            if not is_clean_text(waiver):
                raise RequestPayloadInvalid("the waiver holds control or bidi-override characters")
            if self.settings.policy_for(school).inzage != INZAGE_OR_WAIVER:
                raise InzageWaiverNotAllowed(f"school {school}'s policy does not allow a waiver")
            if previewed is not None:
                raise RequestPayloadInvalid("a waiver names no previewed version: no one saw it")
            return None
        if inzage_date is None or how not in INZAGE_HOW:
            raise InzageMissing("an inzage needs its date and how (" + ", ".join(INZAGE_HOW) + ")")
        if previewed is None and self.settings.policy_for(school).inzage_requires_version:
            raise InzageMissing(
                f"school {school}'s policy asks the inzage to name the version of the dossier "
                "the parents were shown (the preview's version: --previewed, or previewed)"
            )
        if inzage_date > (now + timedelta(days=1)).date():  # a day's grace for time zones
            raise InzageMissing(f"the inzage date {inzage_date} lies in the future")
        return None if previewed is None else _version(previewed)

    def _prepare(self, record: RequestRecord, dossier: bytes, *, now: datetime) -> PreparedDossier:
        """``dossier`` validated, minimised and addressed as its delivery for ``record`` sends
        it (the dossier's E1xx errors, E430, E463)."""
        return prepare_dossier(
            dossier,
            to=School.parse(record.counterpart_school),
            directory=self.directory,
            config=self.sender_config,
            now=now,
            relates_to=record.request_id,
            objections=self.outbox.objections,  # withheld as on a push (else E542 at queueing)
        )

    def _deliver(
        self,
        record: RequestRecord,
        dossier: bytes,
        *,
        now: datetime,
        name_warning: bool,
        held: str | None = None,
        inzage: NewInzage | None = None,
        version: str | None = None,
    ) -> AnswerOutcome:
        """Seal and queue ``dossier`` for the request; ``held``: release only while the hold
        is still that one (``store.pull.held_token``), recording ``inzage`` in the same
        transaction; ``version``: only when what was prepared is that version (an objection
        recorded or withdrawn meanwhile changes it: E474)."""
        prepared = self._prepare(record, dossier, now=now)
        if version is not None:
            _check_previewed(record.request_id, version, payload_version(prepared.payload_digest))
        released: list[RequestRecord] = []
        cipher = self.requests.cipher

        def release(session: Any, _queued: Any) -> None:  # in the queueing transaction
            released.append(
                release_in(
                    session, record.pk, delivery_message_id=prepared.message_id, now=now, held=held
                )
            )
            if inzage is not None:
                insert_inzage_in(session, cipher, inzage, now=now)

        # the inzage as the transaction records it, for the delivery's disclosure record
        recording = None if inzage is None else inzage.entry(now)
        self.outbox.enqueue(prepared, after_insert=release, inzage=recording)
        log.info("request %s: delivery %s queued", record.request_id, prepared.message_id)
        return AnswerOutcome(
            request=released[0],
            outcome="queued",
            delivery_message_id=prepared.message_id,
            name_warning=name_warning,
        )

    def _send_answer(
        self,
        record: RequestRecord,
        outcome: str,
        *,
        now: datetime,
        ready_by: date | None = None,
        reason: str | None = None,
        text: str | None = None,
    ) -> str:
        ours, theirs = School.parse(record.our_school), School.parse(record.counterpart_school)
        payload = p.build_answer(
            p.RequestAnswer(
                request_id=record.request_id,
                answered_at=now,
                sender=ours,
                recipient=theirs,
                outcome=outcome,
                ready_by=ready_by,
                reason=reason,
                text=text,
            )
        )
        prepared = prepare_message(
            payload,
            action=p.ACTION_ANSWER,
            sending=ours,
            to=theirs,
            directory=self.directory,
            config=self.sender_config,
            now=now,
            relates_to=record.request_id,
        )
        self.outbox.enqueue(prepared)
        return prepared.message_id


@dataclass(frozen=True)
class _SentInzage:
    """An inzage (or waiver) as a call sent it, to compare with one recorded."""

    inzage_date: date | None
    how: str | None
    zienswijze: str | None
    waiver: str | None
    previewed: str | None

    def new(
        self,
        school: str,
        *,
        request_pk: int | None = None,
        pupil_identifier: str | None = None,
        previewed: str | None,
    ) -> NewInzage:
        """The record of this inzage for a request (``request_pk``) or a push of a pupil;
        ``previewed``: the version as checked (normalised)."""
        return NewInzage(
            school=school,
            request_pk=request_pk,
            pupil_identifier=pupil_identifier,
            inzage_date=self.inzage_date.isoformat() if self.inzage_date else None,
            how=self.how,
            zienswijze=self.zienswijze,
            waiver=self.waiver,
            previewed=previewed,
        )

    def same_as(self, entry: InzageEntry) -> bool:
        if self.waiver is not None:
            return entry.waived
        if entry.waived or self.inzage_date is None:
            return False
        version = None if self.previewed is None else typed_version(self.previewed)
        if self.previewed is not None and version is None:
            return False  # not a version's form: refused as such, not taken for the same
        return (
            entry.inzage_date == self.inzage_date.isoformat()
            and entry.how == self.how
            and entry.zienswijze == (self.zienswijze is not None)
            and entry.previewed == version
        )


def _dossier_identifier(root: etree._Element) -> str | None:
    from oso_gateway.protocol import DOSSIER_NS

    n = f"{{{DOSSIER_NS}}}"
    leerling = root.find(f"{n}huidigeschool/{n}leerling")
    if leerling is None:
        return None
    value = leerling.findtext(n + "bsn") or leerling.findtext(n + "onderwijsnummer")
    return value.strip() if value else None


def _version(previewed: str) -> str:
    """A previewed version as typed (any case, spaces around), or E475 when it has no
    version's form (it is not echoed: anything may have been typed there)."""
    version = typed_version(previewed)
    if version is None:
        raise RequestPayloadInvalid(
            f"the previewed version is {VERSION_DIGITS} hex digits, as the preview shows it"
        )
    return version


def _check_previewed(request_id: str, version: str, now_held: str) -> None:
    """E474 unless ``version`` (``_version``) is the version held now (``now_held``)."""
    if version != now_held:
        raise RequestStateInvalid(
            f"request {request_id}: the parents were shown version {version} of the dossier, "
            f"but version {now_held} would leave now (another dossier handed in, or an "
            "objection recorded or withdrawn, since); show them the preview of what is held "
            "now, then record the inzage with its version"
        )


def _accepted_as(record: RequestRecord, ready_by: date) -> bool:
    """Whether ``record`` was accepted with ``ready_by`` and the acceptance stands (accepted,
    or delivered since): an acceptance sent again is answered as the first was."""
    return record.status in (ACCEPTED, DELIVERED) and record.ready_by == ready_by.isoformat()


def _accept_refused(record: RequestRecord) -> str:
    """E474's detail for an acceptance the request's state does not allow: its state, and when
    it was accepted already, with which ready-by date (not a pupil's data)."""
    head = f"request {record.request_id} is {record.status}"
    if record.status in (ACCEPTED, DELIVERED) and record.ready_by is not None:
        return (
            f"{head}: it was accepted already, ready by {record.ready_by}; an acceptance with "
            "another ready_by is not taken"
        )
    return head


def _decline_refused(record: RequestRecord) -> str:
    """E474's detail for a decline the request's state does not allow: its state, and when it
    was declined already, for which reason (a reason code, never its text)."""
    head = f"request {record.request_id} is {record.status}"
    if record.status == DECLINED:
        return (
            f"{head}: it was declined already (reason {record.decline_reason}); a decline with "
            "another reason or text is not taken"
        )
    return head
