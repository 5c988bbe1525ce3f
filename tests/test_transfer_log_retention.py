"""The transfer log's own retention (``retention.transfer_log_days``): pruning a prefix of the
hash chain, on SQLite and PostgreSQL, with its archive and its verification.

Events older than the period leave the database in batches; each batch records the new base (the
last pruned event) and logs the step in the chain itself, so ``log verify`` checks the kept chain
from there, refuses a prefix removed any other way, and with the archives checks the whole chain
and every anchor again.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Connection, Engine, delete, insert, text, update
from sqlalchemy.exc import DBAPIError

from oso_gateway.cli import main
from oso_gateway.config import RetentionSettings, load_settings
from oso_gateway.errors import LogChainBroken, OutputUnwritable
from oso_gateway.security.keys import load_certificate, load_private_key
from oso_gateway.security.wss import Identity
from oso_gateway.store import Store, create_store_engine, upgrade
from oso_gateway.store import models as m
from oso_gateway.store.lifecycle import Lifecycle
from oso_gateway.store.logchain import (
    BASE,
    GENESIS,
    Anchor,
    StoredEvent,
    chain,
    make_anchor,
    make_event,
)
from oso_gateway.store.translog import PRUNE_OPERATION
from oso_gateway.transfer.auditlog import (
    BaseSigner,
    chain_start,
    merge_segments,
    read_anchors,
    read_export,
    read_log,
    verify_log,
)
from oso_gateway.transfer.lifecycle import LOG_PRUNE_BATCH, LogPrune, prune_log

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "certs" / "dev"
OIN = "00000001000000000001"
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
#: the log is kept 30 days; "now" is 40 days after the first event
POLICY = replace(
    RetentionSettings(),
    received_acknowledged_days=10,
    received_unfetched_days=10,
    outbound_undelivered_days=10,
    rejected_failed_days=10,
    requests_days=10,
    transfer_log_days=30,
)
NOW = T0 + timedelta(days=40)
CERT = load_certificate((DEV / f"gateway-{OIN}.crt.pem").read_bytes())
KEY = load_private_key((DEV / f"gateway-{OIN}.key.pem").read_bytes())
IDENTITY = Identity(oin=OIN, private_key=KEY, certificate=CERT)


def _append_days(store: Store, days: range) -> None:
    """One event a day, appended on that day (``at`` and the stored time alike)."""
    for day in days:
        when = T0 + timedelta(days=day)
        event = make_event(at=when, kind="system", status="done", operation="test.tick", count=day)
        store.append_log([event], now=when)


def _anchor(store: Store) -> Anchor:
    seq, head = store.log_head()
    return make_anchor(seq=seq, head_hash=head, now=NOW, key=KEY, certificate=CERT)


def _verify(store: Store, anchors: list[Anchor]) -> tuple[bool, str, int]:
    report = verify_log(store.log_entries(), anchors, [CERT], base=store.log_base())
    return report.ok, report.reason, report.base_seq


def _bases(anchors: list[Anchor]) -> list[int]:
    """The seqs the base anchors name."""
    return [a.seq for a in anchors if a.kind == BASE]


def _prune(
    engine: Engine,
    anchors: list[Anchor],
    *,
    policy: RetentionSettings = POLICY,
    now: datetime = NOW,
    archive_dir: Path | None = None,
    batch: int = LOG_PRUNE_BATCH,
    anchor_head: bool = True,
) -> LogPrune:
    """``prune_log`` with the real keeper over an anchor file that holds ``anchors``; the base
    anchors it signs are added to ``anchors``, which is read back from the file.
    ``anchor_head``: anchor the log's head first, as a running gateway does periodically (not
    after the database was tampered with: that would vouch for the tampering)."""
    if anchor_head:
        anchors.append(_anchor(Store(engine)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "anchors"
        path.write_text("".join(a.to_json() + "\n" for a in anchors))
        try:
            return prune_log(
                Lifecycle(engine, None),
                policy,
                now=now,
                archive_dir=archive_dir,
                keeper=BaseSigner(path, lambda: IDENTITY),
                batch=batch,
            )
        finally:
            anchors[:] = read_anchors(path)


# --- pruning, on both databases -----------------------------------------------------------------


def test_events_past_the_period_are_pruned_and_the_kept_chain_verifies_from_its_base(
    engine: Engine, tmp_path: Path
) -> None:
    store = Store(engine)
    _append_days(store, range(20))  # days 0-19: the first 10 (days 0-9) are past 30 days
    anchors = [_anchor(store)]  # anchors event 20, which stays
    _append_days(store, range(20, 40))
    assert _verify(store, anchors) == (True, "", 0)
    tenth = store.log_entries()[9]

    done = _prune(engine, anchors, archive_dir=tmp_path / "archive")

    assert (done.pruned, done.base_seq) == (10, 10)
    assert [(a.seq, a.hash) for a in anchors if a.kind == BASE] == [(10, tenth.hash)]
    rows = store.log_entries()
    assert rows[0].seq == 11 and store.log_base() == (10, tenth.hash)
    step = rows[-1]  # the pruning records itself at the head
    assert (step.seq, step.event["operation"]) == (41, PRUNE_OPERATION)
    assert (step.event["count"], step.event["log_seq"]) == ("10", "10")
    assert _verify(store, [*anchors, _anchor(store)]) == (True, "", 10)
    # the chain goes on after the step
    _append_days(store, range(40, 41))
    assert _verify(store, anchors) == (True, "", 10)
    # without the signed base the pruned log is refused
    ok, reason, _base = _verify(store, [a for a in anchors if a.kind != BASE])
    assert not ok and "no signed base anchor names it" in reason


def test_nothing_due_changes_nothing_logs_nothing_and_signs_nothing(engine: Engine) -> None:
    store = Store(engine)
    _append_days(store, range(15, 20))
    head = store.log_head()
    anchors: list[Anchor] = []
    done = _prune(engine, anchors)
    assert (done.pruned, done.base_seq, done.archive) == (0, 0, None)
    assert store.log_head() == head and store.log_base() == (0, GENESIS)
    assert _bases(anchors) == []


def test_pruning_stops_at_the_first_younger_event_even_when_older_ones_follow(
    engine: Engine,
) -> None:
    """Only a prefix can go: an event appended late with an earlier time (another process's
    clock) after a young one is kept, or the chain would have a hole."""
    store = Store(engine)
    _append_days(store, range(3))
    _append_days(store, range(35, 36))  # young
    _append_days(store, range(4, 5))  # old again, but after a young one
    anchors: list[Anchor] = []
    done = _prune(engine, anchors)
    assert (done.pruned, done.base_seq) == (3, 3)
    assert [r.seq for r in store.log_entries()][:3] == [4, 5, 6]
    assert _verify(store, anchors)[0]
    # a later run with nothing due still reports the base
    assert _prune(engine, anchors).base_seq == 3


def test_batches_each_sign_and_record_their_base_and_the_archive_holds_every_event_once(
    engine: Engine, tmp_path: Path
) -> None:
    store = Store(engine)
    _append_days(store, range(9))
    anchors = [_anchor(store)]  # at event 9, which is pruned
    _append_days(store, range(9, 10))
    anchors.append(_anchor(store))  # at event 10: the base, checked against its hash
    before = store.log_entries()
    _append_days(store, range(35, 38))

    done = _prune(engine, anchors, archive_dir=tmp_path / "archive", batch=4)

    assert (done.pruned, done.base_seq) == (10, 10)
    assert _bases(anchors) == [4, 8, 10]
    steps = [r.event for r in store.log_entries() if r.event.get("operation") == PRUNE_OPERATION]
    assert [(s["count"], s["log_seq"]) for s in steps] == [("4", "4"), ("4", "8"), ("2", "10")]
    assert done.archive is not None and stat.S_IMODE(done.archive.stat().st_mode) == 0o600
    archived = read_export(done.archive)
    assert archived == before
    # stored log alone: the anchors of events 4, 8 and 9 name pruned events, not checked
    report = verify_log(store.log_entries(), anchors, [CERT], base=store.log_base())
    assert report.ok and report.anchors_before_base == 3
    # with the archive: the whole chain from event 1, every anchor checked
    whole = merge_segments([archived, store.log_entries()])
    report = verify_log(whole, anchors, [CERT], base=chain_start(whole))
    assert report.ok and (report.base_seq, report.anchors_before_base) == (0, 0)
    assert report.checked == len(whole) == 10 + 3 + 3


def test_an_archive_that_cannot_be_written_prunes_nothing(engine: Engine, tmp_path: Path) -> None:
    store = Store(engine)
    _append_days(store, range(5))
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    head = store.log_head()
    anchors: list[Anchor] = []
    with pytest.raises(OutputUnwritable) as caught:
        _prune(engine, anchors, archive_dir=blocker)
    assert "0 event(s) pruned before it" in caught.value.detail
    assert store.log_head() == head and store.log_base() == (0, GENESIS)
    assert len(store.log_entries()) == 5 and _bases(anchors) == []


def test_a_batch_that_fails_half_written_is_cut_from_the_archive(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up in the second batch: the first stays pruned and archived, the second
    stays in the database and leaves no half line in the archive, which still verifies."""
    import os

    store = Store(engine)
    _append_days(store, range(8))
    real_write = os.write
    writes = []

    def write(fd: int, data: bytes) -> int:
        if "/archive/" not in os.readlink(f"/proc/self/fd/{fd}"):
            return real_write(fd, data)  # the anchor file
        writes.append(fd)
        if len(writes) == 2:  # the second batch: half of it, then the disk is full
            return real_write(fd, data[: len(data) // 2])
        if len(writes) == 3:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr("oso_gateway.transfer.lifecycle.os.write", write)
    anchors: list[Anchor] = []
    with pytest.raises(OutputUnwritable) as caught:
        _prune(engine, anchors, archive_dir=tmp_path / "archive", batch=4)
    assert "No space left on device; 4 event(s) pruned before it, archived in" in (
        caught.value.detail
    )
    monkeypatch.undo()
    assert store.log_base()[0] == 4 and _bases(anchors) == [4]
    (archive,) = (tmp_path / "archive").iterdir()
    archived = read_export(archive)
    assert [r.seq for r in archived] == [1, 2, 3, 4]
    whole = merge_segments([archived, store.log_entries()])
    assert verify_log(whole, anchors, [CERT], base=chain_start(whole)).ok


def test_a_log_pruned_whole_continues_from_its_base(engine: Engine) -> None:
    store = Store(engine)
    _append_days(store, range(5))
    anchors: list[Anchor] = []
    done = _prune(engine, anchors)
    assert done.base_seq == 5
    assert [r.seq for r in store.log_entries()] == [6]  # only the step itself
    _append_days(store, range(41, 43))
    assert [r.seq for r in store.log_entries()] == [6, 7, 8]
    assert _verify(store, anchors)[0]


def test_the_database_refuses_deleting_events_beyond_the_base_and_any_update(
    engine: Engine,
) -> None:
    store = Store(engine)
    _append_days(store, range(5))
    _append_days(store, range(35, 37))
    anchors: list[Anchor] = []
    _prune(engine, anchors)
    log = m.TransferLogEntry
    for statement in (
        delete(log).where(log.seq == 6),
        update(log).where(log.seq == 6).values(event="{}"),
        delete(m.TransferLogBase),
        update(m.TransferLogBase).values(through_seq=7),
    ):
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(statement)
    assert _verify(store, anchors)[0]


def _forge_prune(engine: Engine, store: Store, through: int) -> None:
    """What someone with the database's rights but not the gateway key can do: record a base,
    delete up to it (the trigger lets that through) and append the event that records it."""
    target = next(r for r in store.log_entries() if r.seq == through)
    with engine.begin() as conn:
        conn.execute(
            insert(m.TransferLogBase).values(through_seq=through, hash=target.hash, pruned_at=NOW)
        )
        conn.execute(delete(m.TransferLogEntry).where(m.TransferLogEntry.seq <= through))
    event = make_event(
        at=NOW,
        kind="system",
        status="done",
        operation=PRUNE_OPERATION,
        count=through,
        log_seq=through,
        log_hash=target.hash,
    )
    store.append_log([event], now=NOW)


def test_a_prefix_removed_without_the_gateway_key_is_refused_even_at_an_anchored_head(
    engine: Engine,
) -> None:
    """Found by a review: the forged base named an anchored head and the forged step recorded
    it, and verify passed. A base must be named by a signed base anchor."""
    store = Store(engine)
    _append_days(store, range(30, 36))  # nothing is due: these are recent
    anchors = [_anchor(store)]  # a head anchor at event 6
    _forge_prune(engine, store, 6)
    ok, reason, base = _verify(store, anchors)
    assert (ok, base) == (False, 6)
    assert "no signed base anchor names it" in reason


def _lift_triggers(conn: Connection) -> None:
    """What the table's owner can do (the gateway's own role on PostgreSQL, anyone who can
    write the file on SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE transfer_log DISABLE TRIGGER USER"))
    else:
        conn.execute(text("DROP TRIGGER IF EXISTS transfer_log_no_update"))
        conn.execute(text("DROP TRIGGER IF EXISTS transfer_log_no_delete"))


def _replace_rows(engine: Engine, rows: list[StoredEvent], *, after: int = 0) -> None:
    """With the table owner's rights: the stored events after ``after`` become ``rows`` (their
    stored time an old one, which decides nothing)."""
    with engine.begin() as conn:
        _lift_triggers(conn)
        conn.execute(delete(m.TransferLogEntry).where(m.TransferLogEntry.seq > after))
        for row in rows:
            conn.execute(
                insert(m.TransferLogEntry).values(
                    seq=row.seq,
                    at=T0,
                    prev_hash=row.prev_hash,
                    hash=row.hash,
                    event=json.dumps(dict(row.event), sort_keys=True, separators=(",", ":")),
                )
            )


def test_the_stored_time_of_an_event_does_not_make_it_due(engine: Engine) -> None:
    """Found by a second review: the row's ``at`` column is not hashed; backdating it made the
    gateway prune recent events and sign their base. Only the hashed event's own time counts."""
    store = Store(engine)
    _append_days(store, range(30, 36))  # recent
    anchors = [_anchor(store)]
    with engine.begin() as conn:
        _lift_triggers(conn)
        conn.execute(update(m.TransferLogEntry).values(at=T0 - timedelta(days=400)))
    head = store.log_head()
    done = _prune(engine, anchors, anchor_head=False)
    assert (done.pruned, done.base_seq) == (0, 0)
    assert store.log_head() == head and [a.kind for a in anchors] == ["head"]


def test_a_base_forged_in_the_database_is_never_signed(engine: Engine) -> None:
    """A base row beyond the real log and a junk row at it: the due events do not link from
    that base, so nothing is pruned and no base anchor is written."""
    store = Store(engine)
    _append_days(store, range(6))  # due
    with engine.begin() as conn:
        conn.execute(
            insert(m.TransferLogBase).values(through_seq=100, hash="ab" * 32, pruned_at=NOW)
        )
        conn.execute(
            insert(m.TransferLogEntry).values(
                seq=100, at=T0, prev_hash="cd" * 32, hash="ab" * 32, event='{"at":"x"}'
            )
        )
    anchors = [_anchor(store)]  # at the junk row: what the gateway would anchor now
    with pytest.raises(LogChainBroken, match="event 100, is not one a base anchor names"):
        _prune(engine, anchors, anchor_head=False)
    assert _bases(anchors) == [] and len(store.log_entries()) == 7


def test_a_stretch_rewritten_with_consistent_hashes_is_caught_by_its_anchor(
    engine: Engine,
) -> None:
    """Events rewritten as old ones, every hash recomputed from the genesis on: the chain
    links, but the head anchor names another event, so the gateway refuses to prune it."""
    store = Store(engine)
    _append_days(store, range(30, 36))  # recent
    anchors = [_anchor(store)]
    forged = chain(
        [
            make_event(at=T0 + timedelta(days=d), kind="system", status="done", count=d)
            for d in range(6)
        ]
    )
    _replace_rows(engine, forged)
    with pytest.raises(LogChainBroken, match="event 6 is not the one its anchor names"):
        _prune(engine, anchors, anchor_head=False)
    assert [a.kind for a in anchors] == ["head"] and len(store.log_entries()) == 6


def test_a_base_recorded_in_the_database_without_a_base_anchor_is_never_built_on(
    engine: Engine,
) -> None:
    """Found by a third review, with INSERT and the DELETE the trigger allows only: record a
    base the gateway never signed, delete up to it and append a backdated event that links from
    it. The gateway refused nothing and signed a base after it; verify then passed."""
    store = Store(engine)
    _append_days(store, range(30, 36))  # recent
    anchors = [_anchor(store)]  # head anchor at 6
    sixth = store.log_entries()[-1]
    with engine.begin() as conn:
        conn.execute(
            insert(m.TransferLogBase).values(through_seq=6, hash=sixth.hash, pruned_at=NOW)
        )
        conn.execute(delete(m.TransferLogEntry).where(m.TransferLogEntry.seq <= 6))
    old = make_event(at=T0, kind="system", status="done", count=1)
    store.append_log([old], now=T0)  # event 7, links from the forged base
    with pytest.raises(LogChainBroken, match="event 6, is not one a base anchor names"):
        _prune(engine, anchors)  # even when the gateway anchors the head meanwhile
    assert _bases(anchors) == []
    assert not _verify(store, anchors)[0]


def test_events_covered_only_by_a_later_anchor_are_checked_against_it(engine: Engine) -> None:
    """Found by the third review: events 1-3, due, rewritten with recomputed hashes by someone
    with the table owner's rights; the only anchor is at event 6, after them. The check looked
    only at anchors inside the batch and the gateway pruned them."""
    store = Store(engine)
    _append_days(store, range(3))  # due
    _append_days(store, range(35, 38))  # recent
    anchors = [_anchor(store)]  # at 6
    rows = store.log_entries()
    forged = chain(
        [
            *[make_event(at=T0, kind="system", status="done", count=90 + i) for i in range(3)],
            *[dict(r.event) for r in rows[3:]],
        ]
    )
    _replace_rows(engine, forged)
    with pytest.raises(LogChainBroken, match="event 6 is not the one its anchor names"):
        _prune(engine, anchors, anchor_head=False)
    assert _bases(anchors) == [] and len(store.log_entries()) == 6


def test_only_anchored_events_are_pruned_and_the_anchor_file_is_read_for_every_run(
    engine: Engine, tmp_path: Path
) -> None:
    """Due events after the last anchor wait for the next one; one keeper serves many runs
    (as in ``serve``) and sees the anchors written since (a keeper that read the file once
    missed them: the third review)."""
    store = Store(engine)
    _append_days(store, range(4))
    path = tmp_path / "anchors"
    path.write_text(_anchor(store).to_json() + "\n")  # at 4
    _append_days(store, range(4, 8))  # due, not anchored
    keeper = BaseSigner(path, lambda: IDENTITY)
    lifecycle = Lifecycle(engine, None)
    first = prune_log(lifecycle, POLICY, now=NOW, archive_dir=None, keeper=keeper)
    assert (first.pruned, first.base_seq) == (4, 4)
    # a head anchor written since (the anchor thread), then events 5-8 are backdated
    # consistently by the table's owner: the same keeper must see the new anchor
    with path.open("a") as handle:
        handle.write(_anchor(store).to_json() + "\n")  # at 9 (8 events + the step)
    rows = store.log_entries()
    forged = chain(
        [make_event(at=T0, kind="system", status="done", count=70 + i) for i in range(4)]
        + [dict(rows[-1].event)],
        after=(4, rows[0].prev_hash),
    )
    _replace_rows(engine, forged, after=4)
    with pytest.raises(LogChainBroken, match="event 9 is not the one its anchor names"):
        prune_log(lifecycle, POLICY, now=NOW, archive_dir=None, keeper=keeper)
    assert _bases(read_anchors(path)) == [4]


def test_a_prefix_removed_with_no_recorded_step_is_refused(engine: Engine) -> None:
    """A genuine base anchor is not enough: the chain must record the step as well."""
    store = Store(engine)
    _append_days(store, range(6))
    third = store.log_entries()[2]
    anchors = [
        make_anchor(seq=3, head_hash=third.hash, now=NOW, key=KEY, certificate=CERT, kind=BASE)
    ]
    with engine.begin() as conn:
        conn.execute(
            insert(m.TransferLogBase).values(through_seq=3, hash=third.hash, pruned_at=NOW)
        )
        conn.execute(delete(m.TransferLogEntry).where(m.TransferLogEntry.seq <= 3))
    ok, reason, base = _verify(store, anchors)
    assert (ok, base) == (False, 3)
    assert "records no pruning through it" in reason


def test_a_forged_base_that_does_not_link_is_refused(engine: Engine) -> None:
    store = Store(engine)
    _append_days(store, range(5))
    _append_days(store, range(35, 36))
    anchors: list[Anchor] = []
    _prune(engine, anchors)
    with engine.begin() as conn:
        conn.execute(insert(m.TransferLogBase).values(through_seq=6, hash="ab" * 32, pruned_at=NOW))
    ok, reason, base = _verify(store, anchors)
    assert (ok, base) == (False, 6)
    assert "sequence duplicate or reordered" in reason


def test_a_head_anchor_cannot_serve_as_a_base_anchor(engine: Engine) -> None:
    """The two kinds sign different statements: a head anchor's signature relabelled as a
    base does not verify."""
    store = Store(engine)
    _append_days(store, range(30, 33))
    head = _anchor(store)
    relabelled = replace(head, kind=BASE)
    report = verify_log(store.log_entries(), [relabelled], [CERT])
    assert not report.ok and "signature does not verify" in report.reason


def test_verify_needs_the_archives_in_full_a_gap_is_named(engine: Engine, tmp_path: Path) -> None:
    store = Store(engine)
    _append_days(store, range(4))
    anchors: list[Anchor] = []
    first = _prune(engine, anchors, archive_dir=tmp_path / "a")
    _append_days(store, range(50, 52))
    second = _prune(engine, anchors, now=NOW + timedelta(days=60), archive_dir=tmp_path / "b")
    assert (first.base_seq, second.base_seq) == (4, 7)
    assert first.archive is not None and second.archive is not None
    both = merge_segments(
        [read_export(first.archive), read_export(second.archive), store.log_entries()]
    )
    report = verify_log(both, anchors, [CERT], base=chain_start(both))
    assert report.ok and report.base_seq == 0
    # the newer archive alone starts after event 4, which a base anchor names: accepted
    newer = merge_segments([read_export(second.archive), store.log_entries()])
    report = verify_log(newer, anchors, [CERT], base=chain_start(newer))
    assert report.ok and report.base_seq == 4
    # the older archive without the newer one: events 5-7 are missing
    gap = merge_segments([read_export(first.archive), store.log_entries()])
    report = verify_log(gap, anchors, [CERT], base=chain_start(gap))
    assert not report.ok and "missing" in report.reason


def test_an_export_with_its_start_cut_off_is_refused(engine: Engine) -> None:
    """``--export`` takes the start from the file itself: event 1 must link to the genesis,
    and a file that starts later needs a signed base anchor there."""
    store = Store(engine)
    _append_days(store, range(30, 36))
    rows = store.log_entries()
    first = replace(rows[0], prev_hash="ef" * 32)
    assert chain_start([first, *rows[1:]]) == (0, GENESIS)
    assert not verify_log([first, *rows[1:]], [], [CERT], base=chain_start([first])).ok
    later = rows[3:]
    report = verify_log(later, [], [CERT], base=chain_start(later))
    assert not report.ok and "no signed base anchor names it" in report.reason


def test_verify_reads_the_base_and_the_events_as_of_one_moment(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pruning step that commits between reading the base and reading the events made
    verify report a missing event (found by a review): the base is read again and the two
    reads repeated when it moved."""
    store = Store(engine)
    _append_days(store, range(12))
    anchors: list[Anchor] = []
    _prune(engine, anchors, batch=4, policy=replace(POLICY, transfer_log_days=40))
    real_entries = Store.log_entries
    calls = []

    def entries_with_a_prune_in_between(self: Store, **kw: object) -> list[StoredEvent]:
        rows = real_entries(self, **kw)  # type: ignore[arg-type]
        if not calls:
            calls.append(1)
            _prune(engine, anchors, batch=4)  # days 0-9 are due now: a step commits
        return rows

    monkeypatch.setattr(Store, "log_entries", entries_with_a_prune_in_between)
    base, rows = read_log(store)
    monkeypatch.undo()
    assert calls and base[0] >= 4
    report = verify_log(rows, anchors, [CERT], base=base)
    assert report.ok, report.reason


def test_two_archives_with_different_events_under_one_number_are_refused(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    upgrade(engine)
    store = Store(engine)
    _append_days(store, range(2))
    rows = store.log_entries()
    other = replace(rows[1], hash="cd" * 32)
    with pytest.raises(ValueError, match="numbered 2"):
        merge_segments([rows, [other]])
    assert merge_segments([rows, rows[1:]]) == rows  # the same event twice: once
    engine.dispose()


# --- the commands ---------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A gateway (dev identity) whose log holds 20 events of days 0-19 and whose pruned events
    are archived; the log is kept 30 days."""
    data = tmp_path / "data"
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'data_dir = "{data.as_posix()}"\n\n[[identity]]\noin = "{OIN}"\n'
        f'key_file = "{(DEV / f"gateway-{OIN}.key.pem").as_posix()}"\n'
        f'cert_file = "{(DEV / f"gateway-{OIN}.crt.pem").as_posix()}"\n\n'
        f'[storage]\nkey = "{base64.b64encode(bytes(range(32))).decode()}"\n\n'
        '[log]\narchive_dir = "archive"\n\n[retention]\n'
        + "".join(
            f"{key} = 10\n"
            for key in (
                "received_acknowledged_days",
                "received_unfetched_days",
                "outbound_undelivered_days",
                "rejected_failed_days",
                "requests_days",
            )
        )
        + "transfer_log_days = 30\n",
        encoding="utf-8",
    )
    data.mkdir()
    settings = load_settings(path, {})
    engine = create_store_engine(settings.database_url)
    upgrade(engine)
    # days relative to now, so that the command's clock finds days 0-9 past 30 days
    start = datetime.now(UTC) - timedelta(days=40) + timedelta(hours=12)
    store = Store(engine)
    for day in range(20):
        when = start + timedelta(days=day)
        event = make_event(at=when, kind="system", status="done", operation="test.tick", count=day)
        store.append_log([event], now=when)
    # anchored, as a running gateway anchors its log periodically
    seq, head = store.log_head()
    anchor = make_anchor(seq=seq, head_hash=head, now=NOW, key=KEY, certificate=CERT)
    settings.anchor_file.write_text(anchor.to_json() + "\n")
    engine.dispose()
    return path


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)])


def test_retention_purge_prunes_the_log_and_log_verify_follows(config: Path) -> None:
    assert _run(config, "log", "anchor").exit_code == 0  # at event 20
    dry = _run(config, "retention", "purge", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["would_prune_log"] == {"events": 10, "through_seq": 10}

    done = _run(config, "retention", "purge", "--yes", "--json")
    assert done.exit_code == 0, done.output
    pruned = json.loads(done.output)["transfer_log"]
    assert (pruned["pruned"], pruned["base_seq"]) == (10, 10)
    archive = Path(pruned["archive"])
    assert archive.parent == config.parent / "archive" and archive.is_file()

    verified = _run(config, "log", "verify", "--json")
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.output)
    assert (report["ok"], report["base_seq"], report["checked"]) == (True, 10, 11)
    text_report = _run(config, "log", "verify")
    assert "pruned: events 1-10 are not in it" in text_report.output

    whole = _run(config, "log", "verify", "--archive", str(archive), "--json")
    assert whole.exit_code == 0, whole.output
    report = json.loads(whole.output)
    assert (report["base_seq"], report["checked"], report["anchors_before_base"]) == (0, 21, 0)

    again = _run(config, "retention", "purge", "--dry-run", "--json")
    assert json.loads(again.output)["would_prune_log"]["events"] == 0


def test_log_verify_names_an_archive_that_was_tampered_with(config: Path) -> None:
    done = _run(config, "retention", "purge", "--yes", "--json")
    archive = Path(json.loads(done.output)["transfer_log"]["archive"])
    lines = archive.read_text().splitlines()
    row = json.loads(lines[4])
    row["event"]["count"] = "99"
    lines[4] = json.dumps(row, sort_keys=True, separators=(",", ":"))
    archive.write_text("\n".join(lines) + "\n")
    result = _run(config, "log", "verify", "--archive", str(archive), "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert (report["ok"], report["broken_seq"]) == (False, 5)


def test_without_a_gateway_key_the_log_is_not_pruned_and_the_command_says_why(
    config: Path,
) -> None:
    """A pruning step signs the new base; a configuration without an identity cannot."""
    text_ = config.read_text()
    start = text_.index("[[identity]]")
    config.write_text(text_[:start] + text_[text_.index("[storage]") :])
    result = _run(config, "retention", "purge", "--yes", "--json")
    assert result.exit_code == 2, result.output
    assert "0 item(s) purged; pruning the transfer log stopped" in result.output
    assert "OSO-E501" in result.output and "[[identity]]" in result.output
    assert "0 event(s) pruned before it" in result.output
    dry = _run(config, "retention", "purge", "--dry-run", "--json")
    assert json.loads(dry.output)["would_prune_log"]["events"] == 10


def test_older_than_does_not_shorten_the_log(config: Path) -> None:
    """``--older-than 0s`` erases all content, but the log keeps its own period."""
    done = _run(config, "retention", "purge", "--older-than", "0s", "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["transfer_log"]["base_seq"] == 10


def test_a_database_with_the_old_delete_trigger_is_upgraded_and_can_go_back(
    tmp_path: Path,
) -> None:
    """The migration replaces the blanket delete trigger of an existing SQLite database, and
    its downgrade puts that trigger back."""
    from alembic import command

    from oso_gateway.store.migrate import alembic_config

    path = tmp_path / "old.sqlite"
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine, "relates_to_index_1")

    def delete_trigger() -> str:
        with sqlite3.connect(path) as db:
            row = db.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'transfer_log_no_delete'"
            ).fetchone()
        return str(row[0])

    assert "WHEN" not in delete_trigger()
    upgrade(engine)
    assert "WHEN" in delete_trigger()

    def downgrade() -> None:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "relates_to_index_1")

    store = Store(engine)
    _append_days(store, range(3))
    downgrade()
    assert "WHEN" not in delete_trigger()
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("DELETE FROM transfer_log"))
    upgrade(engine)
    assert _prune(engine, []).base_seq == 3
    assert [r.seq for r in store.log_entries()] == [4]
    # a pruned log cannot go back: without its base it would never verify again
    with pytest.raises(RuntimeError, match="the transfer log was pruned"):
        downgrade()
    assert store.log_base()[0] == 3 and "WHEN" in delete_trigger()
    engine.dispose()


def test_the_rejection_count_of_the_metrics_goes_on_across_a_pruning(engine: Engine) -> None:
    """``oso_gateway_rejections_total`` is counted from the log incrementally; the entry it last
    counted being pruned is no rewrite, so the count neither restarts nor drops."""
    from metrics_support import exposition, parse, value

    from oso_gateway.transfer import metrics

    store = Store(engine)

    def reject(day: int) -> None:
        when = T0 + timedelta(days=day)
        event = make_event(
            at=when, kind="message", direction="in", status="rejected", error_code="OSO-E431"
        )
        store.append_log([event], now=when)

    def scrape() -> float:
        families = parse(exposition(metrics.store_families(store, now=NOW)))
        return value(families, "oso_gateway_rejections_total", code="OSO-E431")

    for day in (1, 2):
        reject(day)
    assert scrape() == 2
    _prune(engine, [])
    reject(39)
    assert scrape() == 3


def test_a_chain_rewritten_shorter_behind_a_newer_anchor_is_not_pruned(engine: Engine) -> None:
    """Found by a fourth review: with a base anchor the last line of the anchor file, the
    anchor thread anchored a forged, shorter chain (it compared with the last line, not the
    newest anchor), and the next prune signed a base over it. Now neither happens."""
    from oso_gateway.transfer.auditlog import anchor_due

    store = Store(engine)
    _append_days(store, range(10))  # due
    anchors = [_anchor(store)]  # at 10
    _append_days(store, range(35, 65))  # recent
    anchors.append(_anchor(store))  # at 40
    assert _prune(engine, anchors, anchor_head=False).base_seq == 10  # step event 41
    forged = chain(
        [make_event(at=T0, kind="system", status="done", count=i) for i in range(10)],
        after=store.log_base(),
    )
    _replace_rows(engine, forged, after=10)
    newest = max(anchors, key=lambda a: a.seq)
    assert newest.seq == 40 and anchors[-1].kind == BASE  # the base came last in the file
    assert not anchor_due(
        newest, 20, now=NOW, every_events=1, every=timedelta(minutes=1)
    )  # the thread does not anchor the forged head 20 below the anchor at 40
    anchors.append(_anchor(store))  # and had it been anchored anyway (by hand, at 20):
    with pytest.raises(LogChainBroken, match="event 40 is not the one its anchor names"):
        _prune(engine, anchors, anchor_head=False)
    assert _bases(anchors) == [10]


def test_an_event_that_is_no_json_or_has_no_time_string_is_never_due(engine: Engine) -> None:
    """A row the gateway did not write (inserted in the database) stops the prefix there; it
    does not crash the purge (found by the fourth review)."""
    store = Store(engine)
    _append_days(store, range(3))  # due
    head = store.log_head()
    with engine.begin() as conn:
        for seq, text_ in ((4, "5"), (5, "not json"), (6, '{"at": 5}')):
            link = head[1] if seq == 4 else f"{seq - 1:064x}"  # linked, so the hash is computed
            conn.execute(
                insert(m.TransferLogEntry).values(
                    seq=seq, at=T0, prev_hash=link, hash=f"{seq:064x}", event=text_
                )
            )
    # an anchor past them makes the purge read them as part of the chain it checks: a link
    # that does not verify, not a crash on a JSON value that is no object ("5")
    past = [make_anchor(seq=6, head_hash=f"{6:064x}", now=NOW, key=KEY, certificate=CERT)]
    with pytest.raises(LogChainBroken, match="does not verify"):
        _prune(engine, past, anchor_head=False)
    anchors = [make_anchor(seq=head[0], head_hash=head[1], now=NOW, key=KEY, certificate=CERT)]
    done = _prune(engine, anchors, anchor_head=False)
    assert (done.pruned, done.base_seq) == (3, 3)
