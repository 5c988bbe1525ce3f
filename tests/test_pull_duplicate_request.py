"""A second request for one pupil while the first is open is refused (OSO-E486, naming it).

A school system that retried a request without an Idempotency-Key (a timeout, a double click)
made a second request for the same pupil at the old school, which then had to decline it as
``duplicate-request``. Requests of ours now keep a keyed hash of the pupil's number: one that is
still open (sent or accepted, not past its deadline) from the same school to the same old school
refuses another, also when both arrive at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from gateway_pair import KEY
from pull_pair import NEW, OLD, PullPair, dossier, make_pull_pair, pupil_of
from sqlalchemy import text

from oso_gateway.errors import DuplicateRequest
from oso_gateway.store import Store
from oso_gateway.store import models as m
from oso_gateway.store.crypto import AtRestCipher
from oso_gateway.store.pull import PullStore, RequestRecord
from oso_gateway.transfer.pull.payloads import Pupil
from oso_gateway.transfer.schools import School

OTHER_OLD = School("02CD", "00")


@pytest.fixture
def pp(tmp_path: Path) -> Iterator[PullPair]:
    pair = make_pull_pair(tmp_path)
    yield pair
    pair.close()


def _send(pp: PullPair, pupil: Pupil, old_school: School = OLD) -> RequestRecord:
    return pp.new.pull.send_request(requesting=NEW, old_school=old_school, pupil=pupil)


def _refused(pp: PullPair, pupil: Pupil, old_school: School = OLD) -> DuplicateRequest:
    with pytest.raises(DuplicateRequest) as refused:
        _send(pp, pupil, old_school)
    return refused.value


def _sent_ids(pp: PullPair) -> list[str]:
    return [r.request_id for r in pp.new.pull.requests.list_requests(side=m.REQUESTER)]


def _stored_hashes(store: Store) -> dict[str, str | None]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT request_id, pupil_hmac FROM pull_requests")).all()
    return {str(request_id): hashed for request_id, hashed in rows}


def test_a_second_request_for_an_open_one_is_refused_naming_the_first(
    pp: PullPair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = dossier(pp.clock)
    pupil = pupil_of(data)
    assert pupil.bsn
    first = _send(pp, pupil)
    refused = _refused(pp, pupil)
    assert (refused.code, refused.http_status) == ("OSO-E486", 409)
    assert refused.original == first.request_id
    assert first.request_id in refused.detail and "01AB00" in refused.detail
    assert "00YY00" in refused.detail and "(sent)" in refused.detail
    for personal in (pupil.bsn, pupil.family_name, pupil.birth_date.isoformat()):
        assert personal not in str(refused)
    # the same pupil by number, whatever its name is spelt as now
    assert _refused(pp, pupil_of(data, family_name="Anders")).original == first.request_id
    # accepted by the old school: still open
    pp.drain()
    pp.old.pull.accept(first.request_id, ready_by=pp.clock().date() + timedelta(days=7))
    pp.drain()
    assert pp.new.pull.find(first.request_id, side=m.REQUESTER).status == "accepted"
    assert "(accepted)" in _refused(pp, pupil).detail
    # nothing was stored nor queued for the refused ones
    assert _sent_ids(pp) == [first.request_id]
    assert [r.message_id for r in pp.new.store.list_messages(direction=m.OUT)] == [first.request_id]
    # the store keeps a keyed hash of the number, never the number (nor a plain hash of it)
    [hashed] = _stored_hashes(pp.new.store).values()
    assert hashed == pp.new.pull.requests.request_pupil_hash(pupil.bsn)
    assert hashed != hashlib.sha256(pupil.bsn.encode()).hexdigest() and pupil.bsn not in hashed
    # no pupil data in the process log nor in the transfer log
    logged = "\n".join(r.getMessage() for r in caplog.records)
    entries = "\n".join(repr(e.event) for e in pp.new.store.log_entries())
    for personal in (pupil.bsn, pupil.family_name):
        assert personal not in logged and personal not in entries


def _close(pp: PullPair, how: str, first: RequestRecord, data: bytes) -> None:
    """Bring the request ``first`` (delivered to the old school) to a close, ``how``."""
    if how == "declined":
        pp.old.pull.decline(first.request_id, reason="not-our-pupil")
        pp.drain()
    elif how == "withdrawn":
        pp.new.pull.withdraw(first.request_id)
    elif how == "delivered":
        pp.old.pull.answer_with_dossier(first.request_id, data)
        pp.old.pull.record_inzage(first.request_id, inzage_date=date(2026, 1, 5), how="paper")
        pp.drain()
    else:  # past its deadline, not yet marked expired (no refresh has run): closed all the same
        with pp.new.store.engine.begin() as conn:
            conn.execute(
                text("UPDATE pull_requests SET deadline = :past WHERE id = :pk"),
                {"past": pp.clock() - timedelta(minutes=1), "pk": first.pk},
            )


@pytest.mark.parametrize("how", ["declined", "withdrawn", "delivered", "past its deadline"])
def test_once_the_first_is_closed_the_pupil_may_be_asked_for_again(pp: PullPair, how: str) -> None:
    data = dossier(pp.clock)
    pupil = pupil_of(data)
    first = _send(pp, pupil)
    pp.drain()
    _close(pp, how, first, data)
    status = pp.new.pull.requests.get(first.pk)
    assert status is not None
    assert status.status == {"past its deadline": "sent"}.get(how, how)
    second = _send(pp, pupil)
    assert second.request_id != first.request_id
    assert _sent_ids(pp) == [first.request_id, second.request_id]
    assert _refused(pp, pupil).original == second.request_id  # now the second is the open one


def test_another_pupil_or_another_old_school_is_a_request_of_its_own(pp: PullPair) -> None:
    pupil = pupil_of(dossier(pp.clock))
    other_pupil = pupil_of(dossier(pp.clock, seed=7))
    assert pupil.bsn != other_pupil.bsn
    first = _send(pp, pupil)
    to_other_school = _send(pp, pupil, OTHER_OLD)
    of_other_pupil = _send(pp, other_pupil)
    ids = [first.request_id, to_other_school.request_id, of_other_pupil.request_id]
    assert _sent_ids(pp) == ids
    assert _refused(pp, pupil, OTHER_OLD).original == to_other_school.request_id
    assert _refused(pp, other_pupil).original == of_other_pupil.request_id


def test_a_request_stored_before_the_hash_was_kept_is_not_matched(pp: PullPair) -> None:
    """Rows made before migration 0016 have no pupil hash (NULL): they are not found."""
    pupil = pupil_of(dossier(pp.clock))
    first = _send(pp, pupil)
    with pp.new.store.engine.begin() as conn:
        conn.execute(text("UPDATE pull_requests SET pupil_hmac = NULL"))
    second = _send(pp, pupil)
    assert second.request_id != first.request_id
    assert _refused(pp, pupil).original == second.request_id


def _both_at_once(
    pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[RequestRecord], list[Exception]]:
    """Two identical requests at once. Each waits, after its check before the storing
    transaction found nothing, until the other's found nothing too: only the check inside that
    transaction (under ``lock_pupil_requests``) can tell them apart."""
    before = threading.Barrier(2, timeout=30)
    read = PullStore.open_request

    def read_then_wait(self: PullStore, **kwargs: Any) -> RequestRecord | None:
        found = read(self, **kwargs)
        before.wait()
        return found

    monkeypatch.setattr(PullStore, "open_request", read_then_wait)
    pupil = pupil_of(dossier(pp.clock))
    made: list[RequestRecord] = []
    refused: list[Exception] = []

    def one() -> None:
        try:
            made.append(_send(pp, pupil))
        except Exception as exc:  # every outcome is asserted on
            refused.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return made, refused


def _one_made_one_refused(
    pp: PullPair, made: list[RequestRecord], refused: list[Exception]
) -> None:
    assert len(made) == 1 and len(refused) == 1, (made, refused)
    assert isinstance(refused[0], DuplicateRequest), refused[0]
    assert refused[0].original == made[0].request_id
    assert _sent_ids(pp) == [made[0].request_id]
    assert [r.message_id for r in pp.new.store.list_messages(direction=m.OUT)] == [
        made[0].request_id
    ]


def test_two_identical_requests_at_once_make_one_on_sqlite(
    pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, refused = _both_at_once(pp, monkeypatch)
    _one_made_one_refused(pp, made, refused)


@pytest.mark.postgres
def test_two_identical_requests_at_once_make_one_on_postgres(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import postgres_schema_engine

    from oso_gateway.store import upgrade

    with postgres_schema_engine(postgres_url, "r") as engine:
        upgrade(engine)
        pair = make_pull_pair(tmp_path, new_store=Store(engine, AtRestCipher(KEY)))
        try:
            made, refused = _both_at_once(pair, monkeypatch)
            _one_made_one_refused(pair, made, refused)
        finally:
            pair.close()


@pytest.mark.postgres
def test_requests_for_one_pupil_are_checked_one_transaction_at_a_time(
    postgres_url: str,
) -> None:
    """PostgreSQL reads what others committed only: the check inside the storing transaction
    waits for another one checking the same schools and pupil (``lock_pupil_requests``);
    another pupil, or another old school, does not wait."""
    import time

    from conftest import postgres_schema_engine
    from sqlalchemy.orm import Session

    from oso_gateway.store.pull import lock_pupil_requests

    with postgres_schema_engine(postgres_url, "q") as engine:
        order: list[str] = []

        def second(old_school: str, pupil: str, name: str) -> None:
            with Session(engine) as session, session.begin():
                lock_pupil_requests(session, "01AB00", old_school, pupil)
                order.append(name)

        with Session(engine) as first, first.begin():
            lock_pupil_requests(first, "01AB00", "00YY00", "hash-a")
            same = threading.Thread(target=second, args=("00YY00", "hash-a", "same"))
            others = [
                threading.Thread(target=second, args=("00YY00", "hash-b", "other pupil")),
                threading.Thread(target=second, args=("02CD00", "hash-a", "other school")),
            ]
            for thread in (same, *others):
                thread.start()
            for thread in others:
                thread.join(10)
            time.sleep(0.3)
            order.append("first commits")
        same.join(10)
        assert sorted(order[:2]) == ["other pupil", "other school"]
        assert order[2:] == ["first commits", "same"]
