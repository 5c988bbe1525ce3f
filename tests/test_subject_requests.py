"""Subject access and erasure find the pull workflow's request records that name the pupil, on
both sides: a closed one is erased on request (its facts, decline text and the parents' view), an
open one is listed and kept, another pupil's is untouched. Real SQLite stores behind the CLI."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gateway_pair import KEY, RECEIVER_OIN, SENDER_OIN
from pull_pair import NEW, OLD, PullPair, dossier, make_pull_pair, pupil_of
from store_support import payload_blobs

from oso_gateway.cli import main
from oso_gateway.errors import RequestPurged
from oso_gateway.store import models as m
from oso_gateway.store.logchain import verify_chain


@pytest.fixture
def pp(tmp_path: Path) -> Iterator[PullPair]:
    pair = make_pull_pair(tmp_path)
    yield pair
    pair.close()


def _config(tmp_path: Path, oin: str) -> Path:
    """A CLI configuration over the store of one side of the pair (same storage key)."""
    config = tmp_path / f"{oin}.toml"
    key = base64.b64encode(KEY).decode()
    config.write_text(f'data_dir = "{(tmp_path / oin).as_posix()}"\n[storage]\nkey = "{key}"\n')
    return config


def _subject(config: Path, bsn: str, *args: str, code: int = 0) -> dict[str, Any]:
    result = CliRunner().invoke(
        main, ["subject", *args, "--config", str(config), "--bsn", "-", "--json"], input=bsn + "\n"
    )
    assert result.exit_code == code, result.output
    value: dict[str, Any] = json.loads(result.output)
    return value


def _send(pp: PullPair, data: bytes) -> str:
    record = pp.new.pull.send_request(requesting=NEW, old_school=OLD, pupil=pupil_of(data))
    pp.drain()
    return record.request_id


def _deliver(pp: PullPair, data: bytes) -> str:
    request_id = _send(pp, data)
    pp.old.pull.answer_with_dossier(request_id, data)
    pp.old.pull.record_inzage(
        request_id, inzage_date=date(2026, 1, 5), how="paper", zienswijze="Wij zijn het eens."
    )
    pp.drain()
    pp.old.pull.refresh()
    return request_id


def test_subject_erase_erases_the_closed_requests_naming_the_pupil_and_keeps_open_ones(
    tmp_path: Path, pp: PullPair
) -> None:
    mine, other = dossier(pp.clock, seed=11), dossier(pp.clock, seed=12)
    bsn, other_bsn = pupil_of(mine).bsn, pupil_of(other).bsn
    assert bsn and other_bsn and bsn != other_bsn
    delivered = _deliver(pp, mine)
    declined = _send(pp, mine)  # (declined before the next: one open request a pupil, E486)
    pp.old.pull.decline(declined, reason="other", text="Leerling onbekend bij ons.")
    pp.drain()
    still_open = _send(pp, mine)
    theirs = _deliver(pp, other)
    new, old = _config(tmp_path, RECEIVER_OIN), _config(tmp_path, SENDER_OIN)

    access = _subject(new, bsn, "access")
    listed = {r["request_id"]: r for r in access["requests"]}
    assert set(listed) == {delivered, still_open, declined}
    assert listed[delivered]["status"] == "delivered" and listed[delivered]["purge_due"]
    assert listed[still_open]["purge_due"] is None and listed[still_open]["side"] == "sent"
    assert len(access["dossiers"]) == 1

    dry = _subject(new, bsn, "erase", "--dry-run")
    assert sorted(dry["would_erase_requests"]) == sorted([delivered, declined])
    [kept_item] = dry["kept"]
    assert {k: kept_item[k] for k in ("id", "what", "side", "status")} == {
        "id": still_open,
        "what": "request",
        "side": "sent",
        "status": "sent",
    }
    assert "withdraw" in kept_item["why"]
    assert _subject(new, bsn, "access")["requests"]  # a dry run erased nothing

    # something was kept (the open request): exit status 3, a partial erasure
    erased = _subject(new, bsn, "erase", "--yes", code=3)
    assert sorted(erased["erased_requests"]) == sorted([delivered, declined])
    assert len(erased["erased"]) == 1  # the delivered dossier
    assert [k["id"] for k in erased["kept"]] == [still_open]
    requests = pp.new.pull.requests
    for request_id in (delivered, declined):
        record = requests.find(side=m.REQUESTER, request_id=request_id)
        assert record is not None and record.status in ("delivered", "declined")  # a tombstone
        with pytest.raises(RequestPurged):
            requests.pupil(record.pk)
        assert requests.decline_text(record.pk) is None
        assert [e.code for e in requests.events(record.pk)][-1] == "purged"
    kept = requests.find(side=m.REQUESTER, request_id=still_open)
    assert kept is not None and requests.pupil(kept.pk)["bsn"] == bsn
    # the pupil's keyed hash (the duplicate check's, E486) goes with the erased facts
    with pp.new.store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT request_id, pupil_hmac FROM pull_requests").all()
    hashes = {str(request_id): hashed for request_id, hashed in rows}
    assert hashes[delivered] is None and hashes[declined] is None
    assert hashes[still_open] == requests.request_pupil_hash(bsn)
    other_record = requests.find(side=m.REQUESTER, request_id=theirs)
    assert other_record is not None and requests.pupil(other_record.pk)["bsn"] == other_bsn
    after = _subject(new, bsn, "access")
    assert [r["request_id"] for r in after["requests"]] == [still_open]
    entries = pp.new.store.log_entries()
    assert verify_chain(entries).ok
    purged = [e.event for e in entries if e.event.get("status") == "purged"]
    assert [e["operation"] for e in purged].count("erasure.request_record") == 2
    assert not any(bsn in json.dumps(e.event) for e in entries)

    # The old school's gateway holds the request it declined and the one it delivered: the
    # parents' view recorded there goes with the delivered one; the open one is kept.
    old_dry = _subject(old, bsn, "erase", "--dry-run")
    assert sorted(old_dry["would_erase_requests"]) == sorted([delivered, declined])
    assert [(k["id"], k["side"], k["status"]) for k in old_dry["kept"]] == [
        (still_open, "received", "received")
    ]
    assert "decline" in old_dry["kept"][0]["why"]
    assert old_dry["would_erase"] == []  # no dossier received there, none left to send
    _subject(old, bsn, "erase", "--yes", code=3)
    with pp.old.store.engine.connect() as conn:
        views = conn.exec_driver_sql(
            "SELECT zienswijze_ciphertext FROM inzage_records i JOIN pull_requests p "
            "ON p.id = i.request_pk WHERE p.request_id = ?",
            (delivered,),
        ).all()
    assert views == [(None,)]


def test_an_overdue_request_is_erased_and_reading_it_writes_nothing(pp: PullPair) -> None:
    """A sent request past its deadline waits for nothing more: subject access shows it
    expired and an erasure expires (under its row lock) and erases it; access and a dry run
    write nothing (found by the review: they expired it in the database)."""
    from datetime import timedelta

    from oso_gateway.store.lifecycle import Lifecycle
    from oso_gateway.transfer.lifecycle import erase_subject, subject_data

    data = dossier(pp.clock, seed=13)
    bsn = pupil_of(data).bsn
    assert bsn
    request_id = _send(pp, data)
    store = pp.new.store
    now = pp.clock()
    found = subject_data(store, bsn, now=now)
    assert [r.request_id for r in found.open_requests] == [request_id] and not found.closed_requests
    later = now + timedelta(days=pp.new.pull.settings.expire_days + 1)
    found = subject_data(store, bsn, now=later)
    assert [(r.request_id, found.status(r)) for r in found.closed_requests] == [
        (request_id, "expired")
    ]
    record = pp.new.pull.requests.find(side=m.REQUESTER, request_id=request_id)
    assert record is not None and record.status == "sent"  # looking wrote nothing
    result = erase_subject(Lifecycle(store.engine, store.cipher), found, now=later)
    assert result.total == 1
    record = pp.new.pull.requests.find(side=m.REQUESTER, request_id=request_id)
    assert record is not None and (record.status, record.purged) == ("expired", True)
    assert [e.status for e in pp.new.pull.requests.events(record.pk)][-2:] == [
        "expired",
        "expired",
    ]
    assert subject_data(store, bsn, now=later).requests == []


def test_an_answer_that_arrives_after_the_look_up_is_not_overwritten(pp: PullPair) -> None:
    """Looked up as overdue (so to be expired and erased), then declined by the old school
    before the erasure runs: the erasure, with its stale view, erases it as declined, and does
    not overwrite the decline with "expired" (the expiry is decided again under the row lock)."""
    from datetime import timedelta

    from oso_gateway.store.lifecycle import Lifecycle
    from oso_gateway.transfer.lifecycle import erase_subject, subject_data

    data = dossier(pp.clock, seed=14)
    bsn = pupil_of(data).bsn
    assert bsn
    request_id = _send(pp, data)
    store = pp.new.store
    later = pp.clock() + timedelta(days=pp.new.pull.settings.expire_days + 1)
    found = subject_data(store, bsn, now=later)
    assert [found.status(r) for r in found.closed_requests] == ["expired"]
    pp.old.pull.decline(request_id, reason="not-our-pupil")
    pp.drain()
    result = erase_subject(Lifecycle(store.engine, store.cipher), found, now=later)
    assert result.total == 1
    record = pp.new.pull.requests.find(side=m.REQUESTER, request_id=request_id)
    assert record is not None and (record.status, record.purged) == ("declined", True)
    assert "expired" not in [e.status for e in pp.new.pull.requests.events(record.pk)]


def test_an_unreadable_request_row_stops_the_look_up_and_is_named(
    tmp_path: Path, pp: PullPair
) -> None:
    """Fail closed: a request whose facts do not decrypt stops access and erasure (else an
    erasure might report a pupil erased while that row names them), with the row named so an
    operator can find it, and no personal data."""
    data = dossier(pp.clock, seed=15)
    bsn = pupil_of(data).bsn
    assert bsn
    request_id = _send(pp, data)
    with pp.new.store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE pull_requests SET pupil_ciphertext = ? WHERE request_id = ?",
            (b"\x01" * 64, request_id),
        )
    result = CliRunner().invoke(
        main,
        ["subject", "erase", "--config", str(_config(tmp_path, RECEIVER_OIN)), "--bsn", "-"],
        input=bsn + "\n",
    )
    assert result.exit_code == 1
    assert "OSO-E504" in result.output and request_id in result.output
    assert bsn not in result.output


def test_without_requests_the_erase_answer_keeps_its_shape(tmp_path: Path, pp: PullPair) -> None:
    answer = _subject(_config(tmp_path, RECEIVER_OIN), "123456782", "erase", "--yes")
    assert answer == {"erased": []}


def _push_inzage(pp: PullPair, data: bytes, **texts: str) -> None:
    pp.old.pull.record_push_inzage(
        school=OLD,
        pupil_identifier=pupil_of(data).identifier,
        inzage_date=date(2026, 1, 5),
        how="meeting",
        **texts,  # type: ignore[arg-type]
    )


def _push_texts(pp: PullPair) -> list[tuple[bool, bool, bool]]:
    """(view kept, waiver kept, record says a view was given) per push inzage row."""
    with pp.old.store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT zienswijze_ciphertext, waiver_ciphertext, zienswijze FROM inzage_records "
            "WHERE request_pk IS NULL ORDER BY id"
        ).all()
    return [(view is not None, waiver is not None, bool(given)) for view, waiver, given in rows]


def test_subject_erase_erases_the_parents_view_recorded_for_a_push_of_the_pupil(
    tmp_path: Path, pp: PullPair
) -> None:
    mine, other = dossier(pp.clock, seed=21), dossier(pp.clock, seed=22)
    _push_inzage(pp, mine, zienswijze="Wij willen dat de toetsen niet meegaan.")
    _push_inzage(pp, other, zienswijze="Akkoord.")
    bsn = pupil_of(mine).bsn
    assert bsn
    old = _config(tmp_path, SENDER_OIN)
    dry = _subject(old, bsn, "erase", "--dry-run")
    assert dry == {"would_erase": [], "would_erase_push_inzage_texts": 1}
    assert _subject(old, bsn, "erase", "--yes") == {"erased": [], "erased_push_inzage_texts": 1}
    assert _push_texts(pp) == [(False, False, True), (True, False, True)]  # the record stays
    entries = pp.old.store.log_entries()
    assert verify_chain(entries).ok
    operations = [e.event.get("operation") for e in entries if e.event.get("status") == "purged"]
    assert operations == ["erasure.push_inzage_text"]
    assert _subject(old, bsn, "erase", "--yes") == {"erased": []}  # nothing left to erase
    # the push's gate still finds the inzage: the record, not its text, is what it needs
    assert pp.old.pull.requests.find_inzage(
        school=OLD.code, pupil_identifier=pupil_of(mine).identifier
    )


def test_the_retention_purge_removes_a_push_inzage_record_after_the_request_period(
    tmp_path: Path,
) -> None:
    """Its texts went after `requests_days`, but the record (the pupil's keyed hash, school,
    date, how) was kept without end (a privacy walkthrough): now the whole record goes, and a
    later push needs a new inzage."""
    from datetime import timedelta

    from oso_gateway.config import INZAGE_OR_WAIVER, RetentionSettings, SchoolPolicy
    from oso_gateway.store.lifecycle import PUSH_INZAGE_RECORD, Lifecycle
    from oso_gateway.transfer.lifecycle import purge

    pp = make_pull_pair(tmp_path / "w", policy=SchoolPolicy(inzage=INZAGE_OR_WAIVER))
    pp.old.pull.record_push_inzage(
        school=OLD,
        pupil_identifier=pupil_of(dossier(pp.clock, seed=23)).identifier,
        inzage_date=None,
        how=None,
        waiver="Ouders onbereikbaar.",
    )
    store = pp.old.store
    lifecycle = Lifecycle(store.engine, store.cipher)
    policy = RetentionSettings(requests_days=30)
    soon = purge(lifecycle, policy, now=pp.clock() + timedelta(days=29))
    assert soon.purged[PUSH_INZAGE_RECORD] == [] and _push_texts(pp) == [(False, True, False)]
    later = purge(lifecycle, policy, now=pp.clock() + timedelta(days=31))
    assert len(later.purged[PUSH_INZAGE_RECORD]) == 1
    assert _push_texts(pp) == []  # the record is gone
    operations = [e.event.get("operation") for e in store.log_entries() if e.event.get("operation")]
    assert "retention.push_inzage_record" in operations
    pp.close()


def test_a_new_inzage_after_the_last_ones_record_was_purged_lets_a_push_go(
    tmp_path: Path,
) -> None:
    """On SQLite the next inzage record may get the purged one's id; the push that went under
    the purged one named that id, and the new inzage's push was refused as made already
    (E471: a review). The purge now unnames it."""
    from datetime import date, timedelta

    from sqlalchemy import func, select

    from oso_gateway.config import RetentionSettings, SchoolPolicy
    from oso_gateway.store import models as m
    from oso_gateway.store.lifecycle import PUSH_INZAGE_RECORD, Lifecycle
    from oso_gateway.transfer.lifecycle import purge

    pp = make_pull_pair(tmp_path / "w", policy=SchoolPolicy(push_requires_inzage=True))
    data = dossier(pp.clock, seed=29)
    pupil = pupil_of(data).identifier

    def inzage() -> int:
        pp.old.pull.record_push_inzage(
            school=OLD, pupil_identifier=pupil, inzage_date=date(2026, 1, 5), how="paper"
        )
        with pp.old.store.engine.connect() as conn:
            return int(conn.execute(select(func.max(m.InzageRecord.id))).scalar_one())

    first = inzage()
    pp.push(data)
    store = pp.old.store
    later = purge(
        Lifecycle(store.engine, store.cipher),
        RetentionSettings(requests_days=30),
        now=pp.clock() + timedelta(days=31),
    )
    assert len(later.purged[PUSH_INZAGE_RECORD]) == 1
    pp.clock.advance(timedelta(days=32))
    assert inzage() == first  # SQLite gave the new record the purged one's id
    pp.push(dossier(pp.clock, seed=29))  # not refused as made on it already
    pp.close()


def test_an_outgoing_dossier_is_kept_while_on_its_way_and_erased_once_it_failed(
    tmp_path: Path, pp: PullPair
) -> None:
    """At the sending school: a push still on its way is listed and kept (exit status 3); once
    it failed for good, its content is erased like the retention purge of a failed message."""

    data = dossier(pp.clock, seed=16)
    bsn = pupil_of(data).bsn
    assert bsn
    prepared = pp.push(data)
    old = _config(tmp_path, SENDER_OIN)
    access = _subject(old, bsn, "access")
    assert [(o["message_id"], o["status"]) for o in access["outgoing"]] == [
        (prepared.message_id, "queued")
    ]
    kept = _subject(old, bsn, "erase", "--yes", code=3)
    assert kept["erased"] == [] and [k["id"] for k in kept["kept"]] == [prepared.message_id]
    assert "outbox cancel" in kept["kept"][0]["why"]
    pp.fail_outbox(pp.old)
    message = pp.old.store.find_message(m.OUT, prepared.message_id)
    assert message is not None and message.status == "failed"
    erased = _subject(old, bsn, "erase", "--yes")
    assert erased == {"erased": [prepared.message_id]}
    assert payload_blobs(pp.old.store.engine, prepared.message_id) == 0
    assert _subject(old, bsn, "access")["outgoing"] == []
    operations = [e.event.get("operation") for e in pp.old.store.log_entries()]
    assert "erasure.rejected_failed" in operations


def test_a_failed_dossier_retried_after_the_look_up_is_not_erased(pp: PullPair) -> None:
    """Seen failed, then retried by an operator before the erasure runs: it is on its way again
    and keeps its payload (the purge of a failed message checks the status again)."""

    from oso_gateway.store.lifecycle import Lifecycle
    from oso_gateway.store.mailbox import Mailbox
    from oso_gateway.transfer.lifecycle import erase_subject, subject_data

    data = dossier(pp.clock, seed=17)
    bsn = pupil_of(data).bsn
    assert bsn
    prepared = pp.push(data)
    pp.fail_outbox(pp.old)
    store = pp.old.store
    found = subject_data(store, bsn, now=pp.clock())
    assert [o.message_id for o in found.outgoing_failed] == [prepared.message_id]
    message = store.find_message(m.OUT, prepared.message_id)
    assert message is not None
    Mailbox(store).retry(message.pk, now=pp.clock())
    result = erase_subject(Lifecycle(store.engine, store.cipher), found, now=pp.clock())
    assert result.total == 0
    pp.old.drain()
    pp.new.drain()
    assert len(pp.new.store.find_dossiers()) == 1  # it still went, whole


def test_a_failed_request_message_with_the_pupils_facts_is_erased_with_the_request(
    tmp_path: Path, pp: PullPair
) -> None:
    """The request message itself carries the pupil's facts: when it failed to go out and the
    request is past its deadline, an erasure erases both, and the message can no longer be
    retried (found by the second review: the facts stayed in the outbox, retryable)."""

    from oso_gateway.store.mailbox import Mailbox, TransitionRefused

    data = dossier(pp.clock, seed=18)
    bsn = pupil_of(data).bsn
    assert bsn
    record = pp.new.pull.send_request(requesting=NEW, old_school=OLD, pupil=pupil_of(data))
    pp.fail_outbox(pp.new)
    store = pp.new.store
    message = store.find_message(m.OUT, record.request_id)
    assert message is not None and message.status == "failed"
    new = _config(tmp_path, RECEIVER_OIN)
    access = _subject(new, bsn, "access")
    assert [(o["message_id"], o["status"]) for o in access["outgoing"]] == [
        (record.request_id, "failed")
    ]
    # the request is open (kept); its failed message goes: it cannot reach anyone any more
    first = _subject(new, bsn, "erase", "--yes", code=3)
    assert first["erased"] == [record.request_id]
    assert [(k["id"], k["what"]) for k in first["kept"]] == [(record.request_id, "request")]
    with pytest.raises(TransitionRefused):
        Mailbox(store).retry(message.pk, now=pp.clock())
    assert payload_blobs(store.engine, record.request_id) == 0


def test_an_erasure_reports_what_changed_after_its_look_up(
    tmp_path: Path, pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen failed, then retried before the erasure ran: the erasure leaves it, and says so
    (exit status 3, in ``kept``), instead of answering as if the pupil were all erased."""

    from oso_gateway.store.mailbox import Mailbox
    from oso_gateway.transfer import lifecycle

    data = dossier(pp.clock, seed=19)
    bsn = pupil_of(data).bsn
    assert bsn
    prepared = pp.push(data)
    pp.fail_outbox(pp.old)
    store = pp.old.store
    message = store.find_message(m.OUT, prepared.message_id)
    assert message is not None and message.status == "failed"
    real = lifecycle.erase_subject

    def retried_first(*args: Any, **kwargs: Any) -> Any:
        Mailbox(store).retry(message.pk, now=pp.clock())  # an operator, meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "erase_subject", retried_first)
    answer = _subject(_config(tmp_path, SENDER_OIN), bsn, "erase", "--yes", code=3)
    assert answer["erased"] == []
    assert [(k["id"], k["status"]) for k in answer["kept"]] == [(prepared.message_id, "queued")]


def test_a_purge_between_reading_a_request_and_its_pupil_gives_the_tombstone(
    pp: PullPair,
) -> None:
    """``request show`` / GET /requests/{id} read the record, then its pupil: a purge landing
    in between answers the tombstone (no pupil), not OSO-E543."""
    from oso_gateway.store.lifecycle import Lifecycle
    from oso_gateway.transfer.lifecycle import erase_subject, subject_data

    data = dossier(pp.clock, seed=20)
    bsn = pupil_of(data).bsn
    assert bsn
    request_id = _send(pp, data)
    pp.new.pull.withdraw(request_id)
    requests = pp.new.pull.requests
    record = requests.find(side=m.REQUESTER, request_id=request_id)
    assert record is not None and not record.purged
    store = pp.new.store
    found = subject_data(store, bsn, now=pp.clock())
    erase_subject(Lifecycle(store.engine, store.cipher), found, now=pp.clock())
    assert requests.pupil_or_none(record.pk) is None  # the record read before the purge
    with pytest.raises(RequestPurged):
        requests.pupil(record.pk)


def test_an_answer_on_its_way_does_not_hold_the_erasure_up(tmp_path: Path, pp: PullPair) -> None:
    """A withdrawal still queued to the old school is not listed as kept, with advice to cancel
    it (that would leave the request open there, with the pupil's facts): it goes, and the
    closed request is erased (found by the third review)."""
    data = dossier(pp.clock, seed=24)
    bsn = pupil_of(data).bsn
    assert bsn
    request_id = _send(pp, data)
    pp.new.pull.withdraw(request_id)  # its answer waits in the outbox
    dry = _subject(_config(tmp_path, RECEIVER_OIN), bsn, "erase", "--dry-run")
    assert dry == {"would_erase": [], "would_erase_requests": [request_id]}  # no "cancel it"
    answer = _subject(_config(tmp_path, RECEIVER_OIN), bsn, "erase", "--yes")
    assert answer == {"erased": [], "erased_requests": [request_id]}
    pp.drain()
    assert _old_status(pp, request_id) == "withdrawn"


def _old_status(pp: PullPair, request_id: str) -> str:
    record = pp.old.pull.requests.find(side=m.HOLDER, request_id=request_id)
    assert record is not None
    return record.status


def test_another_peers_message_with_the_same_request_id_is_not_the_pupils(
    pp: PullPair,
) -> None:
    """A request id is chosen by the peer that sends the request: a message relating to the same
    id with another peer (or for another of our schools) is not listed as the pupil's."""
    from oso_gateway.transfer.lifecycle import subject_data
    from oso_gateway.transfer.pull.payloads import ACTION_ANSWER

    data = dossier(pp.clock, seed=25)
    bsn = pupil_of(data).bsn
    assert bsn
    request_id = _send(pp, data)
    pp.old.pull.decline(request_id, reason="not-our-pupil")  # its answer is queued
    store = pp.old.store
    store.enqueue_outbound(
        message_id="urn:uuid:00000000-0000-4000-8000-0000000000aa",
        action=ACTION_ANSWER,
        payload=b"<another-pupils-answer/>",
        payload_digest="0" * 64,
        now=pp.clock(),
        relates_to=request_id,
        counterpart_oin="00000001999999999999",
        our_school=OLD.code,
    )
    found = subject_data(store, bsn, now=pp.clock())
    assert [o.action for o in found.outgoing] == [ACTION_ANSWER]  # our decline only
    assert found.outgoing[0].message_id != "urn:uuid:00000000-0000-4000-8000-0000000000aa"


def test_a_dossier_that_arrives_during_the_erasure_is_reported(
    tmp_path: Path, pp: PullPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request was open at the look-up; its dossier is imported while the erasure runs:
    the answer lists the new dossier and the now delivered request under kept (exit 3), as
    changed since the look-up, instead of reporting the pupil erased."""
    from oso_gateway.transfer import lifecycle

    data = dossier(pp.clock, seed=26)
    bsn = pupil_of(data).bsn
    assert bsn
    earlier = _send(pp, data)
    pp.new.pull.withdraw(earlier)  # closed: something to erase at the look-up
    request_id = _send(pp, data)
    pp.old.pull.answer_with_dossier(request_id, data)  # held until the inzage
    pp.old.pull.record_inzage(request_id, inzage_date=date(2026, 1, 5), how="meeting")  # queued
    real = lifecycle.erase_subject

    def arrives_first(*args: Any, **kwargs: Any) -> Any:
        pp.drain()  # the acceptance and the dossier arrive at the new school meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "erase_subject", arrives_first)
    answer = _subject(_config(tmp_path, RECEIVER_OIN), bsn, "erase", "--yes", code=3)
    assert answer["erased_requests"] == [earlier]
    changed = {(k["what"], k["id"]) for k in answer["kept"]}
    assert ("request", request_id) in changed
    assert any(what == "received_dossier" for what, _id in changed)
    assert all("changed since the look-up" in k["why"] for k in answer["kept"])


def test_subject_access_at_the_old_school_lists_its_records_of_the_pupil(
    tmp_path: Path, pp: PullPair
) -> None:
    """What was shared with whom and when, the parents' objections and the inzage of a request
    are held about the pupil too; subject access left them out (a privacy walkthrough)."""
    from oso_gateway.dossier.disclosure import pupil_number
    from oso_gateway.security.xmlparse import parse_xml
    from oso_gateway.store.disclosures import PrivacyRecords

    data = dossier(pp.clock)
    bsn = pupil_number(parse_xml(data).getroot())
    assert bsn is not None
    records = PrivacyRecords(pp.old.store.engine, pp.old.store.cipher)
    assert records.record_objection(
        school=OLD.code, pupil_number=bsn, category="verzuim", now=pp.clock()
    )
    request_id = _deliver(pp, data)
    found = _subject(_config(tmp_path, SENDER_OIN), bsn, "access")
    [shared] = found["disclosures"]
    assert shared["recipient_school"] == NEW.code and shared["delivered_at"] is not None
    assert {"category": "verzuim", "reason": "objection"} in shared["withheld"]
    assert "verzuim" not in shared["sent"] and shared["sent"]
    assert [(o["school"], o["category"]) for o in found["objections"]] == [(OLD.code, "verzuim")]
    [inzage] = found["request_inzage"]
    assert (inzage["request_id"], inzage["how"], inzage["view_given"]) == (
        request_id,
        "paper",
        True,
    )
    assert "Wij zijn het eens" not in json.dumps(found)  # whether, never the parents' text
    # another pupil: none of it
    other = _subject(_config(tmp_path, SENDER_OIN), "111222333", "access")
    assert (other["disclosures"], other["objections"], other["request_inzage"]) == ([], [], [])
