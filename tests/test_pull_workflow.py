"""The pull workflow, both sides: every state transition, every decline code, the pupil match on
both sides, the inzage gate, and what a forged or misdirected message gets (one test per code)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import pytest
from gateway_pair import (
    KEY,
    RECEIVER_OIN,
    RECEIVER_URL,
    SENDER_OIN,
    SENDER_URL,
    VENDOR_OIN,
    identity,
    with_sending_school,
)
from lxml import etree
from pull_pair import NEW, OLD, PullPair, dossier, make_pull_pair, pupil_of, valid_bsns
from sqlalchemy import Engine, text
from store_support import payload_blobs, sqlite_files

from oso_gateway.config import INZAGE_OR_WAIVER, SchoolPolicy
from oso_gateway.errors import GatewayError
from oso_gateway.security.wss import seal
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.store.crypto import AtRestCipher
from oso_gateway.store.pull import RequestRecord
from oso_gateway.transfer import wire
from oso_gateway.transfer.pull import payloads as p
from oso_gateway.transfer.pull.service import AnswerOutcome
from oso_gateway.transfer.schools import School, address_for
from oso_gateway.transfer.send import PreparedDossier, new_message_id, prepare_dossier

REASONS = sorted(p.DECLINE_REASONS)


@pytest.fixture
def pp(tmp_path: Path) -> Iterator[PullPair]:
    pair = make_pull_pair(tmp_path)
    yield pair
    pair.close()


def _request(pp: PullPair, data: bytes | None = None, **changes: object) -> tuple[str, bytes]:
    data = data or dossier(pp.clock)
    record = pp.new.pull.send_request(
        requesting=NEW, old_school=OLD, pupil=pupil_of(data, **changes)
    )
    pp.drain()
    return record.request_id, data


def _new(pp: PullPair, request_id: str) -> RequestRecord:
    return pp.new.pull.find(request_id, side=m.REQUESTER)


def _old(pp: PullPair, request_id: str) -> RequestRecord:
    return pp.old.pull.find(request_id, side=m.HOLDER)


def _queue_dossier(
    pp: PullPair, request_id: str, data: bytes, *, how: str = "meeting"
) -> AnswerOutcome:
    """Hand the dossier in (held until the inzage) and record the parents' inzage, which
    releases it: the delivery is queued. An inzage is recorded only of a held dossier."""
    held = pp.old.pull.answer_with_dossier(request_id, data)
    assert held.outcome == "held"
    released = pp.old.pull.record_inzage(request_id, inzage_date=date(2026, 1, 5), how=how)
    assert released is not None and released.outcome == "queued"
    return released


def _waive(pp: PullPair, request_id: str) -> None:
    """Under a policy that allows it, waive the inzage before the dossier is handed in (an
    inzage itself is recorded only of a held dossier): the hand-in then queues at once."""
    pp.old.pull.settings = replace(
        pp.old.pull.settings, default_policy=SchoolPolicy(inzage=INZAGE_OR_WAIVER)
    )
    pp.old.pull.record_inzage(
        request_id, inzage_date=None, how=None, waiver="ouders verhuisd, niet bereikbaar"
    )


def _code(exc: pytest.ExceptionInfo[GatewayError]) -> str:
    return exc.value.code


def _fault(body: bytes) -> str:
    fault = wire.parse_fault(body)
    assert fault is not None, body[:300]
    return fault.remote_code


def _imported(pp: PullPair) -> int:
    return len(pp.new.store.find_dossiers())


# --- transitions: the happy path -----------------------------------------------------------


def test_request_is_sent_then_received_with_the_configured_answer_deadline(pp: PullPair) -> None:
    request_id, _ = _request(pp)
    assert _new(pp, request_id).status == "sent"
    received = _old(pp, request_id)
    assert received.status == "received"
    assert received.deadline == pp.clock() + timedelta(days=pp.old.pull.settings.answer_days)
    assert received.counterpart_school == NEW.code and received.our_school == OLD.code
    assert pp.old.pull.requests.pupil(received.pk)["family_name"]  # kept (encrypted) for matching


def test_accept_then_inzage_then_delivery_ends_delivered_on_both_sides(pp: PullPair) -> None:
    request_id, data = _request(pp)
    pp.old.pull.accept(request_id, ready_by=date(2030, 1, 1))
    pp.drain()
    assert _old(pp, request_id).status == "accepted"
    assert (_new(pp, request_id).status, _new(pp, request_id).ready_by) == (
        "accepted",
        "2030-01-01",
    )
    held = pp.old.pull.answer_with_dossier(request_id, data)
    assert held.outcome == "held" and _old(pp, request_id).held
    released = pp.old.pull.record_inzage(
        request_id, inzage_date=date(2026, 1, 5), how="paper", zienswijze="Wij zijn het eens."
    )
    assert released is not None and released.outcome == "queued"
    pp.drain()
    pp.old.pull.refresh()
    assert _old(pp, request_id).status == "delivered"
    new = _new(pp, request_id)
    assert new.status == "delivered" and new.delivery_message_id == released.delivery_message_id
    inbound = pp.new.store.find_message(m.IN, new.delivery_message_id or "")
    assert inbound is not None and inbound.relates_to == request_id
    assert [e.status for e in pp.new.pull.requests.events(new.pk)] == [
        "sent",
        "accepted",
        "delivered",
    ]


def test_answering_a_received_request_with_the_dossier_accepts_it(pp: PullPair) -> None:
    request_id, data = _request(pp)
    outcome = _queue_dossier(pp, request_id, data, how="meeting")
    assert outcome.outcome == "queued"
    pp.drain()
    assert _new(pp, request_id).status == "delivered"


def test_a_parents_objection_is_withheld_from_a_requested_dossier_and_its_preview(
    pp: PullPair,
) -> None:
    """The pull path prepared the delivery without the recorded objections: the preview said
    the category would be shared and the inzage that released the dossier failed with E542
    for good (found by a helper's walkthrough). Now it is withheld as a push withholds it."""
    from oso_gateway.dossier.disclosure import pupil_number
    from oso_gateway.security.xmlparse import parse_xml
    from oso_gateway.store.disclosures import PrivacyRecords

    request_id, data = _request(pp)
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None
    records = PrivacyRecords(pp.old.store.engine, pp.old.store.cipher)
    assert records.record_objection(
        school=OLD.code, pupil_number=number, category="toetsresultaten", now=pp.clock()
    )
    assert pp.old.pull.answer_with_dossier(request_id, data).outcome == "held"
    shown = pp.old.pull.preview(request_id)
    assert shown is not None
    [tests] = [c for c in shown.categories if c.key == "toetsresultaten"]
    # withheld, and said so: "removed", with what it holds (it read "not present", as if the
    # school held no test results: a privacy walkthrough)
    assert (tests.action, tests.status, tests.present) == ("removed", "OPT-UIT", True)
    assert sum(i.count for i in tests.items) > 0
    detailed = pp.old.pull.preview(request_id, include_details=True)
    assert detailed is not None and detailed.details is not None
    [values] = [d for d in detailed.details if d.key == "toetsresultaten"]
    assert values.fields == () and values.attachments == ()  # no values of what stays behind
    assert any(d.fields for d in detailed.details)  # of what leaves, the values
    released = pp.old.pull.record_inzage(request_id, inzage_date=date(2026, 1, 5), how="paper")
    assert released is not None and released.outcome == "queued"
    pp.drain()
    assert _new(pp, request_id).status == "delivered"
    [received] = pp.new.store.find_dossiers()
    assert b"<toetslijst" in data  # the LAS export has them; the delivered dossier does not
    assert b"toetslijst" not in pp.new.store.load_dossier(received.dossier_id)
    [disclosed] = records.disclosures(pupil_number=number)
    assert ("toetsresultaten", "objection") in disclosed.withheld


def _object(pp: PullPair, data: bytes, category: str) -> None:
    from oso_gateway.dossier.disclosure import pupil_number
    from oso_gateway.security.xmlparse import parse_xml
    from oso_gateway.store.disclosures import PrivacyRecords

    number = pupil_number(parse_xml(data).getroot())
    assert number is not None
    records = PrivacyRecords(pp.old.store.engine, pp.old.store.cipher)
    assert records.record_objection(
        school=OLD.code, pupil_number=number, category=category, now=pp.clock()
    )


def test_a_dossier_that_cannot_leave_is_refused_at_its_hand_in(pp: PullPair) -> None:
    """A parents' objection to a category the dossier marks VERPLICHT, or a dossier the rules
    refuse, was held ("dossier: held"); the preview, the inzage and `request show` then all
    failed with the release's error (an administrator's walkthrough). Now the hand-in says so
    and nothing is held."""
    request_id, data = _request(pp)
    _object(pp, data, "overstapadvies")  # the generated POVO dossier marks it VERPLICHT
    with pytest.raises(GatewayError) as refused:
        pp.old.pull.answer_with_dossier(request_id, data)
    assert _code(refused) == "OSO-E105"
    assert "objection to category overstapadvies" in refused.value.detail
    assert "VERPLICHT" in refused.value.detail
    assert not _old(pp, request_id).held
    pp.drain()  # and the request was not accepted: the new school was told "accepted" (a review)
    assert _old(pp, request_id).status == "received"
    assert _new(pp, request_id).status == "sent"
    pp.old.pull.decline(request_id, reason="not-our-pupil")  # closed: the pupil may be asked again
    pp.drain()
    invalid = data.replace(b"<cat_vve>VERBODEN</cat_vve>", b"<cat_vve>ONBEKEND</cat_vve>")
    assert invalid != data
    request_id, _ = _request(pp, invalid)
    with pytest.raises(GatewayError) as refused:
        pp.old.pull.answer_with_dossier(request_id, invalid)
    assert _code(refused).startswith("OSO-E1")
    assert not _old(pp, request_id).held


def test_a_request_whose_held_dossier_can_no_longer_leave_can_still_be_shown(
    pp: PullPair,
) -> None:
    """An objection recorded after the hand-in to a category the dossier marks VERPLICHT: the
    preview cannot be made, and `request show` shows why instead of failing with it."""
    from oso_gateway.commands.request import _preview_or_problem

    request_id, data = _request(pp)
    assert pp.old.pull.answer_with_dossier(request_id, data).outcome == "held"
    assert _preview_or_problem(pp.old.pull, request_id) is not None
    _object(pp, data, "overstapadvies")
    shown = _preview_or_problem(pp.old.pull, request_id)
    assert shown is not None and shown["problem"]["code"] == "OSO-E105"
    assert "withdraw the objection" in shown["problem"]["detail"]


def test_an_inzage_and_a_waiver_are_events_in_the_transfer_log(tmp_path: Path) -> None:
    """When an inzage (or its waiver) was recorded, at which school and for which request:
    the log said nothing of it (an administrator's walkthrough); no pupil data, no texts."""
    import json

    pp = make_pull_pair(tmp_path, policy=SchoolPolicy(inzage=INZAGE_OR_WAIVER))
    try:
        request_id, data = _request(pp)
        _queue_dossier(pp, request_id, data)
        other, _ = _request(pp, dossier(pp.clock, seed=417))
        pp.old.pull.record_inzage(other, inzage_date=None, how=None, waiver="Ouders verhuisd.")
        events = [
            e.event
            for e in pp.old.store.log_entries()
            if e.event.get("operation", "")[:7] == "inzage."
        ]
        assert [(e["operation"], e.get("message_id"), e["school_brin"]) for e in events] == [
            ("inzage.record", request_id, "00YY"),
            ("inzage.waive", other, "00YY"),
        ]
        pupil = pupil_of(data)
        text = json.dumps(events)
        assert pupil.family_name not in text and "verhuisd" not in text and "meeting" not in text
    finally:
        pp.close()


def test_requests_are_listed_newest_first_and_a_future_birth_date_or_self_is_refused(
    pp: PullPair,
) -> None:
    """As every list of the gateway (api.md: newest first); they came oldest first. A request
    with a birth date after today, or to the asking school itself, was sent (found by a
    helper's walkthrough)."""
    first, data = _request(pp)
    pp.clock.advance(timedelta(seconds=1))
    second, _ = _request(pp, dossier(pp.clock, seed=2020))
    assert [r.request_id for r in pp.new.pull.list(side=m.REQUESTER)] == [second, first]
    with pytest.raises(GatewayError) as future:
        pp.new.pull.send_request(
            requesting=NEW,
            old_school=OLD,
            pupil=pupil_of(data, birth_date=pp.clock().date() + timedelta(days=1)),
        )
    assert _code(future) == "OSO-E483"
    with pytest.raises(GatewayError) as itself:
        pp.new.pull.send_request(requesting=NEW, old_school=NEW, pupil=pupil_of(data))
    assert _code(itself) == "OSO-E475"


def test_a_request_that_never_reached_the_old_school_shows_why_until_a_retry_gets_it_there(
    pp: PullPair,
) -> None:
    """It read 'sent' with no code after every attempt failed (found by a helper's
    walkthrough); now it carries the message's code, and loses it once a retry delivers."""
    from oso_gateway.store.mailbox import Mailbox

    data = dossier(pp.clock)
    record = pp.new.pull.send_request(requesting=NEW, old_school=OLD, pupil=pupil_of(data))
    pp.fail_outbox(pp.new)
    message = pp.new.store.find_message(m.OUT, record.request_id)
    assert message is not None and message.status == m.FAILED
    [listed] = pp.new.pull.list(side=m.REQUESTER)
    assert (listed.status, listed.last_error_code) == ("sent", message.last_error_code)
    assert listed.last_error_code is not None
    Mailbox(pp.new.store).retry(message.pk, now=pp.clock())  # what `outbox retry` does
    pp.drain()
    # the old school accepts before anyone at the new school looked: its answer clears the
    # code (read from the store, without the refresh a look-up makes; found by a review)
    pp.old.pull.accept(record.request_id, ready_by=date(2030, 1, 1))
    pp.drain()
    stored = pp.new.pull.requests.find(side=m.REQUESTER, request_id=record.request_id)
    assert stored is not None and (stored.status, stored.last_error_code) == ("accepted", None)


def test_an_expired_request_can_still_be_withdrawn_and_the_old_school_is_told(
    pp: PullPair,
) -> None:
    """A look-up now expires an overdue request first, so withdrawing one was always refused
    and the old school never heard of it (found by a review)."""
    request_id, _ = _request(pp)
    pp.clock.advance(timedelta(days=pp.new.pull.settings.expire_days + 1))
    assert _new(pp, request_id).status == "expired"
    assert pp.new.pull.withdraw(request_id).status == "withdrawn"
    pp.drain()
    assert _old(pp, request_id).status == "withdrawn"


def test_an_inzage_dated_in_the_future_is_refused(pp: PullPair) -> None:
    """An inzage that has not happened yet is no inzage: it does not release the dossier."""
    request_id, data = _request(pp)
    assert pp.old.pull.answer_with_dossier(request_id, data).outcome == "held"
    later = (pp.old.pull.clock() + timedelta(days=3)).date()
    with pytest.raises(GatewayError) as info:
        pp.old.pull.record_inzage(request_id, inzage_date=later, how="paper")
    assert info.value.code == "OSO-E471" and "future" in info.value.detail
    assert _old(pp, request_id).held  # still held
    today = pp.old.pull.clock().date()
    released = pp.old.pull.record_inzage(request_id, inzage_date=today, how="paper")
    assert released is not None and released.outcome == "queued"


def test_declining_a_request_whose_dossier_is_held_drops_the_dossier(pp: PullPair) -> None:
    """The decline kept the held dossier until the request's purge, and its preview still
    showed it (found by a review)."""
    request_id, data = _request(pp)
    assert pp.old.pull.answer_with_dossier(request_id, data).outcome == "held"
    with pp.old.store.engine.connect() as conn:
        held = bytes(
            conn.exec_driver_sql(
                "SELECT held_ciphertext FROM pull_requests WHERE id = ?", (_old(pp, request_id).pk,)
            ).scalar_one()
        )[16:64]
    with pp.old.store.engine.connect() as conn:  # the file as a long-running gateway's is
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database = Path(pp.old.store.engine.url.database or "")
    assert held in database.read_bytes()
    pp.old.pull.decline(request_id, reason="not-our-pupil")
    assert _old(pp, request_id).status == "declined" and not _old(pp, request_id).held
    assert pp.old.pull.requests.held_payload(_old(pp, request_id).pk) is None
    assert pp.old.pull.preview(request_id) is None
    assert held not in sqlite_files(pp.old.store.engine)


def test_the_zienswijze_is_stored_encrypted(pp: PullPair) -> None:
    request_id, data = _request(pp)
    pp.old.pull.answer_with_dossier(request_id, data)  # held: the inzage is of it
    secret = "Wij vinden het advies te streng (zienswijze-7731)"
    pp.old.pull.record_inzage(
        request_id, inzage_date=date(2026, 1, 5), how="digital", zienswijze=secret
    )
    raw = Path(pp.old.store.engine.url.database or "").read_bytes()
    assert b"zienswijze-7731" not in raw
    entry = pp.old.pull.requests.find_inzage(school=OLD.code, request_pk=_old(pp, request_id).pk)
    assert entry is not None and entry.zienswijze and entry.how == "digital"


@pytest.mark.parametrize("reason", REASONS)
def test_every_decline_reason_reaches_the_new_school(pp: PullPair, reason: str) -> None:
    request_id, _ = _request(pp)
    text = "De leerling is verhuisd naar het buitenland" if reason == "other" else None
    pp.old.pull.decline(request_id, reason=reason, text=text)
    pp.drain()
    old, new = _old(pp, request_id), _new(pp, request_id)
    assert (old.status, old.decline_reason) == ("declined", reason)
    assert (new.status, new.decline_reason) == ("declined", reason)
    assert pp.new.pull.requests.decline_text(new.pk) == text


def test_an_accepted_request_can_still_be_declined(pp: PullPair) -> None:
    request_id, _ = _request(pp)
    pp.old.pull.accept(request_id, ready_by=date(2030, 1, 1))
    pp.drain()
    pp.old.pull.decline(request_id, reason="parents-objected")
    pp.drain()
    assert _new(pp, request_id).status == "declined"


@pytest.mark.parametrize("accept_first", [False, True])
def test_withdrawal_reaches_the_old_school_and_drops_a_held_dossier(
    pp: PullPair, accept_first: bool
) -> None:
    request_id, data = _request(pp)
    if accept_first:
        pp.old.pull.answer_with_dossier(request_id, data)  # accepted, held for inzage
        pp.drain()
        assert _old(pp, request_id).held
    pp.new.pull.withdraw(request_id)
    pp.drain()
    assert _new(pp, request_id).status == "withdrawn"
    old = _old(pp, request_id)
    assert old.status == "withdrawn" and not old.held
    with pytest.raises(GatewayError) as info:
        pp.old.pull.record_inzage(request_id, inzage_date=date(2026, 1, 5), how="paper")
    assert _code(info) == "OSO-E474"


def test_a_withdrawal_cancels_a_delivery_that_is_still_queued(pp: PullPair) -> None:
    """The old school answered and the dossier is queued; the new school then withdraws: the
    delivery is cancelled (payload dropped) instead of sent to be refused (found by a review
    of subject erase, which left such a queued dossier behind)."""
    request_id, data = _request(pp)
    queued = _queue_dossier(pp, request_id, data, how="meeting")
    assert queued.outcome == "queued" and queued.delivery_message_id
    pp.new.pull.withdraw(request_id)
    pp.new.drain()  # the withdrawal reaches the old school before its delivery leaves
    delivery = pp.old.store.find_message(m.OUT, queued.delivery_message_id)
    assert delivery is not None and delivery.status == "cancelled"
    pp.drain()
    assert _old(pp, request_id).status == "withdrawn" and _imported(pp) == 0
    assert payload_blobs(pp.old.store.engine, queued.delivery_message_id) == 0


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_a_request_whose_delivery_failed_or_was_cancelled_can_still_be_declined(
    pp: PullPair, ending: str
) -> None:
    """Answered with the dossier, whose delivery then failed (or the operator cancelled it):
    the old school can still close the request with a decline (else it stayed accepted for
    ever, out of reach of the retention purge and of an erasure); a failed delivery's payload
    goes with it. While the delivery may still arrive, a decline stays refused (E474)."""
    from oso_gateway.store.mailbox import Mailbox

    request_id, data = _request(pp)
    queued = _queue_dossier(pp, request_id, data, how="meeting")
    assert queued.delivery_message_id
    with pytest.raises(GatewayError) as info:
        pp.old.pull.decline(request_id, reason="not-our-pupil")
    assert _code(info) == "OSO-E474"  # the dossier is on its way
    mailbox, store = Mailbox(pp.old.store), pp.old.store
    delivery = store.find_message(m.OUT, queued.delivery_message_id)
    assert delivery is not None
    if ending == "cancelled":
        mailbox.cancel(delivery.pk, now=pp.clock())
    else:
        pp.fail_outbox(pp.old)
    delivery = store.find_message(m.OUT, queued.delivery_message_id)
    assert delivery is not None and delivery.status == ending
    declined = pp.old.pull.decline(request_id, reason="not-our-pupil")
    assert declined.status == "declined"
    delivery = store.find_message(m.OUT, queued.delivery_message_id)
    assert delivery is not None and delivery.status == "cancelled"  # a failed one too
    pp.drain()
    assert _new(pp, request_id).status == "declined" and _imported(pp) == 0


def _failed_delivery(pp: PullPair) -> tuple[str, str]:
    """A request answered with the dossier whose delivery failed for good: (request id, the
    delivery's MessageID)."""
    request_id, data = _request(pp)
    queued = _queue_dossier(pp, request_id, data, how="meeting")
    assert queued.delivery_message_id
    pp.fail_outbox(pp.old)
    return request_id, queued.delivery_message_id


def test_the_schools_own_system_can_send_a_failed_request_or_delivery_again(
    pp: PullPair,
) -> None:
    """A request that never reached the old school stayed 'sent' for good unless the operator
    ran `outbox retry` (found by a LAS walkthrough); the school's system now retries it, and the
    old school its failed delivery. Only a failed message: anything else is E474."""
    data = dossier(pp.clock, seed=409)  # another pupil than _failed_delivery's (E486)
    record = pp.new.pull.send_request(requesting=NEW, old_school=OLD, pupil=pupil_of(data))
    with pytest.raises(GatewayError) as queued:  # on its way, not failed
        pp.new.pull.retry(record.request_id, side=m.REQUESTER)
    assert _code(queued) == "OSO-E474" and "queued" in queued.value.detail
    pp.fail_outbox(pp.new)
    pp.new.pull.retry(record.request_id, side=m.REQUESTER, schools=(NEW.code,))
    pp.drain()
    assert _old(pp, record.request_id).status == "received"
    with pytest.raises(GatewayError) as foreign:  # another school's system cannot
        pp.new.pull.retry(record.request_id, side=m.REQUESTER, schools=("02CD00",))
    assert _code(foreign) == "OSO-E473"

    request_id, delivery_id = _failed_delivery(pp)
    with pytest.raises(GatewayError) as no_delivery:  # the new school has no delivery to send
        pp.new.pull.retry(request_id, side=m.HOLDER)
    assert _code(no_delivery) == "OSO-E473"
    pp.old.pull.retry(request_id, side=m.HOLDER)
    pp.drain()
    assert _imported(pp) == 1
    assert pp.old.store.find_message(m.OUT, delivery_id).status == "delivered"  # type: ignore[union-attr]


@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_an_answer_that_never_reached_the_new_school_shows_on_the_request(
    pp: PullPair, answer: str
) -> None:
    """A Declined (or Accepted) answer whose every retry failed left the request reading
    "declined" with no code, while the new school waited for its deadline; nothing linked the
    failed message to the request (an administrator's walkthrough). Now the request carries the
    answer's code until a retry (the school's own, or `outbox retry`) gets it there."""
    request_id, _ = _request(pp)
    if answer == "accept":
        pp.old.pull.accept(request_id, ready_by=pp.clock().date() + timedelta(days=3))
    else:
        pp.old.pull.decline(request_id, reason="not-our-pupil")
    pp.fail_outbox(pp.old)
    pp.old.pull.refresh()
    failed = _old(pp, request_id)
    assert failed.status == ("accepted" if answer == "accept" else "declined")
    assert failed.last_error_code is not None and failed.last_error_code.startswith("OSO-E")
    assert _new(pp, request_id).status == "sent"  # the new school never heard
    pp.old.pull.retry(request_id, side=m.HOLDER)
    pp.drain()
    pp.old.pull.refresh()
    assert _old(pp, request_id).last_error_code is None
    assert _new(pp, request_id).status == failed.status
    with pytest.raises(GatewayError) as again:  # delivered: nothing to send again
        pp.old.pull.retry(request_id, side=m.HOLDER)
    assert _code(again) == "OSO-E474" and "answer" in again.value.detail


def test_a_delivery_retried_after_the_lists_read_gets_no_stale_error_code(
    pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """refresh reads every delivery's state at once; an operator retries the failed one before
    refresh gets to its request: the failure's code is not written onto the request, whose
    delivery is on its way again (found by a review)."""
    from oso_gateway.store.mailbox import Mailbox

    request_id, delivery_id = _failed_delivery(pp)
    store = pp.old.store
    real = store.message_states

    def read_then_retry(direction: str, message_ids: list[str], **kw: object) -> object:
        found = real(direction, message_ids, **kw)  # type: ignore[arg-type]
        message = store.find_message(m.OUT, delivery_id)
        if message is not None and message.status == "failed":
            Mailbox(store).retry(message.pk, now=pp.clock())
        return found

    with pp.old.store.engine.begin() as connection:  # as if no refresh had noted it yet
        connection.execute(
            text("UPDATE pull_requests SET last_error_code = NULL WHERE request_id = :r"),
            {"r": request_id},
        )
    monkeypatch.setattr(store, "message_states", read_then_retry)
    pp.old.pull.refresh()
    monkeypatch.undo()
    stored = pp.old.pull.requests.find(side=m.HOLDER, request_id=request_id)
    assert stored is not None and (stored.status, stored.last_error_code) == ("accepted", None)
    delivery = store.find_message(m.OUT, delivery_id)
    assert delivery is not None and delivery.status == "queued"


def test_a_decline_stored_while_refresh_looks_at_the_failed_delivery_stands(
    pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """refresh read the request accepted and its delivery failed; a decline lands in between:
    refresh does not write the request back to accepted (found by a review: it reopened it)."""
    request_id, delivery_id = _failed_delivery(pp)
    store = pp.old.store
    real = store.message_states
    declined: list[str] = []

    def read_then_decline(direction: str, message_ids: list[str], **kw: object) -> object:
        found = real(direction, message_ids, **kw)  # type: ignore[arg-type]
        if found.get(delivery_id, ("",))[0] == "failed" and not declined:
            declined.append("deciding")  # the decline looks the delivery up too
            declined.append(pp.old.pull.decline(request_id, reason="not-our-pupil").status)
        return found

    monkeypatch.setattr(store, "message_states", read_then_decline)
    pp.old.pull.refresh()
    assert declined == ["deciding", "declined"]
    assert _old(pp, request_id).status == "declined"


def test_a_retry_of_the_failed_delivery_wins_over_a_decline(
    pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """decline read the delivery failed; the operator retries it before the decline cancels it:
    the decline is refused (E474) and the retried delivery goes (it cancelled the retry)."""
    from oso_gateway.store.mailbox import Mailbox

    request_id, delivery_id = _failed_delivery(pp)
    store = pp.old.store
    real = store.find_message

    def find_then_retry(direction: str, message_id: str, **kw: object) -> object:
        found = real(direction, message_id, **kw)  # type: ignore[arg-type]
        if message_id == delivery_id and found is not None and found.status == "failed":  # type: ignore[attr-defined]
            Mailbox(store).retry(found.pk, now=pp.clock())  # type: ignore[attr-defined]
        return found

    monkeypatch.setattr(store, "find_message", find_then_retry)
    with pytest.raises(GatewayError) as info:
        pp.old.pull.decline(request_id, reason="not-our-pupil")
    assert _code(info) == "OSO-E474"
    monkeypatch.undo()
    assert _old(pp, request_id).status == "accepted"
    delivery = store.find_message(m.OUT, delivery_id)
    assert delivery is not None and delivery.status == "queued"
    pp.drain()
    assert _imported(pp) == 1


def test_a_withdrawal_leaves_no_image_of_the_dropped_dossier_in_the_files(pp: PullPair) -> None:
    """The held dossier a withdrawal drops is gone from the database file and its WAL once the
    withdrawal is answered (the WAL is checkpointed after the import commits; found by the
    second review of subject erase)."""
    request_id, data = _request(pp)
    pp.old.pull.answer_with_dossier(request_id, data)  # held for the inzage
    pp.drain()
    with pp.old.store.engine.connect() as conn:
        held = bytes(
            conn.exec_driver_sql(
                "SELECT held_ciphertext FROM pull_requests WHERE request_id = ?", (request_id,)
            ).scalar_one()
        )
    # pieces of it as the files hold them (a piece across an overflow page's boundary is not
    # contiguous there, and where the boundaries fall moves with the row's other columns)
    files = sqlite_files(pp.old.store.engine)
    present = [
        held[i : i + 32] for i in range(100, len(held) - 32, 509) if held[i : i + 32] in files
    ]
    assert len(present) >= 3
    pp.new.pull.withdraw(request_id)
    pp.new.drain()  # the withdrawal is imported at the old school
    assert _old(pp, request_id).status == "withdrawn"
    files = sqlite_files(pp.old.store.engine)
    assert not any(piece in files for piece in present)


def test_a_dossier_queued_while_a_decline_decides_makes_the_decline_fail(
    pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """decline read the request unanswered; the school system answers it with the dossier
    before the decline is written: the decline is refused (E474) and the dossier goes, rather
    than a declined request whose dossier is delivered anyway (found by a third review)."""
    request_id, data = _request(pp)
    _waive(pp, request_id)  # the dossier is queued as soon as it is handed in
    service = pp.old.pull
    real = service._undeliverable

    def then_answer(record: RequestRecord) -> object:
        found = real(record)
        service.answer_with_dossier(request_id, data)  # the school API, meanwhile
        return found

    monkeypatch.setattr(service, "_undeliverable", then_answer)
    with pytest.raises(GatewayError) as info:
        service.decline(request_id, reason="not-our-pupil")
    assert _code(info) == "OSO-E474"
    monkeypatch.undo()
    assert _old(pp, request_id).status == "accepted"
    pp.drain()
    service.refresh()
    assert _old(pp, request_id).status == "delivered" and _imported(pp) == 1


def test_a_decline_written_while_the_dossier_is_queued_undoes_the_queueing(
    pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """answer_with_dossier read the request open; a decline commits before the delivery is
    queued: the queueing is refused (E474) in the same transaction, so no dossier leaves for
    a declined request."""
    request_id, data = _request(pp)
    _waive(pp, request_id)  # the dossier is queued as soon as it is handed in
    service = pp.old.pull
    real = service._released_at_hand_in

    def decline_first(record: RequestRecord) -> bool:
        service.decline(request_id, reason="not-our-pupil")  # another client, meanwhile
        return real(record)

    monkeypatch.setattr(service, "_released_at_hand_in", decline_first)
    with pytest.raises(GatewayError) as info:
        service.answer_with_dossier(request_id, data)
    assert _code(info) == "OSO-E474"
    assert _old(pp, request_id).status == "declined"
    related = [r for r in pp.old.store.list_messages(direction=m.OUT) if r.relates_to == request_id]
    assert wire.ACTION_DELIVER not in [r.action for r in related]  # only the answers
    pp.drain()
    assert _imported(pp) == 0 and _new(pp, request_id).status == "declined"


def test_a_withdrawal_decided_while_the_dossier_arrives_is_refused(
    pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """withdraw read the request open; the dossier is imported before the withdrawal is
    written: the withdrawal is refused (E474), the request stays delivered."""
    request_id, data = _request(pp)
    _waive(pp, request_id)  # the dossier is queued as soon as it is handed in
    pp.old.pull.answer_with_dossier(request_id, data)  # queued, not yet sent
    service = pp.new.pull
    real = service.find

    def find_then_deliver(*args: object, **kwargs: object) -> RequestRecord:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        pp.old.drain()  # the delivery (and the acceptance) arrive meanwhile
        return found

    monkeypatch.setattr(service, "find", find_then_deliver)
    with pytest.raises(GatewayError) as info:
        service.withdraw(request_id)
    assert _code(info) == "OSO-E474"
    monkeypatch.undo()
    assert _new(pp, request_id).status == "delivered" and _imported(pp) == 1


def test_an_acceptance_decided_while_the_withdrawal_arrives_is_refused(
    pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """accept read the request received; the new school's withdrawal is stored before the
    acceptance is written: the acceptance is refused (E474), the request stays withdrawn."""
    request_id, _data = _request(pp)
    pp.new.pull.withdraw(request_id)  # queued at the new school
    service = pp.old.pull
    real = service.find

    def find_then_withdrawn(*args: object, **kwargs: object) -> RequestRecord:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        pp.new.drain()  # the withdrawal arrives meanwhile
        return found

    monkeypatch.setattr(service, "find", find_then_withdrawn)
    with pytest.raises(GatewayError) as info:
        service.accept(request_id, ready_by=date(2030, 1, 1))
    assert _code(info) == "OSO-E474"
    monkeypatch.undo()
    assert _old(pp, request_id).status == "withdrawn"


def test_a_request_past_its_deadline_expires(pp: PullPair) -> None:
    request_id, _ = _request(pp)
    pp.clock.advance(timedelta(days=pp.new.pull.settings.expire_days, seconds=1))
    pp.new.pull.refresh()
    assert _new(pp, request_id).status == "expired"
    assert [r.request_id for r in pp.new.pull.list(statuses=("expired",))] == [request_id]


def test_a_schools_list_brings_only_its_own_requests_up_to_date(pp: PullPair) -> None:
    """A vendor's gateway serves hundreds of schools: one school's list refreshed all of
    theirs (the operator's list, every school's, still does)."""
    request_id, _ = _request(pp)
    pp.clock.advance(timedelta(days=pp.new.pull.settings.expire_days, seconds=1))

    def stored() -> str:
        row = pp.new.pull.requests.find(side=m.REQUESTER, request_id=request_id, schools=None)
        assert row is not None
        return row.status

    assert pp.new.pull.list(schools=("99ZZ00",)) == [] and stored() == "sent"
    [listed] = pp.new.pull.list(schools=(NEW.code,))
    assert listed.status == stored() == "expired"


def test_a_name_mismatch_is_only_a_warning(pp: PullPair) -> None:
    request_id, data = _request(pp, family_name="Pieters-Anders")
    outcome = _queue_dossier(pp, request_id, data, how="meeting")
    assert outcome.outcome == "queued" and outcome.name_warning
    pp.drain()
    new = _new(pp, request_id)
    assert new.status == "delivered" and new.name_warning


# --- the inzage gate ---------------------------------------------------------------------------


def test_a_requested_dossier_without_recorded_inzage_is_not_delivered(pp: PullPair) -> None:
    request_id, data = _request(pp)
    outcome = pp.old.pull.answer_with_dossier(request_id, data)
    assert outcome.outcome == "held" and outcome.delivery_message_id is None
    pp.drain()
    deliveries = [
        r for r in pp.old.store.list_messages(direction=m.OUT) if r.action == wire.ACTION_DELIVER
    ]
    assert deliveries == []
    assert _imported(pp) == 0 and _new(pp, request_id).status == "accepted"
    assert pp.old.pull.preview(request_id) is not None  # what the parents are shown


def test_a_waiver_is_refused_where_the_policy_requires_inzage(pp: PullPair) -> None:
    request_id, data = _request(pp)
    pp.old.pull.answer_with_dossier(request_id, data)
    with pytest.raises(GatewayError) as info:
        pp.old.pull.record_inzage(
            request_id, inzage_date=None, how=None, waiver="ouders onbereikbaar"
        )
    assert _code(info) == "OSO-E472"
    assert _old(pp, request_id).held


def test_a_waiver_with_a_reason_releases_the_dossier_where_the_policy_allows(
    tmp_path: Path,
) -> None:
    pp = make_pull_pair(tmp_path, policy=SchoolPolicy(inzage=INZAGE_OR_WAIVER))
    try:
        request_id, data = _request(pp)
        pp.old.pull.answer_with_dossier(request_id, data)
        released = pp.old.pull.record_inzage(
            request_id, inzage_date=None, how=None, waiver="ouders niet bereikbaar"
        )
        assert released is not None and released.outcome == "queued"
        pp.drain()
        assert _new(pp, request_id).status == "delivered"
    finally:
        pp.close()


def test_an_inzage_is_recorded_only_of_a_held_dossier(pp: PullPair) -> None:
    """Recorded before the dossier was handed in, it let the dossier leave at once on its
    hand-in, never held nor shown by the preview, and the parents' report said they had seen
    it (a privacy walkthrough)."""
    request_id, data = _request(pp)
    with pytest.raises(GatewayError) as info:
        pp.old.pull.record_inzage(request_id, inzage_date=date(2026, 1, 5), how="meeting")
    assert _code(info) == "OSO-E474" and "hand in the dossier first" in info.value.detail
    record = _old(pp, request_id)
    assert pp.old.pull.requests.find_inzage(school=OLD.code, request_pk=record.pk) is None
    assert pp.old.pull.answer_with_dossier(request_id, data).outcome == "held"
    assert pp.old.pull.preview(request_id) is not None
    released = pp.old.pull.record_inzage(request_id, inzage_date=date(2026, 1, 5), how="meeting")
    assert released is not None and released.outcome == "queued"


def test_an_inzage_needs_a_date_and_how(pp: PullPair) -> None:
    request_id, _ = _request(pp)
    with pytest.raises(GatewayError) as info:
        pp.old.pull.record_inzage(request_id, inzage_date=None, how="paper")
    assert _code(info) == "OSO-E471"


def _prepared_push(pp: PullPair, data: bytes) -> PreparedDossier:
    """``data`` prepared as a push from the old school to the new (no request)."""
    return prepare_dossier(
        data, to=NEW, directory=pp.directory, config=pp.old.outbox.config, now=pp.clock()
    )


def _push_policy_pair(tmp_path: Path) -> tuple[PullPair, bytes]:
    """A pair whose old school's policy asks an inzage for a push, a dossier, and the inzage
    of its push recorded."""
    pp = make_pull_pair(tmp_path, policy=SchoolPolicy(push_requires_inzage=True))
    data = dossier(pp.clock)
    pp.old.pull.record_push_inzage(
        school=OLD,
        pupil_identifier=pupil_of(data).identifier,
        inzage_date=date(2026, 1, 5),
        how="meeting",
    )
    return pp, data


def test_the_gate_holds_for_a_push_when_the_policy_says_so(tmp_path: Path) -> None:
    pp = make_pull_pair(tmp_path, policy=SchoolPolicy(push_requires_inzage=True))
    try:
        data = dossier(pp.clock)

        def push() -> None:
            pp.old.outbox.enqueue(_prepared_push(pp, data))

        with pytest.raises(GatewayError) as info:
            push()
        assert _code(info) == "OSO-E471"
        pupil = pupil_of(data)
        pp.old.pull.record_push_inzage(
            school=OLD,
            pupil_identifier=pupil.identifier,
            inzage_date=date(2026, 1, 5),
            how="meeting",
        )
        push()
        pp.drain()
        assert _imported(pp) == 1
        # one inzage, one push: it let every later push of the pupil through (a security
        # review); the parents see each dossier that goes
        pp.clock.advance(timedelta(minutes=5))
        with pytest.raises(GatewayError) as again:
            push()
        assert _code(again) == "OSO-E471" and "earlier push" in again.value.detail
        pp.old.pull.record_push_inzage(
            school=OLD,
            pupil_identifier=pupil.identifier,
            inzage_date=date(2026, 1, 6),
            how="paper",
        )
        pp.clock.advance(timedelta(minutes=5))
        push()  # the new inzage lets this one through
        # cancelled before any attempt, a push never left: the inzage still holds
        from oso_gateway.store.mailbox import Mailbox

        [queued] = [r for r in pp.old.store.list_messages(direction=m.OUT) if r.status == "queued"]
        Mailbox(pp.old.store).cancel(queued.pk, now=pp.clock())
        pp.clock.advance(timedelta(minutes=5))
        push()
    finally:
        pp.close()


def test_pushes_queued_at_once_on_one_inzage_let_one_through(tmp_path: Path) -> None:
    """Each of several pushes of one pupil passed the early "one inzage, one push" check before
    any of them was queued, and all left: one inzage sent the dossier to three schools (a
    security review). The queueing transaction checks again, and only the first passes."""
    pp, data = _push_policy_pair(tmp_path)
    try:
        pushes = [_prepared_push(pp, data) for _ in range(3)]
        for prepared in pushes:
            pp.old.pull.check_push(prepared)  # each passes: none is queued yet
        pp.old.outbox.gate = None  # as if all three had passed it at the same moment
        pp.old.outbox.enqueue(pushes[0])
        for prepared in pushes[1:]:
            with pytest.raises(GatewayError) as refused:
                pp.old.outbox.enqueue(prepared)
            assert _code(refused) == "OSO-E471" and "at the same time" in refused.value.detail
        queued = pp.old.store.list_messages(direction=m.OUT)
        assert [r.message_id for r in queued] == [pushes[0].message_id]  # nothing else queued
        pp.drain()
        assert _imported(pp) == 1
    finally:
        pp.close()


def test_a_push_that_was_tried_counts_after_a_retry_and_a_cancel(tmp_path: Path) -> None:
    """A retry sets the attempt count back to 0: a push that was tried (and may have arrived),
    retried and then cancelled read as "never left", and a second push went on the same
    inzage (a review). Whether it was tried is read from its events."""
    from oso_gateway.store.mailbox import Mailbox

    pp, data = _push_policy_pair(tmp_path)
    try:

        def push() -> None:
            pp.old.outbox.enqueue(_prepared_push(pp, data))

        push()
        store = pp.old.store
        claimed = store.claim_next_outbound(now=pp.clock(), lease=timedelta(minutes=5))
        assert claimed is not None  # on the wire: it may arrive, whatever happens next
        store.mark_retry(
            claimed.pk, error_code="OSO-E461", next_attempt_at=pp.clock(), now=pp.clock()
        )
        mailbox = Mailbox(store)
        assert mailbox.retry(claimed.pk, now=pp.clock()).attempts == 0
        mailbox.cancel(claimed.pk, now=pp.clock())
        pp.clock.advance(timedelta(minutes=5))
        with pytest.raises(GatewayError) as refused:
            push()
        assert _code(refused) == "OSO-E471" and "earlier push" in refused.value.detail
    finally:
        pp.close()


def test_one_inzage_one_push_holds_whatever_the_processes_clocks(
    tmp_path: Path, engine: Engine
) -> None:
    """ "One inzage, one push" compared the inzage's recording time (the clock of the process
    that recorded it: the API's) with the push's queue time (the pushing process's, maybe on
    another host). With the pusher's clock behind by more than the time between the two, a
    push did not use the inzage up and a second push went on it; with the pusher's clock
    ahead, a push made before a new inzage read as made after it, and the push the new inzage
    was recorded for was refused. A push now names the inzage it went under; no clock is
    compared. On SQLite and on PostgreSQL."""
    policy = SchoolPolicy(push_requires_inzage=True)
    pp = make_pull_pair(tmp_path, policy=policy, old_store=Store(engine, AtRestCipher(KEY)))
    skew = timedelta(minutes=10)
    try:
        data = dossier(pp.clock)
        pupil = pupil_of(data).identifier

        def inzage(day: int) -> None:
            pp.old.pull.record_push_inzage(
                school=OLD, pupil_identifier=pupil, inzage_date=date(2026, 1, day), how="meeting"
            )
            pp.clock.advance(timedelta(seconds=30))

        def push() -> PreparedDossier:
            prepared = _prepared_push(pp, data)
            pp.old.outbox.enqueue(prepared)
            pp.clock.advance(timedelta(seconds=30))
            return prepared

        def refused() -> str:
            with pytest.raises(GatewayError) as info:
                push()
            assert _code(info) == "OSO-E471"
            return info.value.detail

        # the pushing process's clock runs 10 minutes behind the one that records inzages
        pp.old.outbox.clock = lambda: pp.clock() - skew
        inzage(5)
        first = push()
        assert "earlier push" in refused()  # the same inzage once more: it was used up
        # ... and 10 minutes ahead: the push just made reads as made after the next inzage
        pp.old.outbox.clock = lambda: pp.clock() + skew
        inzage(6)
        second = push()  # a new inzage lets one push through
        inzage(7)
        third = push()  # and so does the next, made after the one before
        assert "earlier push" in refused()
        queued = {r.message_id for r in pp.old.store.list_messages(direction=m.OUT)}
        assert queued == {first.message_id, second.message_id, third.message_id}
    finally:
        pp.close()


def test_a_push_from_before_pushes_named_their_inzage_counts_as_it_did(
    tmp_path: Path, engine: Engine
) -> None:
    """Migration ``push_inzage_link_1`` cannot tell which inzage an earlier push went under:
    its record is marked unlinked and counted by time, as before, so that an inzage used up
    before the upgrade does not let a second push go after it."""
    from alembic import command

    from oso_gateway.store import upgrade
    from oso_gateway.store.migrate import alembic_config

    policy = SchoolPolicy(push_requires_inzage=True)
    pp = make_pull_pair(tmp_path, policy=policy, old_store=Store(engine, AtRestCipher(KEY)))
    try:
        data = dossier(pp.clock)
        pupil = pupil_of(data).identifier

        def inzage() -> None:
            pp.old.pull.record_push_inzage(
                school=OLD, pupil_identifier=pupil, inzage_date=date(2026, 1, 5), how="paper"
            )
            pp.clock.advance(timedelta(seconds=30))

        def push() -> None:
            pp.old.outbox.enqueue(_prepared_push(pp, data))
            pp.clock.advance(timedelta(seconds=30))

        inzage()
        push()
        with engine.begin() as conn:  # the database as it was before the migration
            command.downgrade(alembic_config(conn), "request_pupil_hmac_1")
        upgrade(engine)
        with engine.connect() as conn:
            linked = conn.execute(text("SELECT inzage_pk FROM disclosures")).scalars().all()
        assert linked == [m.INZAGE_UNLINKED]
        with pytest.raises(GatewayError) as refused:
            push()
        assert _code(refused) == "OSO-E471" and "earlier push" in refused.value.detail
        inzage()
        push()  # queued before the new inzage: the unlinked push was not of it
    finally:
        pp.close()


def test_a_push_without_the_policy_needs_no_inzage(pp: PullPair) -> None:
    data = dossier(pp.clock)
    pp.push(data)
    pp.drain()
    assert _imported(pp) == 1


# --- refusals on the old school's side ----------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{"bsn": "111222333"}, {"birth_date": date(2014, 1, 1)}],
    ids=["identifier", "birth-date"],
)
def test_a_dossier_of_another_pupil_is_refused_before_sealing(
    pp: PullPair, changes: dict[str, object]
) -> None:
    request_id, data = _request(pp, **changes)
    with pytest.raises(GatewayError) as info:
        pp.old.pull.answer_with_dossier(request_id, data)
    assert _code(info) == "OSO-E470"
    assert pp.old.store.list_messages(direction=m.OUT) == []
    assert _old(pp, request_id).status == "received"


def test_an_unknown_request_id_is_refused(pp: PullPair) -> None:
    with pytest.raises(GatewayError) as info:
        pp.old.pull.accept(new_message_id(), ready_by=date(2030, 1, 1))
    assert _code(info) == "OSO-E473"


def test_a_ready_by_date_that_has_gone_by_is_refused_and_nothing_is_sent(pp: PullPair) -> None:
    request_id, _ = _request(pp)
    today = pp.clock().astimezone(UTC).date()
    before = len(pp.old.store.list_messages(direction=m.OUT))
    with pytest.raises(GatewayError) as info:
        pp.old.pull.accept(request_id, ready_by=today - timedelta(days=1))
    assert _code(info) == "OSO-E485"
    assert _old(pp, request_id).status == "received"
    assert len(pp.old.store.list_messages(direction=m.OUT)) == before
    assert pp.old.pull.accept(request_id, ready_by=today).status == "accepted"  # today is fine


def test_steps_the_state_does_not_allow_are_refused(pp: PullPair) -> None:
    request_id, _ = _request(pp)
    pp.old.pull.decline(request_id, reason="unknown-pupil")
    pp.drain()
    for step in (
        lambda: pp.old.pull.accept(request_id, ready_by=date(2030, 1, 1)),
        lambda: pp.old.pull.decline(request_id, reason="other", text="x"),
        lambda: pp.new.pull.withdraw(request_id),
    ):
        with pytest.raises(GatewayError) as info:
            step()
        assert _code(info) == "OSO-E474"


def test_a_request_needs_one_valid_identifier(pp: PullPair) -> None:
    data = dossier(pp.clock)
    for changes in ({"bsn": "123456789"}, {"bsn": None}):
        with pytest.raises(GatewayError) as info:
            pp.new.pull.send_request(
                requesting=NEW, old_school=OLD, pupil=pupil_of(data, **changes)
            )
        assert _code(info) == "OSO-E483"


def test_a_decline_other_needs_a_text(pp: PullPair) -> None:
    request_id, _ = _request(pp)
    with pytest.raises(GatewayError) as info:
        pp.old.pull.decline(request_id, reason="other")
    assert _code(info) == "OSO-E484"
    assert _old(pp, request_id).status == "received"


# --- forced onto the wire: the receiving side refuses -------------------------------------------


def _wire(
    pp: PullPair,
    payload: etree._Element,
    *,
    action: str,
    relates_to: str | None,
    sender_oin: str = SENDER_OIN,
    to_new: bool = True,
    message_id: str | None = None,
) -> bytes:
    url, school, oin = (
        (RECEIVER_URL, NEW, RECEIVER_OIN) if to_new else (SENDER_URL, OLD, SENDER_OIN)
    )
    return seal(
        payload,
        sender=identity(sender_oin),
        recipient_certificate=identity(oin).certificate,
        to=address_for(url, school),
        action=action,
        message_id=message_id or new_message_id(),
        now=pp.clock(),
        relates_to=relates_to,
    ).data


def test_a_mismatching_dossier_forced_onto_the_wire_is_refused_by_the_new_school(
    pp: PullPair,
) -> None:
    request_id, _ = _request(pp)
    other = etree.fromstring(dossier(pp.clock, seed=77))  # another pupil
    assert pupil_of(etree.tostring(other)).identifier != pupil_of(dossier(pp.clock)).identifier
    result = pp.new.receiver.handle(
        _wire(pp, other, action=wire.ACTION_DELIVER, relates_to=request_id)
    )
    assert _fault(result.body) == "OSO-E479"
    assert _imported(pp) == 0 and _new(pp, request_id).status == "sent"


def test_a_delivery_for_an_unknown_request_is_not_imported(pp: PullPair) -> None:
    payload = etree.fromstring(dossier(pp.clock))
    result = pp.new.receiver.handle(
        _wire(pp, payload, action=wire.ACTION_DELIVER, relates_to=new_message_id())
    )
    assert _fault(result.body) == "OSO-E476" and _imported(pp) == 0


def test_a_delivery_from_another_school_than_asked_is_not_imported(tmp_path: Path) -> None:
    pp = make_pull_pair(tmp_path)
    try:
        request_id, data = _request(pp)
        vendor_dossier = etree.fromstring(with_sending_school(data, "02CD"))
        result = pp.new.receiver.handle(
            _wire(
                pp,
                vendor_dossier,
                action=wire.ACTION_DELIVER,
                relates_to=request_id,
                sender_oin=VENDOR_OIN,
            )
        )
        assert _fault(result.body) == "OSO-E477" and _imported(pp) == 0
    finally:
        pp.close()


def test_a_delivery_for_a_withdrawn_request_is_not_imported(pp: PullPair) -> None:
    request_id, data = _request(pp)
    pp.new.pull.withdraw(request_id)
    result = pp.new.receiver.handle(
        _wire(pp, etree.fromstring(data), action=wire.ACTION_DELIVER, relates_to=request_id)
    )
    assert _fault(result.body) == "OSO-E478" and _imported(pp) == 0


def _request_payload(pp: PullPair, request_id: str, old: School = OLD) -> etree._Element:
    return p.build_request(
        p.DossierRequest(
            request_id=request_id,
            requested_at=pp.clock(),
            requested_date=date(2030, 1, 1),
            requesting_school=NEW,
            old_school=old,
            pupil=pupil_of(dossier(pp.clock)),
        )
    )


def test_a_request_whose_id_is_not_its_message_id_is_refused(pp: PullPair) -> None:
    payload = _request_payload(pp, new_message_id())
    data = _wire(
        pp, payload, action=p.ACTION_REQUEST, relates_to=None, sender_oin=RECEIVER_OIN, to_new=False
    )
    assert _fault(pp.old.receiver.handle(data).body) == "OSO-E475"


def test_a_request_naming_another_old_school_is_refused(pp: PullPair) -> None:
    message_id = new_message_id()
    payload = _request_payload(pp, message_id, old=School("03EF", "00"))
    data = _wire(
        pp,
        payload,
        action=p.ACTION_REQUEST,
        relates_to=None,
        sender_oin=RECEIVER_OIN,
        to_new=False,
        message_id=message_id,
    )
    assert _fault(pp.old.receiver.handle(data).body) == "OSO-E480"
    assert pp.old.pull.list() == []


def _answer(pp: PullPair, request_id: str, outcome: str) -> etree._Element:
    return p.build_answer(
        p.RequestAnswer(
            request_id=request_id,
            answered_at=pp.clock(),
            sender=OLD,
            recipient=NEW,
            outcome=outcome,
            ready_by=date(2030, 1, 1) if outcome == p.ACCEPTED else None,
            reason="unknown-pupil" if outcome == p.DECLINED else None,
        )
    )


def test_an_answer_for_an_unknown_request_is_refused(pp: PullPair) -> None:
    request_id = new_message_id()
    data = _wire(
        pp, _answer(pp, request_id, p.ACCEPTED), action=p.ACTION_ANSWER, relates_to=request_id
    )
    assert _fault(pp.new.receiver.handle(data).body) == "OSO-E481"


def test_an_answer_the_state_does_not_allow_is_refused(pp: PullPair) -> None:
    request_id, _ = _request(pp)
    pp.new.pull.withdraw(request_id)
    data = _wire(
        pp, _answer(pp, request_id, p.ACCEPTED), action=p.ACTION_ANSWER, relates_to=request_id
    )
    assert _fault(pp.new.receiver.handle(data).body) == "OSO-E482"
    assert _new(pp, request_id).status == "withdrawn"


def test_a_gateway_without_the_pull_workflow_refuses_requests(pp: PullPair) -> None:
    from oso_gateway.transfer.handlers import default_handlers

    pp.old.receiver.handlers = dict(default_handlers())
    message_id = new_message_id()
    data = _wire(
        pp,
        _request_payload(pp, message_id),
        action=p.ACTION_REQUEST,
        relates_to=None,
        sender_oin=RECEIVER_OIN,
        to_new=False,
        message_id=message_id,
    )
    assert _fault(pp.old.receiver.handle(data).body) == "OSO-E452"


def test_the_parents_preview_is_the_held_dossier_as_it_will_leave(pp: PullPair) -> None:
    from oso_gateway.dossier.preview import render_text

    request_id, data = _request(pp)
    assert pp.old.pull.preview(request_id) is None  # nothing held yet
    pp.old.pull.answer_with_dossier(request_id, data)
    family_name = pupil_of(data).family_name
    counts = pp.old.pull.preview(request_id)
    details = pp.old.pull.preview(request_id, include_details=True)
    assert counts is not None and details is not None
    assert family_name not in render_text(counts)
    assert family_name in render_text(details, show_details=True)


def test_the_services_refuse_control_characters_in_free_text(pp: PullPair) -> None:
    """The same classes as the school API, for every caller (the CLI stored them)."""
    request_id, data = _request(pp)
    assert pp.old.pull.answer_with_dossier(request_id, data).outcome == "held"
    today = pp.old.pull.clock().date()
    with pytest.raises(GatewayError) as view:
        pp.old.pull.record_inzage(
            request_id, inzage_date=today, how="paper", zienswijze="eens \u202e"
        )
    assert view.value.code == "OSO-E475"
    with pytest.raises(GatewayError) as text:
        pp.old.pull.decline(request_id, reason="other", text="\u001b]0;x\u0007")
    assert text.value.code == "OSO-E484"
    assert _old(pp, request_id).status == "accepted"  # neither took effect


def test_the_digest_of_a_request_or_an_answer_cannot_be_matched_to_a_guessed_pupil(
    pp: PullPair,
) -> None:
    """The transfer log, the receipt and the message record name a payload's SHA-256. A
    request's facts are few: from a log export and a known name and birth date, a privacy
    walkthrough recovered the BSN in seconds. A random Salt makes each payload's digest its
    own; a payload without one (an earlier sender) is still read."""
    import hashlib

    from oso_gateway.security.c14n import exc_c14n

    def digest(element: etree._Element) -> str:
        return hashlib.sha256(exc_c14n(element)).hexdigest()

    def unsalted(element: etree._Element) -> etree._Element:
        bare = copy.deepcopy(element)
        [salt] = [e for e in bare if etree.QName(e).localname == "Salt"]
        bare.remove(salt)
        return bare

    message_id = new_message_id()
    for build, parse in (
        (lambda: _request_payload(pp, message_id), p.parse_request),
        (lambda: _answer(pp, message_id, p.DECLINED), p.parse_answer),
    ):
        first, second = build(), build()  # the same facts, the same moment
        assert digest(unsalted(first)) == digest(unsalted(second))  # what a guess rebuilds
        assert digest(first) != digest(second) != digest(unsalted(second))
        assert parse(unsalted(first)) == parse(first)


def test_an_inzage_releases_only_the_dossier_the_parents_were_shown(
    pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A security review: an inzage whose release failed (here: the sealing) stayed recorded,
    and the next hand-in left at once, unseen; a hand-in between the inzage's record and its
    release was released in the shown one's place. Now a new hand-in is held again, and a
    release takes only the hold the parents were shown (else E474, nothing queued)."""
    from oso_gateway.transfer.pull import service as service_module

    request_id, data = _request(pp)
    service = pp.old.pull
    assert service.answer_with_dossier(request_id, data).outcome == "held"
    real_prepare = service_module.prepare_dossier

    def fails_once(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(service_module, "prepare_dossier", real_prepare)
        raise GatewayError("sealing failed")

    monkeypatch.setattr(service_module, "prepare_dossier", fails_once)
    with pytest.raises(GatewayError):
        service.record_inzage(request_id, inzage_date=date(2026, 1, 5), how="meeting")
    assert service.answer_with_dossier(request_id, data).outcome == "held"  # not queued
    assert _old(pp, request_id).delivery_message_id is None

    def handed_in_meanwhile(*args: Any, **kwargs: Any) -> Any:
        # (the hand-in prepares the dossier too: with the real preparation, once)
        monkeypatch.setattr(service_module, "prepare_dossier", real_prepare)
        service.answer_with_dossier(request_id, data)  # the school API, meanwhile
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(service_module, "prepare_dossier", handed_in_meanwhile)
    with pytest.raises(GatewayError) as info:
        service.record_inzage(request_id, inzage_date=date(2026, 1, 6), how="paper")
    assert _code(info) == "OSO-E474" and "record the inzage again" in info.value.detail
    monkeypatch.undo()
    held = _old(pp, request_id)
    assert held.held and held.delivery_message_id is None
    # recorded in the transaction that releases: refused, it is not recorded either (it was,
    # and said the parents saw a dossier that was not the one held: a security review)
    assert service.requests.find_inzage(school=OLD.code, request_pk=held.pk) is None
    related = [r for r in pp.old.store.list_messages(direction=m.OUT) if r.relates_to == request_id]
    assert wire.ACTION_DELIVER not in [r.action for r in related]
    released = service.record_inzage(request_id, inzage_date=date(2026, 1, 7), how="paper")
    assert released is not None and released.outcome == "queued"


def _other_of_the_pupil(data: bytes) -> bytes:
    """Another dossier of the same pupil: the school's director's name differs."""
    assert b"<naamdirecteur>M. de Vries</naamdirecteur>" in data
    return data.replace(b"M. de Vries</naamdirecteur>", b"M. de Boer</naamdirecteur>")


def test_an_inzage_naming_its_preview_refuses_a_dossier_handed_in_since(pp: PullPair) -> None:
    """The inzage was of whatever was held when it was recorded: parents shown one dossier, the
    school system handing in another before the inzage was recorded, sent the other (a privacy
    walkthrough). The preview names the version it shows (the digest of what would be sent);
    an inzage that names it is refused, nothing recorded nor released, when what would leave
    now is another version. The same export handed in again is the same version."""
    request_id, data = _request(pp)
    service = pp.old.pull
    assert service.answer_with_dossier(request_id, data).outcome == "held"
    shown = service.preview(request_id)
    assert shown is not None and shown.version is not None and len(shown.version) == 16
    assert shown.as_dict()["version"] == shown.version
    assert service.answer_with_dossier(request_id, data).outcome == "held"  # the same export
    assert service.preview(request_id).version == shown.version  # the same version
    other = _other_of_the_pupil(data)
    assert service.answer_with_dossier(request_id, other).outcome == "held"
    again = service.preview(request_id)
    assert again is not None and again.version != shown.version
    pk = _old(pp, request_id).pk
    with pytest.raises(GatewayError) as info:
        service.record_inzage(
            request_id, inzage_date=date(2026, 1, 5), how="meeting", previewed=shown.version
        )
    assert _code(info) == "OSO-E474"
    assert f"version {shown.version}" in info.value.detail and again.version in info.value.detail
    assert service.requests.find_inzage(school=OLD.code, request_pk=pk) is None
    assert _old(pp, request_id).held and _old(pp, request_id).delivery_message_id is None
    for malformed in ("not-a-version", shown.version[:8], "<b>" + shown.version):
        with pytest.raises(GatewayError) as bad:
            service.record_inzage(
                request_id, inzage_date=date(2026, 1, 5), how="meeting", previewed=malformed
            )
        assert _code(bad) == "OSO-E475" and malformed not in bad.value.detail
    released = service.record_inzage(
        request_id, inzage_date=date(2026, 1, 5), how="meeting", previewed=again.version.upper()
    )
    assert released is not None and released.outcome == "queued"
    recorded = service.requests.find_inzage(school=OLD.code, request_pk=pk)
    assert recorded is not None and recorded.previewed == again.version
    [delivery] = [r for r in pp.old.store.list_messages(direction=m.OUT)
                  if r.action == wire.ACTION_DELIVER]  # fmt: skip
    assert delivery.payload_digest is not None
    assert delivery.payload_digest.startswith(again.version)  # what left is what was shown
    # the parents' report says so: the inzage recorded with the release reaches the disclosure
    # record (it was written before the inzage existed, and held none: a review)
    from oso_gateway.store.disclosures import PrivacyRecords
    from oso_gateway.transfer.report import build_report, render_html

    records = PrivacyRecords(pp.old.store.engine, pp.old.store.cipher)
    [disclosed] = records.disclosures(message_id=delivery.message_id)
    assert disclosed.inzage is not None
    assert (
        disclosed.inzage["recorded_date"] == "2026-01-05" and disclosed.inzage["how"] == "meeting"
    )
    assert disclosed.inzage["previewed"] == again.version
    html = render_html(build_report([disclosed], language="en", now=pp.clock()))
    assert f"they saw version {again.version}, and that version was sent" in html


def test_an_objection_changed_after_the_preview_changes_the_version(pp: PullPair) -> None:
    """A security review: the version named only the held dossier, so an objection withdrawn
    after the preview released the category the parents were told stays. The version is the
    digest of what would leave: recorded or withdrawn since, E474 and nothing released."""
    from oso_gateway.dossier.disclosure import pupil_number
    from oso_gateway.security.xmlparse import parse_xml
    from oso_gateway.store.disclosures import PrivacyRecords

    request_id, data = _request(pp)
    service = pp.old.pull
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None
    records = PrivacyRecords(pp.old.store.engine, pp.old.store.cipher)
    objection = {"school": OLD.code, "pupil_number": number, "category": "cijferlijsten"}
    assert records.record_objection(**objection, now=pp.clock())
    service.answer_with_dossier(request_id, data)
    withheld = service.preview(request_id)
    assert withheld is not None and withheld.version is not None
    assert records.withdraw_objection(**objection)
    shared = service.preview(request_id)
    assert shared is not None and shared.version not in (None, withheld.version)
    with pytest.raises(GatewayError) as info:
        service.record_inzage(
            request_id, inzage_date=date(2026, 1, 5), how="meeting", previewed=withheld.version
        )
    assert _code(info) == "OSO-E474" and "objection" in info.value.detail
    assert service.requests.find_inzage(school=OLD.code, request_pk=_old(pp, request_id).pk) is None
    assert records.record_objection(**objection, now=pp.clock())  # back as the parents saw it
    released = service.record_inzage(
        request_id, inzage_date=date(2026, 1, 5), how="meeting", previewed=withheld.version
    )
    assert released is not None and released.outcome == "queued"


def test_a_policy_may_require_the_inzage_to_name_its_version(tmp_path: Path) -> None:
    """Without the version, an inzage is of whatever is held when it is recorded: a school can
    require it (`inzage_requires_version`), for a request and for a push (E471)."""
    policy = SchoolPolicy(inzage_requires_version=True, push_requires_inzage=True)
    pp = make_pull_pair(tmp_path, policy=policy)
    try:
        request_id, data = _request(pp)
        service = pp.old.pull
        service.answer_with_dossier(request_id, data)
        with pytest.raises(GatewayError) as info:
            service.record_inzage(request_id, inzage_date=date(2026, 1, 5), how="meeting")
        assert _code(info) == "OSO-E471" and "--previewed" in info.value.detail
        assert (
            service.requests.find_inzage(school=OLD.code, request_pk=_old(pp, request_id).pk)
            is None
        )
        shown = service.preview(request_id)
        assert shown is not None and shown.version is not None
        released = service.record_inzage(
            request_id, inzage_date=date(2026, 1, 5), how="meeting", previewed=shown.version
        )
        assert released is not None and released.outcome == "queued"
        pupil = pupil_of(data).identifier
        with pytest.raises(GatewayError) as push:
            service.record_push_inzage(
                school=OLD, pupil_identifier=pupil, inzage_date=date(2026, 1, 5), how="paper"
            )
        assert _code(push) == "OSO-E471"
    finally:
        pp.close()


def test_a_waiver_names_no_previewed_version(tmp_path: Path) -> None:
    pp = make_pull_pair(tmp_path, policy=SchoolPolicy(inzage=INZAGE_OR_WAIVER))
    try:
        request_id, data = _request(pp)
        pp.old.pull.answer_with_dossier(request_id, data)
        shown = pp.old.pull.preview(request_id)
        assert shown is not None and shown.version is not None
        with pytest.raises(GatewayError) as info:
            pp.old.pull.record_inzage(
                request_id,
                inzage_date=None,
                how=None,
                waiver="niet bereikbaar",
                previewed=shown.version,
            )
        assert _code(info) == "OSO-E475"
        assert _old(pp, request_id).held
    finally:
        pp.close()


def test_the_logged_size_of_a_request_does_not_give_the_names_length(pp: PullPair) -> None:
    """The transfer log named a request's exact size: "Li" and "Vermeulen-Oosterhuis" differed
    by their length (a security review). The pull workflow's sizes are rounded up to 1 KiB."""
    data = dossier(pp.clock)
    ids = [  # two pupils (one would be refused as a second open request, E486)
        pp.new.pull.send_request(
            requesting=NEW, old_school=OLD, pupil=pupil_of(data, family_name=name, bsn=bsn)
        ).request_id
        for name, bsn in zip(("Li", "Vermeulen-Oosterhuis"), valid_bsns(2), strict=True)
    ]
    pp.drain()
    for gateway in (pp.new, pp.old):
        sizes = {
            e.event["message_id"]: e.event.get("size_bytes")
            for e in gateway.store.log_entries()
            if e.event.get("message_id") in ids and e.event.get("size_bytes")
        }
        assert set(sizes) == set(ids)
        assert len(set(sizes.values())) == 1 and int(next(iter(sizes.values()))) % 1024 == 0


@pytest.mark.parametrize("step", ["accept", "decline", "withdraw", "waiver"])
def test_a_step_sent_twice_at_once_is_done_once_and_both_answer_as_the_first(
    pp: PullPair, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two identical calls that both read the request before either stored the step: the
    second's store is refused (the first's stands) and it answers as the first did, not E474;
    one answer goes to the new school, one waiver is recorded."""
    request_id, _ = _request(pp)
    if step == "waiver":
        pp.old.pull.settings = replace(
            pp.old.pull.settings, default_policy=SchoolPolicy(inzage=INZAGE_OR_WAIVER)
        )
    service = pp.new.pull if step == "withdraw" else pp.old.pull
    side = m.REQUESTER if step == "withdraw" else m.HOLDER
    run = {
        "accept": lambda: service.accept(request_id, ready_by=date(2030, 1, 15)),
        "decline": lambda: service.decline(request_id, reason="other", text="moved abroad"),
        "withdraw": lambda: service.withdraw(request_id),
        "waiver": lambda: service.record_inzage(
            request_id, inzage_date=None, how=None, waiver="no show"
        ),
    }[step]
    as_read = service.find(request_id, side=side)  # before the first call stored anything
    first = run()
    real_find = service.find
    calls = iter([as_read])
    monkeypatch.setattr(service, "find", lambda *a, **k: next(calls, None) or real_find(*a, **k))
    outbox_before = len(service.store.list_messages(direction=m.OUT))
    second = run()
    assert second == first or (second.status, second.pk) == (first.status, first.pk)
    assert len(service.store.list_messages(direction=m.OUT)) == outbox_before  # no 2nd answer
    monkeypatch.setattr(service, "find", real_find)
    other = {
        "accept": lambda: service.accept(request_id, ready_by=date(2030, 2, 1)),
        "decline": lambda: service.decline(request_id, reason="unknown-pupil"),
        "withdraw": None,
        "waiver": lambda: service.record_inzage(
            request_id, inzage_date=date(2026, 1, 5), how="paper"
        ),
    }[step]
    if other is not None:
        with pytest.raises(GatewayError) as info:
            other()
        assert _code(info) == "OSO-E474"
