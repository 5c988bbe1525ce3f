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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, delete, insert, text, update
from sqlalchemy.exc import DBAPIError

from oso_gateway.cli import main
from oso_gateway.config import RetentionSettings, load_settings
from oso_gateway.errors import OutputUnwritable
from oso_gateway.security.keys import load_certificate, load_private_key
from oso_gateway.store import Store, create_store_engine, upgrade
from oso_gateway.store import models as m
from oso_gateway.store.lifecycle import Lifecycle
from oso_gateway.store.logchain import GENESIS, Anchor, make_anchor, make_event
from oso_gateway.store.translog import PRUNE_OPERATION
from oso_gateway.transfer.auditlog import (
    chain_start,
    merge_segments,
    read_export,
    verify_log,
)
from oso_gateway.transfer.lifecycle import prune_log

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


# --- pruning, on both databases -----------------------------------------------------------------


def test_events_past_the_period_are_pruned_and_the_kept_chain_verifies_from_its_base(
    engine: Engine, tmp_path: Path
) -> None:
    store = Store(engine)
    _append_days(store, range(20))  # days 0-19: the first 10 (days 0-9) are past 30 days
    early = _anchor(store)  # anchors event 20, which stays
    _append_days(store, range(20, 40))
    assert _verify(store, [early]) == (True, "", 0)
    tenth = store.log_entries()[9]

    done = prune_log(Lifecycle(engine, None), POLICY, now=NOW, archive_dir=tmp_path / "archive")

    assert (done.pruned, done.base_seq) == (10, 10)
    rows = store.log_entries()
    assert rows[0].seq == 11 and store.log_base() == (10, tenth.hash)
    step = rows[-1]  # the pruning records itself at the head
    assert (step.seq, step.event["operation"]) == (41, PRUNE_OPERATION)
    assert (step.event["count"], step.event["log_seq"]) == ("10", "10")
    assert _verify(store, [early, _anchor(store)]) == (True, "", 10)
    # the chain goes on after the step
    _append_days(store, range(40, 41))
    assert _verify(store, [early]) == (True, "", 10)


def test_nothing_due_changes_nothing_and_logs_nothing(engine: Engine) -> None:
    store = Store(engine)
    _append_days(store, range(15, 20))
    head = store.log_head()
    done = prune_log(Lifecycle(engine, None), POLICY, now=NOW, archive_dir=None)
    assert (done.pruned, done.base_seq, done.archive) == (0, 0, None)
    assert store.log_head() == head and store.log_base() == (0, GENESIS)


def test_pruning_stops_at_the_first_younger_event_even_when_older_ones_follow(
    engine: Engine,
) -> None:
    """Only a prefix can go: an event appended late with an earlier time (another process's
    clock) after a young one is kept, or the chain would have a hole."""
    store = Store(engine)
    _append_days(store, range(3))
    _append_days(store, range(35, 36))  # young
    _append_days(store, range(4, 5))  # old again, but after a young one
    done = prune_log(Lifecycle(engine, None), POLICY, now=NOW, archive_dir=None)
    assert (done.pruned, done.base_seq) == (3, 3)
    assert [r.seq for r in store.log_entries()][:3] == [4, 5, 6]
    assert _verify(store, [])[0]


def test_batches_each_record_their_base_and_the_archive_holds_every_event_once(
    engine: Engine, tmp_path: Path
) -> None:
    store = Store(engine)
    _append_days(store, range(9))
    anchors = [_anchor(store)]  # at event 9, which is pruned
    _append_days(store, range(9, 10))
    anchors.append(_anchor(store))  # at event 10: the base, checked against its hash
    before = store.log_entries()
    _append_days(store, range(35, 38))

    done = prune_log(
        Lifecycle(engine, None), POLICY, now=NOW, archive_dir=tmp_path / "archive", batch=4
    )

    assert (done.pruned, done.base_seq) == (10, 10)
    steps = [r.event for r in store.log_entries() if r.event.get("operation") == PRUNE_OPERATION]
    assert [(s["count"], s["log_seq"]) for s in steps] == [("4", "4"), ("4", "8"), ("2", "10")]
    assert done.archive is not None and stat.S_IMODE(done.archive.stat().st_mode) == 0o600
    archived = read_export(done.archive)
    assert archived == before
    # stored log alone: the anchor names a pruned event and is not checked
    report = verify_log(store.log_entries(), anchors, [CERT], base=store.log_base())
    assert report.ok and report.anchors_before_base == 1
    # with the archive: the whole chain from event 1, the anchor checked
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
    with pytest.raises(OutputUnwritable) as caught:
        prune_log(Lifecycle(engine, None), POLICY, now=NOW, archive_dir=blocker)
    assert "nothing was pruned" in caught.value.detail
    assert store.log_head() == head and store.log_base() == (0, GENESIS)
    assert len(store.log_entries()) == 5


def test_a_log_pruned_whole_continues_from_its_base(engine: Engine) -> None:
    store = Store(engine)
    _append_days(store, range(5))
    done = prune_log(Lifecycle(engine, None), POLICY, now=NOW, archive_dir=None)
    assert done.base_seq == 5
    assert [r.seq for r in store.log_entries()] == [6]  # only the step itself
    _append_days(store, range(41, 43))
    assert [r.seq for r in store.log_entries()] == [6, 7, 8]
    assert _verify(store, [])[0]


def test_the_database_refuses_deleting_events_beyond_the_base_and_any_update(
    engine: Engine,
) -> None:
    store = Store(engine)
    _append_days(store, range(5))
    _append_days(store, range(35, 37))
    prune_log(Lifecycle(engine, None), POLICY, now=NOW, archive_dir=None)
    log = m.TransferLogEntry
    for statement in (
        delete(log).where(log.seq == 6),
        update(log).where(log.seq == 6).values(event="{}"),
        delete(m.TransferLogBase),
        update(m.TransferLogBase).values(through_seq=7),
    ):
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(statement)
    assert _verify(store, [])[0]


def test_a_prefix_removed_outside_the_purge_is_refused_by_verify(engine: Engine) -> None:
    """Someone with the database's rights records a base and deletes up to it: the chain
    still links, but it records no pruning through that base."""
    store = Store(engine)
    _append_days(store, range(6))
    third = store.log_entries()[2]
    with engine.begin() as conn:
        conn.execute(
            insert(m.TransferLogBase).values(through_seq=3, hash=third.hash, pruned_at=NOW)
        )
        conn.execute(delete(m.TransferLogEntry).where(m.TransferLogEntry.seq <= 3))
    ok, reason, base = _verify(store, [])
    assert (ok, base) == (False, 3)
    assert "records no pruning through it" in reason


def test_a_forged_base_that_does_not_link_is_refused(engine: Engine) -> None:
    store = Store(engine)
    _append_days(store, range(5))
    _append_days(store, range(35, 36))
    prune_log(Lifecycle(engine, None), POLICY, now=NOW, archive_dir=None)
    with engine.begin() as conn:
        conn.execute(insert(m.TransferLogBase).values(through_seq=6, hash="ab" * 32, pruned_at=NOW))
    ok, reason, base = _verify(store, [])
    assert (ok, base) == (False, 6)
    assert "sequence duplicate or reordered" in reason


def test_verify_needs_the_archives_in_full_a_gap_is_named(engine: Engine, tmp_path: Path) -> None:
    store = Store(engine)
    lifecycle = Lifecycle(engine, None)
    _append_days(store, range(4))
    first = prune_log(lifecycle, POLICY, now=NOW, archive_dir=tmp_path / "a")
    _append_days(store, range(50, 52))
    later = replace(POLICY, transfer_log_days=30)
    second = prune_log(lifecycle, later, now=NOW + timedelta(days=60), archive_dir=tmp_path / "b")
    assert (first.base_seq, second.base_seq) == (4, 7)
    assert first.archive is not None and second.archive is not None
    both = merge_segments(
        [read_export(first.archive), read_export(second.archive), store.log_entries()]
    )
    report = verify_log(both, [], [CERT], base=chain_start(both))
    assert report.ok and report.base_seq == 0
    # the newer archive alone starts after event 4, and records that pruning: accepted
    newer = merge_segments([read_export(second.archive), store.log_entries()])
    report = verify_log(newer, [], [CERT], base=chain_start(newer))
    assert report.ok and report.base_seq == 4
    # the older archive without the newer one: events 5-7 are missing
    gap = merge_segments([read_export(first.archive), store.log_entries()])
    report = verify_log(gap, [], [CERT], base=chain_start(gap))
    assert not report.ok and "missing" in report.reason


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
    store = Store(engine)
    _append_days(store, range(3))
    assert prune_log(Lifecycle(engine, None), POLICY, now=NOW, archive_dir=None).base_seq == 3
    assert [r.seq for r in store.log_entries()] == [4]
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "relates_to_index_1")
    assert "WHEN" not in delete_trigger()
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("DELETE FROM transfer_log"))
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
    prune_log(Lifecycle(engine, None), POLICY, now=NOW, archive_dir=None)
    reject(39)
    assert scrape() == 3
