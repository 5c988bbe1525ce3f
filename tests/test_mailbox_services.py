"""Inbox/outbox services on the in-memory gateway pair: duplicates, idempotency, transitions."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
from gateway_pair import RECEIVER_SCHOOL, GatewayPair
from sqlalchemy import func, select

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.errors import (
    DuplicateDossier,
    IdempotencyKeyReused,
    MessageNotFound,
    SchoolNotInScope,
    StatusConflict,
)
from oso_gateway.store import models as m
from oso_gateway.transfer.mailbox import (
    EVERY_SCHOOL,
    InboxService,
    ListFilter,
    OutboxService,
    Scope,
)
from oso_gateway.transfer.send import prepare_dossier


def outbox_service(pair: GatewayPair, *, window: timedelta = timedelta(days=7)) -> OutboxService:
    prepare = partial(prepare_dossier, directory=pair.directory, config=pair.sender_config)
    return OutboxService(
        pair.sender_store,
        clock=pair.clock,
        prepare=prepare,
        outbox=pair.outbox,
        duplicate_window=window,
    )


def dossier(seed: int = 1) -> bytes:
    return generate_dossier(overstap="POVO", seed=seed, now=pair_now())


def pair_now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


def count(store, table) -> int:  # type: ignore[no-untyped-def]
    with store.engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())


def test_the_same_dossier_for_the_same_school_is_reported_as_a_duplicate(
    pair: GatewayPair,
) -> None:
    service = outbox_service(pair)
    first = service.submit(EVERY_SCHOOL, dossier(), to=RECEIVER_SCHOOL)
    with pytest.raises(DuplicateDossier) as caught:
        service.submit(EVERY_SCHOOL, dossier(), to=RECEIVER_SCHOOL)
    assert caught.value.original == first.message["message_id"]
    assert count(pair.sender_store, m.Message.__table__) == 1
    # another dossier is not a duplicate; outside the window the same one is sent again
    service.submit(EVERY_SCHOOL, dossier(seed=2), to=RECEIVER_SCHOOL)
    pair.clock.advance(timedelta(days=8))
    service.submit(EVERY_SCHOOL, dossier(), to=RECEIVER_SCHOOL)
    assert count(pair.sender_store, m.Message.__table__) == 3


def test_idempotency_key_returns_the_same_message_and_refuses_another_body(
    pair: GatewayPair,
) -> None:
    service = outbox_service(pair, window=timedelta(0))
    scope = Scope(("00YY00",), client_id="c-test")
    first = service.submit(scope, dossier(), to=RECEIVER_SCHOOL, idempotency_key="k1")
    again = service.submit(scope, dossier(), to=RECEIVER_SCHOOL, idempotency_key="k1")
    assert first.created and not again.created
    assert again.message["message_id"] == first.message["message_id"]
    with pytest.raises(IdempotencyKeyReused):
        service.submit(scope, dossier(seed=2), to=RECEIVER_SCHOOL, idempotency_key="k1")
    assert count(pair.sender_store, m.Message.__table__) == 1


def test_a_client_cannot_send_for_a_school_outside_its_scope(pair: GatewayPair) -> None:
    service = outbox_service(pair)
    with pytest.raises(SchoolNotInScope):
        service.submit(Scope(("02CD00",), client_id="c-x"), dossier(), to=RECEIVER_SCHOOL)
    assert count(pair.sender_store, m.Message.__table__) == 0


def test_cancel_only_before_delivery_and_retry_only_after_failure(pair: GatewayPair) -> None:
    service = outbox_service(pair)
    queued = service.submit(EVERY_SCHOOL, dossier(), to=RECEIVER_SCHOOL).message["message_id"]
    with pytest.raises(StatusConflict):
        service.retry(EVERY_SCHOOL, queued)
    assert service.cancel(EVERY_SCHOOL, queued)["status"] == m.CANCELLED
    assert pair.outbox.run_once().attempts == 0  # a cancelled message is never sent
    sent = service.submit(EVERY_SCHOOL, dossier(seed=3), to=RECEIVER_SCHOOL).message["message_id"]
    pair.outbox.run_once()
    with pytest.raises(StatusConflict):
        service.cancel(EVERY_SCHOOL, sent)
    page = service.list(EVERY_SCHOOL, ListFilter(statuses=(m.CANCELLED,)))
    assert [i["message_id"] for i in page.items] == [queued]


def test_failed_message_is_retried_by_the_school(pair: GatewayPair) -> None:
    service = outbox_service(pair)
    pair.transport.down = True
    message_id = service.submit(EVERY_SCHOOL, dossier(), to=RECEIVER_SCHOOL).message["message_id"]
    for _ in range(6):
        pair.outbox.run_once()
        pair.clock.advance(timedelta(seconds=30))
    assert service.show(EVERY_SCHOOL, message_id)["status"] == m.FAILED
    pair.transport.down = False
    assert service.retry(EVERY_SCHOOL, message_id)["status"] == m.QUEUED
    pair.outbox.run_once()
    assert service.show(EVERY_SCHOOL, message_id)["status"] == m.DELIVERED


def _deliver_twice(pair: GatewayPair) -> list[str]:
    ids = []
    for _ in range(2):  # the same content under two MessageIDs (the duplicate check is off)
        ids.append(
            outbox_service(pair, window=timedelta(0))
            .submit(EVERY_SCHOOL, dossier(), to=RECEIVER_SCHOOL)
            .message["message_id"]
        )
        pair.outbox.run_once()
    return ids


def test_receiver_records_the_same_content_under_a_new_id_as_a_duplicate(
    pair: GatewayPair,
) -> None:
    pair.inbound.duplicate_window = timedelta(days=30)
    first, second = _deliver_twice(pair)
    inbox = InboxService(pair.receiver_store, clock=pair.clock)
    assert inbox.show(EVERY_SCHOOL, second)["status"] == m.DUPLICATE
    assert inbox.show(EVERY_SCHOOL, second)["duplicate_of"] == first
    assert count(pair.receiver_store, m.Dossier.__table__) == 1  # no second copy
    assert inbox.export(EVERY_SCHOOL, second) == inbox.export(EVERY_SCHOOL, first)
    items = {i["message_id"]: i for i in inbox.list(EVERY_SCHOOL, ListFilter()).items}
    assert {k: i["status"] for k, i in items.items()} == {first: m.IMPORTED, second: m.DUPLICATE}
    # the list names the first copy too (only the detail did: found by a LAS walkthrough)
    assert items[second]["duplicate_of"] == first and "duplicate_of" not in items[first]
    # the sender got its receipt for both
    sent = outbox_service(pair).list(EVERY_SCHOOL, ListFilter()).items
    assert {i["status"] for i in sent} == {m.DELIVERED}


def test_receiver_imports_again_when_duplicate_recording_is_off(pair: GatewayPair) -> None:
    pair.inbound.duplicate_window = None
    _deliver_twice(pair)
    assert count(pair.receiver_store, m.Dossier.__table__) == 2


def test_inbox_transitions_refuse_what_the_status_does_not_allow(pair: GatewayPair) -> None:
    (first, _second) = _deliver_twice(pair)
    inbox = InboxService(pair.receiver_store, clock=pair.clock)
    with pytest.raises(MessageNotFound):
        inbox.acknowledge(Scope(("02CD00",)), first)
    inbox.decline(EVERY_SCHOOL, first, reason="not our pupil")
    with pytest.raises(StatusConflict):
        inbox.acknowledge(EVERY_SCHOOL, first)


def test_an_operator_names_a_message_by_a_unique_start_of_its_id(pair: GatewayPair) -> None:
    """As ``log show`` takes it (``outbox retry`` wanted the full id: an operator's finding)."""
    from oso_gateway.transfer import wire

    ids = [f"urn:uuid:abcd{n}-0000-4000-8000-000000000000" for n in ("1111", "2222")]
    for message_id in ids:
        pair.sender_store.enqueue_outbound(
            message_id=message_id,
            action=wire.ACTION_DELIVER,
            payload=b"<d/>",
            payload_digest="ab" * 32,
            now=pair.clock(),
            our_school="00YY00",
            counterpart_school="01AB00",
        )
    outbox = outbox_service(pair)
    assert outbox.resolve(EVERY_SCHOOL, "abcd1111") == ids[0]
    assert outbox.resolve(Scope(("00YY00",)), " URN:UUID:ABCD2 ") == ids[1]
    assert outbox.resolve(EVERY_SCHOOL, ids[0]) == ids[0]  # a full id as it is
    for scope, text, why in (
        (EVERY_SCHOOL, "abcd", "more than one message"),
        (EVERY_SCHOOL, "abcd3", "no message"),
        (Scope(("01AB00",)), "abcd1111", "no message"),  # another school's: not found
    ):
        with pytest.raises(MessageNotFound, match=why):
            outbox.resolve(scope, text)
    # the inbox is the other direction: the outbox's ids are not found there
    with pytest.raises(MessageNotFound):
        InboxService(pair.sender_store, clock=pair.clock).resolve(EVERY_SCHOOL, "abcd1111")
    # fewer than 4 characters, or not a UUID's characters: left to find (which wants the id)
    assert outbox.resolve(EVERY_SCHOOL, "abc") == "abc"
    with pytest.raises(MessageNotFound):
        outbox.show(EVERY_SCHOOL, outbox.resolve(EVERY_SCHOOL, "abc"))
