"""``oso-gateway log``: list/show/export/anchor, and ``log verify`` against an attacker who has
write access to the database (real SQLite file, the append-only triggers dropped)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from oso_gateway.cli import main
from oso_gateway.config import load_settings
from oso_gateway.store import Store, create_store_engine, logchain, open_store, upgrade
from oso_gateway.store.logchain import StoredEvent, make_event, verify_chain

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "certs" / "dev"
OIN = "00000001000000000001"
OTHER_OIN = "00000001000000000002"
T0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
IDS = [f"urn:uuid:{i:08x}-1111-4222-8333-444444444444" for i in range(1, 5)]

# (message, direction, status, school, error code): four transfers, ten events
EVENTS = [
    (0, "out", "queued", "01AB00", None),
    (0, "out", "sending", "01AB00", None),
    (0, "out", "retrying", "01AB00", "OSO-E461"),
    (0, "out", "delivered", "01AB00", None),
    (1, "in", "received", "00YY00", None),
    (1, "in", "imported", "00YY00", None),
    (2, "in", "rejected", "02CD00", "OSO-E431"),
    (3, "out", "queued", "03EF00", None),
    (3, "out", "failed", "03EF00", "OSO-E453"),
    (3, "out", "queued", "03EF00", None),
]


def _event(index: int) -> dict[str, str]:
    message, direction, status, school, code = EVENTS[index]
    return make_event(
        at=T0 + timedelta(hours=index),
        kind="message",
        direction=direction,
        message_id=IDS[message],
        action="urn:oso-gateway:action:dossier:deliver:1",
        status=status,
        error_code=code,
        counterpart_brin=school[:4],
        counterpart_vestiging=school[4:],
        counterpart_oin=OTHER_OIN,
        size_bytes=1000 + index,
        payload_digest=f"{index:064x}",
        # our school, on the last transfer only (events of older versions do not name it)
        school_brin="05GH" if message == 3 else None,
        school_vestiging="00" if message == 3 else None,
    )


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    """A gateway configuration (dev identity) whose database holds the ten events above."""
    data = tmp_path / "data"
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'data_dir = "{data.as_posix()}"\n\n[[identity]]\noin = "{OIN}"\n'
        f'key_file = "{(DEV / f"gateway-{OIN}.key.pem").as_posix()}"\n'
        f'cert_file = "{(DEV / f"gateway-{OIN}.crt.pem").as_posix()}"\n',
        encoding="utf-8",
    )
    settings = load_settings(path, {})
    data.mkdir()
    engine = create_store_engine(settings.database_url)
    upgrade(engine)
    store = Store(engine)
    for index in range(len(EVENTS)):
        store.append_log([_event(index)], now=T0 + timedelta(hours=index))
    engine.dispose()
    yield path


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["log", *args, "--config", str(config)])


def _db(config: Path) -> sqlite3.Connection:
    """The attacker's view: the SQLite file, with the append-only triggers removed."""
    db = sqlite3.connect(load_settings(config, {}).data_dir / "gateway.sqlite")
    db.execute("DROP TRIGGER IF EXISTS transfer_log_no_update")
    db.execute("DROP TRIGGER IF EXISTS transfer_log_no_delete")
    return db


def _store(config: Path) -> Store:
    return open_store(load_settings(config, {}), require_key=False)


def _row(db: sqlite3.Connection, seq: int) -> tuple[str, str, str, str]:
    row = db.execute(
        "SELECT at, prev_hash, hash, event FROM transfer_log WHERE seq = ?", (seq,)
    ).fetchone()
    assert row is not None
    return row  # type: ignore[no-any-return]


# --- verify: untouched and tampered ----------------------------------------------------------


def test_untouched_log_with_an_anchor_verifies_with_exit_status_0(config: Path) -> None:
    assert _run(config, "anchor").exit_code == 0
    result = _run(config, "verify")
    assert result.exit_code == 0, result.output
    assert "intact: 10 events" in result.output
    assert "anchors: 1 valid" in result.output
    report = json.loads(_run(config, "verify", "--json").output)
    assert (report["ok"], report["checked"], report["head_seq"]) == (True, 10, 10)
    assert report["last_anchor_seq"] == 10 and report["unanchored"] == 0


def test_a_database_that_cannot_be_reached_is_no_verdict_on_the_log(config: Path) -> None:
    """A monitor that runs `log verify` daily must not read a database outage as tampering:
    exit 3 (not 1, "broken"), and with --json an answer it can parse (found by an operator's
    walkthrough: exit 1 and nothing on stdout)."""
    away = {"OSO_GATEWAY_DATABASE_URL": "postgresql+psycopg://u:secret@127.0.0.1:1/x"}
    text = CliRunner().invoke(main, ["log", "verify", "--config", str(config)], env=away)
    assert text.exit_code == 3, text.output
    assert "OSO-E502" in text.output and "secret" not in text.output
    answer = CliRunner().invoke(
        main, ["log", "verify", "--json", "--config", str(config)], env=away
    )
    assert answer.exit_code == 3, answer.output
    report = json.loads(answer.stdout)
    assert (report["ok"], report["error"]) == (None, "OSO-E502")
    assert "secret" not in answer.output


def test_untouched_log_without_anchors_verifies_but_warns_that_truncation_is_undetectable(
    config: Path,
) -> None:
    result = _run(config, "verify")
    assert result.exit_code == 0
    assert "warning: no anchors" in result.output


def test_edited_event_is_detected_and_named(config: Path) -> None:
    with _db(config) as db:
        _at, _prev, _hash, event = _row(db, 4)
        edited = event.replace('"status":"delivered"', '"status":"failed"')
        assert edited != event
        db.execute("UPDATE transfer_log SET event = ? WHERE seq = 4", (edited,))
    result = _run(config, "verify")
    assert result.exit_code == 1
    assert "BROKEN at event 4" in result.output and "edited" in result.output
    assert json.loads(_run(config, "verify", "--json").output)["broken_seq"] == 4


def test_deleted_event_is_detected_and_named(config: Path) -> None:
    with _db(config) as db:
        db.execute("DELETE FROM transfer_log WHERE seq = 5")
    result = _run(config, "verify")
    assert result.exit_code == 1
    assert "BROKEN at event 5" in result.output and "missing" in result.output


def test_inserted_event_with_a_correct_link_is_detected_at_the_event_after_it(
    config: Path,
) -> None:
    # The attacker forges a well-chained event after event 5 and renumbers the rest.
    with _db(config) as db:
        _at, _prev, hash5, _event5 = _row(db, 5)
        forged = _event(6)
        (row,) = logchain.chain([forged], after=(5, hash5))
        db.execute("UPDATE transfer_log SET seq = seq + 1000 WHERE seq > 5")
        db.execute("UPDATE transfer_log SET seq = seq - 999 WHERE seq > 1000")
        db.execute(
            "INSERT INTO transfer_log (seq, at, prev_hash, hash, event) VALUES (6, ?, ?, ?, ?)",
            (
                "2026-09-01 13:30:00.000000",
                row.prev_hash,
                row.hash,
                json.dumps(row.event, sort_keys=True, separators=(",", ":")),
            ),
        )
    result = _run(config, "verify")
    assert result.exit_code == 1
    assert "BROKEN at event 7" in result.output
    assert "6 events before it verified" in result.output


def test_reordered_events_are_detected_at_the_first_moved_one(config: Path) -> None:
    with _db(config) as db:  # events 3 and 4 swap places
        db.execute("UPDATE transfer_log SET seq = 1000 WHERE seq = 4")
        db.execute("UPDATE transfer_log SET seq = 4 WHERE seq = 3")
        db.execute("UPDATE transfer_log SET seq = 3 WHERE seq = 1000")
    result = _run(config, "verify")
    assert result.exit_code == 1
    assert "BROKEN at event 3" in result.output
    assert "2 events before it verified" in result.output


def test_truncated_tail_is_detected_through_the_anchor(config: Path) -> None:
    assert _run(config, "anchor").exit_code == 0
    with _db(config) as db:
        db.execute("DELETE FROM transfer_log WHERE seq > 8")
    assert verify_chain(_store(config).log_entries()).ok  # the shorter chain is self-consistent
    result = _run(config, "verify")
    assert result.exit_code == 1
    assert "BROKEN at event 9" in result.output and "truncated" in result.output
    report = json.loads(_run(config, "verify", "--json").output)
    assert (report["ok"], report["broken_seq"], report["head_seq"]) == (False, 9, 8)


def test_rewritten_log_is_detected_through_the_anchor(config: Path) -> None:
    # The attacker rebuilds a whole consistent chain without event 2: only the anchor tells.
    assert _run(config, "anchor").exit_code == 0
    events = [_event(i) for i in range(len(EVENTS)) if i != 1]
    with _db(config) as db:
        db.execute("DELETE FROM transfer_log")
        for row in logchain.chain(events):
            db.execute(
                "INSERT INTO transfer_log (seq, at, prev_hash, hash, event) VALUES (?,?,?,?,?)",
                (
                    row.seq,
                    "2026-09-01 08:00:00.000000",
                    row.prev_hash,
                    row.hash,
                    json.dumps(row.event, sort_keys=True, separators=(",", ":")),
                ),
            )
    result = _run(config, "verify")
    assert result.exit_code == 1
    assert "truncated" in result.output  # the forged chain has 9 events, the anchor says 10


def test_edited_anchor_is_detected_and_its_line_named(config: Path) -> None:
    assert _run(config, "anchor").exit_code == 0
    assert _run(config, "anchor").exit_code == 0
    anchors = load_settings(config, {}).anchor_file
    lines = anchors.read_text().splitlines()
    second = json.loads(lines[1])
    second["seq"] = 8
    anchors.write_text(lines[0] + "\n" + json.dumps(second) + "\n")
    result = _run(config, "verify")
    assert result.exit_code == 1
    assert "BROKEN at anchor 2" in result.output and "does not verify" in result.output


def test_anchor_signed_by_another_gateway_is_refused(config: Path) -> None:
    from oso_gateway.security.keys import load_certificate, load_private_key

    previous = DEV / f"gateway-{OTHER_OIN}.crt.pem"
    certificate = load_certificate(previous.read_bytes())
    path = load_settings(config, {}).anchor_file
    path.parent.mkdir(parents=True, exist_ok=True)

    def anchored_at(at: datetime) -> None:
        anchor = logchain.make_anchor(
            seq=10,
            head_hash=_store(config).log_entries()[-1].hash,
            now=at,
            key=load_private_key((DEV / f"gateway-{OTHER_OIN}.key.pem").read_bytes()),
            certificate=certificate,
        )
        path.write_text(anchor.to_json() + "\n")

    within = certificate.not_valid_before_utc + timedelta(days=1)
    anchored_at(within)
    result = _run(config, "verify")
    assert result.exit_code == 1
    assert "not ours" in result.output
    assert "log.earlier_cert_files" in result.output  # what to do after a renewal
    # a certificate named explicitly (say, our previous one) is accepted
    assert _run(config, "verify", "--cert", str(previous)).exit_code == 0
    # or listed in the configuration, so that a daily check from monitoring passes after a
    # renewal (it failed as if the log were tampered with: an operator's walkthrough)
    with config.open("a", encoding="utf-8") as out:
        out.write(f"\n[log]\nearlier_cert_files = [{json.dumps(str(previous))}]\n")
    assert _run(config, "verify").exit_code == 0
    # but only for an anchor dated within that certificate's validity: an old key, let go
    # less carefully than the current one, cannot sign a new head (a security review)
    for outside in (
        certificate.not_valid_before_utc - timedelta(days=1),
        certificate.not_valid_after_utc + timedelta(days=1),
    ):
        anchored_at(outside)
        late = _run(config, "verify")
        assert late.exit_code == 1 and "outside that certificate's validity" in late.output


def test_malformed_anchor_file_fails_verification_naming_the_line(config: Path) -> None:
    assert _run(config, "anchor").exit_code == 0
    path = load_settings(config, {}).anchor_file
    path.write_text(path.read_text() + "{not json\n")
    result = _run(config, "verify", "--anchors", str(path))
    assert result.exit_code == 1
    assert "line 2" in result.output


# --- list, show, export ----------------------------------------------------------------------


def test_list_prints_a_table_that_fits_eighty_columns(config: Path) -> None:
    result = _run(config, "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["SEQ", "TIME", "(UTC)"]
    assert len(lines) == 11
    assert max(len(line) for line in lines) <= 80
    assert "awaiting_receipt" not in result.output
    assert "OSO-E461" in lines[3] and "retrying" in lines[3]
    # our school, the arrow the way it went, theirs: a gateway of many schools sees which of
    # its own failed (it showed the other school only)
    assert "05GH00>03EF00" in lines[9] and "failed" in lines[9]
    assert "?     <00YY00" in lines[5] and "?     >01AB00" in lines[1]


def test_list_filters_by_status_school_direction_and_time(config: Path) -> None:
    def seqs(*args: str) -> list[int]:
        result = _run(config, "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [row["seq"] for row in json.loads(result.output)]

    assert seqs("--status", "queued") == [1, 8, 10]
    assert seqs("--school", "03ef") == [8, 9, 10]
    assert seqs("--school", "01AB00", "--status", "retrying") == [3]
    assert seqs("--direction", "in") == [5, 6, 7]
    assert seqs("--since", "2026-09-01T14:00Z") == [7, 8, 9, 10]
    assert seqs("--until", "2026-09-01T09:30:00+00:00") == [1, 2]
    assert seqs("--limit", "2") == [9, 10]
    assert seqs("--since", "1h") == []  # nothing in the last hour (the events are from 2026-09)
    # a school on our side too (a vendor's own school: the counterpart alone hid its
    # transfers, a walkthrough), and only one kind of event
    store = _store(config)
    store.append_log(
        [
            make_event(
                at=T0 + timedelta(hours=11),
                kind="message",
                direction="out",
                message_id=IDS[0],
                status="queued",
                school_brin="20AB",
                school_vestiging="00",
                counterpart_brin="01AB",
                counterpart_vestiging="00",
            ),
            make_event(
                at=T0 + timedelta(hours=12),
                kind="api",
                status="api_call",
                api_client="c-" + "0" * 16,
                http_method="GET",
                http_status=200,
            ),
        ],
        now=T0 + timedelta(hours=12),
    )
    store.engine.dispose()
    assert seqs("--school", "20AB") == [11]
    assert seqs("--school", "01AB00") == [1, 2, 3, 4, 11]
    assert seqs("--kind", "api") == [12]
    assert seqs("--kind", "message", "--limit", "1") == [11]


def test_list_refuses_a_malformed_school_or_time_with_exit_status_2(config: Path) -> None:
    assert _run(config, "list", "--school", "Jansen").exit_code == 2
    assert _run(config, "list", "--since", "yesterday").exit_code == 2


def test_show_gives_one_messages_timeline_with_the_meaning_of_its_error_codes(
    config: Path,
) -> None:
    result = _run(config, "show", IDS[0][9:17])  # a prefix of the UUID is enough
    assert result.exit_code == 0, result.output
    assert IDS[0] in result.output
    statuses = [
        line.split()[3] for line in result.output.splitlines() if line[:6].strip().isdigit()
    ]
    assert statuses == ["queued", "sending", "retrying", "delivered"]
    assert "OSO-E461: " in result.output  # followed by what the code means
    assert max(len(line) for line in result.output.splitlines()) <= 80
    data = json.loads(_run(config, "show", IDS[2], "--json").output)
    assert [e["status"] for e in data["events"]] == ["rejected"]
    assert data["events"][0]["meaning"]


def test_show_of_an_unknown_or_ambiguous_message_exits_1(config: Path) -> None:
    result = _run(config, "show", "urn:uuid:99999999-1111-4222-8333-444444444444")
    assert result.exit_code == 1
    assert "no logged message" in result.output
    result = _run(config, "show", "0000000")  # the start of every test id
    assert result.exit_code == 1
    assert "4 logged messages match" in result.output
    assert _run(config, "show", "%").exit_code == 1  # not an id: no SQL wildcard either


def test_jsonl_export_can_be_verified_independently(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    result = _run(config, "export", "--format", "jsonl", "--out", str(out))
    assert result.exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    stored = [
        StoredEvent(seq=r["seq"], prev_hash=r["prev_hash"], hash=r["hash"], event=r["event"])
        for r in rows
    ]
    assert len(stored) == 10 and verify_chain(stored).ok


def test_csv_export_has_one_column_per_field_and_honours_filters(config: Path) -> None:
    result = _run(config, "export", "--format", "csv", "--status", "rejected")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["seq"], r["error_code"], r["counterpart_brin"]) for r in rows] == [
        ("7", "OSO-E431", "02CD")
    ]


def test_csv_export_neutralises_values_a_spreadsheet_would_run_as_formulas(
    config: Path,
) -> None:
    store = _store(config)
    event = make_event(at=T0, kind="message", status="rejected", action="=1-1")
    store.append_log([event], now=T0)
    result = _run(config, "export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert rows[-1]["action"] == "'=1-1"


def test_anchor_appends_signed_heads_to_the_anchor_file(config: Path) -> None:
    assert _run(config, "anchor").exit_code == 0
    _store(config).append_log([_event(0)], now=T0)
    result = _run(config, "anchor")
    assert result.exit_code == 0 and "anchored event 11" in result.output
    anchors = load_settings(config, {}).anchor_file.read_text().splitlines()
    assert [json.loads(a)["seq"] for a in anchors] == [10, 11]


def test_operator_actions_show_what_was_done_and_by_whom(config: Path) -> None:
    event = make_event(
        at=T0 + timedelta(hours=11),
        kind="operator",
        status="ok",
        operation="retry",
        operator="alice",
        direction="out",
        message_id=IDS[3],
    )
    _store(config).append_log([event], now=T0)
    listed = _run(config, "list", "--status", "ok")
    assert listed.exit_code == 0
    assert "retry ok" in listed.output.splitlines()[1]
    shown = _run(config, "show", IDS[3])
    assert "retry ok" in shown.output and "by operator alice" in shown.output
    assert _run(config, "list", "--status", "Not a status!").exit_code == 2


def test_an_export_verifies_apart_from_the_database_and_an_edit_in_it_is_caught(
    config: Path, tmp_path: Path
) -> None:
    assert _run(config, "anchor").exit_code == 0
    out = tmp_path / "log.jsonl"
    assert _run(config, "export", "--format", "jsonl", "--out", str(out)).exit_code == 0
    result = _run(config, "verify", "--export", str(out))
    assert result.exit_code == 0 and "intact: 10 events" in result.output
    lines = out.read_text().splitlines()
    lines[5] = lines[5].replace('"status":"imported"', '"status":"rejected"')
    out.write_text("\n".join(lines) + "\n")
    result = _run(config, "verify", "--export", str(out))
    assert result.exit_code == 1 and "BROKEN at event 6" in result.output
    out.write_text("{}\n")
    result = _run(config, "verify", "--export", str(out))
    assert result.exit_code == 1 and "line 1" in result.output


def test_show_says_so_when_two_gateways_used_the_same_message_id(config: Path) -> None:
    event = make_event(
        at=T0 + timedelta(hours=12),
        kind="message",
        direction="in",
        message_id=IDS[1],
        status="rejected",
        error_code="OSO-E431",
        counterpart_oin="00000001000000000003",
    )
    _store(config).append_log([event], now=T0)
    shown = _run(config, "show", IDS[1])
    assert "events from 2 counterpart OINs" in shown.output
    assert "00000001000000000003" in shown.output


def test_anchor_and_export_to_a_file_say_what_they_did_as_json(
    config: Path, tmp_path: Path
) -> None:
    import json

    anchored = _run(config, "anchor", "--json")
    assert anchored.exit_code == 0, anchored.output
    body = json.loads(anchored.stdout)
    assert body["seq"] == 10 and len(body["hash"]) == 64 and body["anchor_file"]
    out = tmp_path / "log.csv"
    exported = _run(config, "export", "--format", "csv", "--out", str(out), "--json")
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout) == {"exported": 10, "out": str(out), "format": "csv"}
    to_stdout = _run(config, "export", "--format", "jsonl", "--json")
    assert to_stdout.exit_code == 2 and "--out" in to_stdout.output
