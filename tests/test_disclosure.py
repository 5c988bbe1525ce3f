"""Disclosure record at the sender, the parents' report (PDF/HTML), objections, subject access."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdf
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from gateway_pair import SENDER_SCHOOL, GatewayPair, cli_config_and_store
from store_support import import_received
from werkzeug.test import TestResponse

from oso_gateway.cli import main
from oso_gateway.dossier.categories import BY_KEY, CATEGORIES
from oso_gateway.dossier.disclosure import pupil_number
from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.dossier.minimise import DossierOptOutError
from oso_gateway.errors import ObjectionNotApplied
from oso_gateway.security.xmlparse import parse_xml
from oso_gateway.store import models as m
from oso_gateway.store.disclosures import PrivacyRecords
from oso_gateway.store.lifecycle import Lifecycle
from oso_gateway.transfer.lifecycle import purge
from oso_gateway.transfer.report import build_report, render_html, render_pdf
from oso_gateway.transfer.send import PreparedDossier


def _data(pair: GatewayPair, seed: int = 7) -> bytes:
    return generate_dossier(overstap="POVO", seed=seed, now=pair.clock())


def _send(pair: GatewayPair, data: bytes, *, objections: bool = True) -> PreparedDossier:
    prepared = pair.prepare(data, objections=pair.outbox.objections if objections else None)
    pair.outbox.enqueue(prepared)
    pair.outbox.run_once()
    return prepared


def _records(pair: GatewayPair, side: str = "sender") -> PrivacyRecords:
    store = pair.sender_store if side == "sender" else pair.receiver_store
    return PrivacyRecords(store.engine, store.cipher)


def _pdf_text(data: bytes) -> str:
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_delivery_keeps_a_disclosure_record_findable_by_pupil_without_the_dossier(
    pair: GatewayPair,
) -> None:
    data = _data(pair)
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None
    prepared = _send(pair, data)
    record = pair.sender_store.find_message(m.OUT, prepared.message_id)
    assert record is not None and record.status == m.DELIVERED
    [found] = _records(pair).disclosures(pupil_number=number)
    assert found.message_id == prepared.message_id
    assert found.recipient_school == "01AB00" and found.recipient_name == "School 01AB"
    assert found.delivered_at is not None and found.receipt_digest
    assert set(found.sent) == set(prepared.disclosure.sent) and "leerling" in found.sent
    assert ("vve", "VERBODEN") in found.withheld
    assert found.inzage is not None and found.inzage.get("inzage") == "true"
    with pair.sender_store.engine.connect() as conn:  # no BSN in clear, no payload kept
        dumped = b"".join(
            str(row).encode()
            for t in ("disclosures", "messages")
            for row in conn.exec_driver_sql(f"SELECT * FROM {t}")  # noqa: S608
        )
    assert number.encode() not in dumped
    assert record.payload_digest is not None


def test_the_pdf_report_names_the_school_and_the_categories_sent_and_withheld_only(
    pair: GatewayPair,
) -> None:
    prepared = _send(pair, _data(pair))
    records = _records(pair).disclosures(message_id=prepared.message_id)
    for language in ("nl", "en"):
        text = _pdf_text(render_pdf(build_report(records, language=language, now=pair.clock())))
        flat = " ".join(text.split())
        assert "School 01AB (01AB00)" in flat
        sent = set(records[0].sent)
        withheld = {c for c, _ in records[0].withheld}
        for c in CATEGORIES:
            label = " ".join((c.label_nl if language == "nl" else c.label_en).split())
            if c.key in sent or c.key in withheld:
                assert label in flat, (language, c.key)
            elif not any(label in _label(k, language) for k in sent | withheld):
                assert label not in flat, f"{c.key} was not sent but the report names it"
        assert ("VERBODEN" in flat) == any(r == "VERBODEN" for _, r in records[0].withheld)
    nl = " ".join(_pdf_text(render_pdf(build_report(records, now=pair.clock()))).split())
    assert "Niet gedeeld" in nl and "Gedeelde gegevens" in nl


def _label(key: str, language: str) -> str:
    c = BY_KEY[key]
    return c.label_nl if language == "nl" else c.label_en


def test_an_objection_is_enforced_at_every_later_send_and_shown_as_the_reason(
    pair: GatewayPair,
) -> None:
    data = _data(pair, seed=11)
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None
    records = _records(pair)
    assert records.record_objection(
        school=SENDER_SCHOOL.code, pupil_number=number, category="toetsresultaten", now=pair.clock()
    )
    assert not records.record_objection(
        school=SENDER_SCHOOL.code, pupil_number=number, category="toetsresultaten", now=pair.clock()
    )
    prepared = _send(pair, data)
    assert "toetsresultaten" not in prepared.disclosure.sent
    assert b"toetsresultaten>" not in prepared.payload.split(b"categorie_uitlevering")[-1]
    [found] = records.disclosures(message_id=prepared.message_id)
    assert ("toetsresultaten", "objection") in found.withheld
    # a caller that forgot the objections cannot queue the dossier
    unprepared = pair.prepare(data)
    with pytest.raises(ObjectionNotApplied) as info:
        pair.outbox.enqueue(unprepared)
    assert info.value.code == "OSO-E542"
    html = render_html(build_report([found], language="en", now=pair.clock()))
    assert "Test results: the parents&#x27; objection" in html or "objection" in html
    assert records.withdraw_objection(
        school=SENDER_SCHOOL.code, pupil_number=number, category="toetsresultaten"
    )
    assert "toetsresultaten" in _send(pair, data).disclosure.sent
    # the log keeps when an objection was recorded and withdrawn, and where; never the pupil
    # nor the category (withdrawn just before a send, it left no trace: a walkthrough)
    events = [e.event for e in pair.sender_store.log_entries() if e.event.get("kind") == "operator"]
    done = [(e["operation"], e["school_brin"] + e["school_vestiging"]) for e in events]
    assert done == [("objection.add", SENDER_SCHOOL.code), ("objection.remove", SENDER_SCHOOL.code)]
    assert not any(number in json.dumps(e) or "toetsresultaten" in json.dumps(e) for e in events)
    assert not records.withdraw_objection(  # nothing withdrawn: nothing logged
        school=SENDER_SCHOOL.code, pupil_number=number, category="toetsresultaten"
    )
    again = [e for e in pair.sender_store.log_entries() if e.event.get("kind") == "operator"]
    assert len(again) == 2


def test_a_dossiers_version_is_the_digest_of_what_a_push_of_it_sends(pair: GatewayPair) -> None:
    """The version a preview shows for a push (and an inzage may name) is the prepared payload's
    digest: the same file and objections give it; an objection since gives another."""
    from oso_gateway.transfer.send import dossier_version

    data = _data(pair, seed=13)
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None
    objections = pair.outbox.objections
    plain = dossier_version(data, objections=objections)
    assert plain == _send(pair, data).payload_digest[:16] == dossier_version(data)
    _records(pair).record_objection(
        school=SENDER_SCHOOL.code, pupil_number=number, category="toetsresultaten", now=pair.clock()
    )
    withheld = dossier_version(data, objections=objections)
    assert withheld != plain and withheld == _send(pair, data).payload_digest[:16]
    assert dossier_version(_data(pair, seed=14)) != plain


def test_an_objection_to_a_mandatory_category_stops_the_send(pair: GatewayPair) -> None:
    data = _data(pair, seed=12)
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None
    _records(pair).record_objection(
        school=SENDER_SCHOOL.code, pupil_number=number, category="schoolloopbaan", now=pair.clock()
    )
    with pytest.raises(DossierOptOutError):
        _send(pair, data)


def test_subject_access_lists_what_the_receiver_holds_until_it_is_purged(
    pair: GatewayPair,
) -> None:
    data = _data(pair, seed=13)
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None
    prepared = _send(pair, data)
    receiver = _records(pair, "receiver")
    [held] = receiver.held_about(number)
    assert held.message_id == prepared.message_id and held.sending_school == "00YY00"
    assert held.fetched_at is None and held.acknowledged_at is None
    assert receiver.held_about("111222333") == []
    # the school's system takes it out: when is noted (nothing wrote it: a privacy walkthrough)
    from oso_gateway.transfer.mailbox import EVERY_SCHOOL, InboxService

    inbox = InboxService(pair.receiver_store, clock=pair.clock)
    inbox.export(EVERY_SCHOOL, prepared.message_id)
    [fetched] = receiver.held_about(number)
    assert fetched.fetched_at == pair.clock() and fetched.acknowledged_at is None
    pair.clock.advance(timedelta(minutes=5))
    inbox.export(EVERY_SCHOOL, prepared.message_id, fmt="json")  # the first fetch counts
    assert receiver.held_about(number)[0].fetched_at == fetched.fetched_at
    store = pair.receiver_store
    purge(
        Lifecycle(store.engine, store.cipher),
        __import__("oso_gateway.config", fromlist=["x"]).RetentionSettings(),
        now=pair.clock() + timedelta(seconds=1),
        older_than=timedelta(0),
    )
    assert receiver.held_about(number) == []


def test_the_report_and_objection_commands(tmp_path: Path) -> None:
    config, _ = cli_config_and_store(tmp_path)
    runner = CliRunner()
    base = ["--config", str(config)]
    missing = runner.invoke(
        main,
        [
            "disclosure",
            "report",
            *base,
            "--message",
            "urn:uuid:x",
            "--out",
            str(tmp_path / "r.pdf"),
        ],
    )
    assert missing.exit_code == 1 and "OSO-E540" in missing.output
    both = runner.invoke(main, ["disclosure", "report", *base, "--out", str(tmp_path / "r.pdf")])
    assert both.exit_code == 2
    bad = runner.invoke(
        main,
        [
            "objection",
            "add",
            *base,
            "--school",
            "00YY00",
            "--bsn",
            "999999187",
            "--category",
            "nope",
        ],
    )
    assert bad.exit_code == 2 and "OSO-E541" in bad.output and "999999187" not in bad.output
    assert "one of: " in bad.output and "toetsresultaten" in bad.output  # the ones it takes
    wrong = runner.invoke(main, ["objection", "list", *base, "--school", "00YY00", "--bsn", "123"])
    assert wrong.exit_code == 2 and "123" not in wrong.output.replace("--bsn", "")
    ok = runner.invoke(
        main,
        ["objection", "add", *base, "--school", "00YY00", "--bsn", "-", "--category", "verzuim"],
        input="999999187\n",
    )
    assert ok.exit_code == 0, ok.output
    listed = runner.invoke(
        main, ["objection", "list", *base, "--school", "00yy00", "--bsn", "999999187"]
    )
    assert listed.output.split() == ["verzuim"]
    # a BRIN alone is its vestiging 00, as every other command's --school takes it (this
    # command had its own parser, which wanted the vestiging)
    brin = runner.invoke(
        main, ["objection", "list", *base, "--school", "00YY", "--bsn", "999999187"]
    )
    assert brin.exit_code == 0 and brin.output.split() == ["verzuim"], brin.output
    malformed = runner.invoke(main, ["objection", "list", *base, "--school", "0Y", "--bsn", "-"])
    assert malformed.exit_code == 2 and "--school" in malformed.output


def test_an_objection_or_a_key_for_a_school_this_gateway_does_not_send_for_is_refused(
    tmp_path: Path,
) -> None:
    """`objection add` said "recorded" for a school whose dossiers leave from another gateway,
    and `keys rotate --school` made it a key (found by a helper's walkthrough)."""
    from oso_gateway.transfer.demo import PRIMARY_OIN, setup_dev_gateways

    config = str(setup_dev_gateways(tmp_path / "gw")[PRIMARY_OIN].config_file)
    assert CliRunner().invoke(main, ["db", "upgrade", "--config", config]).exit_code == 0
    add = ["objection", "add", "--config", config, "--bsn", "-", "--category", "verzuim"]
    foreign = CliRunner().invoke(main, [*add, "--school", "01AB00"], input="999999187\n")
    assert foreign.exit_code == 2 and "OSO-E463" in foreign.output, foreign.output
    assert "01AB00 is not one of this gateway's" in foreign.output
    ours = CliRunner().invoke(main, [*add, "--school", "00YY00"], input="999999187\n")
    assert ours.exit_code == 0 and "recorded" in ours.output, ours.output
    rotate = CliRunner().invoke(main, ["keys", "rotate", "--config", config, "--school", "01AB00"])
    assert rotate.exit_code == 2 and "OSO-E463" in rotate.output, rotate.output
    # listing or withdrawing for such a school is not "nothing recorded" (exit 0): a typing
    # error, refused as add refuses it (a vendor's walkthrough)
    for verb in ("list", "remove"):
        more = ["--category", "verzuim"] if verb == "remove" else []
        args = ["objection", verb, "--config", config, "--bsn", "-", *more, "--json"]
        other = CliRunner().invoke(main, [*args, "--school", "01AB00"], input="999999187\n")
        assert other.exit_code == 2 and "OSO-E463" in other.output, (verb, other.output)
        assert "directory show --served" in other.output
    listed = CliRunner().invoke(
        main,
        ["objection", "list", "--config", config, "--bsn", "-", "--school", "00YY00", "--json"],
        input="999999187\n",
    )
    assert json.loads(listed.stdout) == {"school": "00YY00", "categories": ["verzuim"]}
    remove = ["objection", "remove", "--config", config, "--bsn", "-", "--school", "00YY00"]
    gone = CliRunner().invoke(main, [*remove, "--category", "verzuim"], input="999999187\n")
    # what it means, not just "withdrawn" (an administrator's walkthrough)
    assert gone.exit_code == 0 and "objection to verzuim withdrawn: sends from now" in gone.output


def test_the_console_serves_the_parents_report_of_an_outgoing_transfer(
    pair: GatewayPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console_support import VIEWER_NAME, add_operator, cheap_hasher, console_app, login

    from oso_gateway.store import Store

    prepared = _send(pair, _data(pair, seed=21))
    record = pair.sender_store.find_message(m.OUT, prepared.message_id)
    assert record is not None
    cheap_hasher(monkeypatch)
    add_operator(pair.sender_store, VIEWER_NAME, "viewer")
    keyless = Store(pair.sender_store.engine)  # the console has no storage key
    client = console_app(tmp_path, keyless, clock=pair.clock).test_client()
    assert login(client, VIEWER_NAME).status_code == 302
    page = client.get(f"/console/transfers/{record.pk}").get_data(as_text=True)
    assert f"/console/transfers/{record.pk}/disclosure" in page
    served = client.get(f"/console/transfers/{record.pk}/disclosure?lang=en")
    html = served.get_data(as_text=True)
    assert "Data shared (categories)" in html and "School 01AB (01AB00)" in html
    _assert_styles_allowed_by_the_csp(client, served)
    pdf = client.get(f"/console/transfers/{record.pk}/disclosure?format=pdf")
    assert pdf.mimetype == "application/pdf"
    assert "Overzicht van gedeelde leerlinggegevens" in " ".join(_pdf_text(pdf.data).split())
    assert client.get("/console/transfers/999999/disclosure").status_code == 404


def _assert_styles_allowed_by_the_csp(client: FlaskClient, served: TestResponse) -> None:
    """The console's report has its styles from a URL of the console (its CSP's ``style-src
    'self'`` refused the inline ``<style>``: the report rendered unstyled), while the file the
    CLI writes stays self-contained."""
    from oso_gateway.transfer.report import REPORT_CSS

    csp = served.headers["Content-Security-Policy"]
    assert "style-src 'self';" in csp and "unsafe-inline" not in csp
    html = served.get_data(as_text=True)
    assert "<style" not in html and " style=" not in html
    links = re.findall(r'<link rel="stylesheet" href="([^"]+)">', html)
    assert len(links) == 1 and links[0].startswith("/console/") and "//" not in links[0]
    css = client.get(links[0])
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert css.get_data(as_text=True) == REPORT_CSS
    assert "max-width:48em" in REPORT_CSS
    standalone = render_html(build_report([], language="en", now=datetime.now(UTC)))
    assert f"<style>{REPORT_CSS}</style>" in standalone and "<link" not in standalone


def test_the_preview_shows_the_recorded_objections(tmp_path: Path, pair: GatewayPair) -> None:
    config, _ = cli_config_and_store(tmp_path)
    data = _data(pair, seed=30)  # holds test results (OPTIONEEL)
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None
    dossier = tmp_path / "d.xml"
    dossier.write_bytes(data)
    runner = CliRunner()
    before = runner.invoke(main, ["preview", str(dossier), "--config", str(config)])
    assert before.exit_code == 0 and "objections" not in before.output
    added = runner.invoke(
        main,
        [
            "objection",
            "add",
            "--config",
            str(config),
            "--school",
            "00YY00",
            "--bsn",
            "-",
            "--category",
            "toetsresultaten",
        ],
        input=number + "\n",
    )
    assert added.exit_code == 0, added.output
    after = runner.invoke(main, ["preview", str(dossier), "--config", str(config), "--json"])
    assert after.exit_code == 0, after.output
    shown = runner.invoke(main, ["preview", str(dossier), "--config", str(config)])
    assert "parents' objections (withheld, shown as OPT-UIT): toetsresultaten" in shown.output
    assert '"OPT-UIT"' in after.output and number not in shown.output
    # withheld, not absent: it read "not present", as if the school held no test results
    [tests] = [
        c for c in json.loads(after.output)["categories"] if c["category"] == "toetsresultaten"
    ]
    assert tests["present"] is True and tests["action"] == "removed", tests
    details = runner.invoke(
        main, ["preview", str(dossier), "--config", str(config), "--json", "--details"]
    )
    leaving = {d["category"] for d in json.loads(details.output)["details"] if d["fields"]}
    assert "toetsresultaten" not in leaving and "leerling" in leaving  # values only of what leaves


def test_the_inzage_recorded_at_the_gateway_is_part_of_the_disclosure(
    pair: GatewayPair,
) -> None:
    from oso_gateway.store.pull import NewInzage, PullStore

    data = _data(pair, seed=41)
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None
    PullStore(pair.sender_store).record(
        NewInzage(
            school=SENDER_SCHOOL.code,
            request_pk=None,
            pupil_identifier=number,
            inzage_date="2026-08-30",
            how="gesprek",
            zienswijze="free text that must not reach the record",
            waiver=None,
        ),
        now=pair.clock(),
    )
    prepared = _send(pair, data)
    [found] = _records(pair).disclosures(message_id=prepared.message_id)
    assert found.inzage is not None
    assert found.inzage["recorded_date"] == "2026-08-30" and found.inzage["how"] == "gesprek"
    assert found.inzage["zienswijze"] == "true" and "free text" not in str(found.inzage)
    html = render_html(build_report([found], language="en", now=pair.clock()))
    assert "reviewed the dossier on 2026-08-30 (gesprek), recorded by the school" in html
    assert "version" not in html  # the inzage named none


def test_the_report_says_whether_the_version_the_parents_saw_was_sent(
    pair: GatewayPair,
) -> None:
    from oso_gateway.store.pull import NewInzage, PullStore
    from oso_gateway.transfer.send import dossier_version

    data = _data(pair, seed=42)
    number = pupil_number(parse_xml(data).getroot())
    assert number is not None
    version = dossier_version(data, objections=pair.outbox.objections)
    other = "0" * 16
    for seen, expected in (
        (version, f"they saw version {version}, and that version was sent"),
        (other, f"they saw version {other}; version {version} was sent"),
    ):
        PullStore(pair.sender_store).record(
            NewInzage(
                school=SENDER_SCHOOL.code,
                request_pk=None,
                pupil_identifier=number,
                inzage_date="2026-08-30",
                how="paper",
                zienswijze=None,
                waiver=None,
                previewed=seen,
            ),
            now=pair.clock(),
        )
        prepared = _send(pair, data)
        [found] = _records(pair).disclosures(message_id=prepared.message_id)
        assert found.inzage is not None and found.inzage["previewed"] == seen
        html = render_html(build_report([found], language="en", now=pair.clock()))
        assert expected in html, html
        pair.clock.advance(timedelta(hours=1))


def _queue(pair: GatewayPair, seed: int) -> PreparedDossier:
    prepared = pair.prepare(_data(pair, seed))
    pair.outbox.enqueue(prepared)
    return prepared


def test_the_report_does_not_call_a_cancelled_or_undelivered_dossier_shared(
    pair: GatewayPair,
) -> None:
    """The record is made at queueing: a dossier cancelled before it was sent never left the
    school, one that failed after attempts may have arrived unconfirmed, one still queued is
    yet to go; only a delivered one is "shared" (found by a helper's privacy review: all four
    read "Data shared")."""
    from oso_gateway.store.mailbox import Mailbox

    delivered = _send(pair, _data(pair, 1))
    cancelled = _queue(pair, 2)
    Mailbox(pair.sender_store).cancel(
        pair.sender_store.find_message(m.OUT, cancelled.message_id).pk,  # type: ignore[union-attr]
        now=pair.clock(),
    )
    queued = _queue(pair, 3)
    failed = _queue(pair, 4)
    pair.transport.receivers.clear()  # the receiver is gone: attempts fail
    for _ in range(8):
        pair.outbox.run_once()
        pair.clock.advance(timedelta(seconds=10))
    record = pair.sender_store.find_message(m.OUT, failed.message_id)
    assert record is not None and record.status == m.FAILED and record.attempts > 0
    queued_record = pair.sender_store.find_message(m.OUT, queued.message_id)
    assert queued_record is not None
    Mailbox(pair.sender_store).retry(queued_record.pk, now=pair.clock())  # queued again

    records = {r.message_id: r for r in _records(pair).disclosures()}
    report = build_report(list(records.values()), language="en", now=pair.clock())
    by_id = {s.heading.split()[-1]: s for s in report.sections}
    assert by_id[delivered.message_id].sent_heading == "Data shared (categories)"
    never = by_id[cancelled.message_id]
    assert never.sent_heading == "Data prepared, not shared (categories)"
    assert ("Status", "not sent (cancelled): the dossier did not leave the school") in never.rows
    # not "not delivered yet": it will not be (a privacy walkthrough)
    assert ("Delivered on", "not delivered") in never.rows
    assert ("Delivered on", "not delivered yet") in by_id[queued.message_id].rows
    unconfirmed = by_id[failed.message_id]
    assert unconfirmed.sent_heading == "Data sent, receipt not confirmed (categories)"
    assert any(
        k == "Status" and v.startswith("receipt not confirmed (failed after")
        for k, v in unconfirmed.rows
    )
    assert by_id[queued.message_id].sent_heading == "Data to be shared (categories)"
    page = render_html(report)
    assert page.count("Data shared (categories)") == 1
    text = " ".join(
        _pdf_text(render_pdf(build_report(list(records.values()), now=pair.clock()))).split()
    )
    assert text.count("Gedeelde gegevens (categorieën)") == 1
    assert "niet verzonden (geannuleerd)" in text
    # the queued one is tried (the receiver still gone): on the wire, not confirmed
    pair.clock.advance(timedelta(seconds=10))
    pair.outbox.run_once()
    trying = pair.sender_store.find_message(m.OUT, queued.message_id)
    assert trying is not None and trying.status == m.RETRYING and trying.attempts == 1
    [record] = _records(pair).disclosures(message_id=queued.message_id)
    [section] = build_report([record], language="en", now=pair.clock()).sections
    assert section.sent_heading == "Data sent, receipt not confirmed (categories)"
    assert ("Status", "being sent: 1 attempt(s) so far, no receipt yet") in section.rows


def test_subject_erase_shreds_one_pupils_dossiers_now_and_logs_it(tmp_path: Path) -> None:
    """Erasure on request (found missing by a helper's privacy review): the dossiers held about
    one pupil are crypto-shredded at once, another pupil's stay, and the log says so."""
    import json
    from datetime import UTC, datetime

    from oso_gateway.store.logchain import verify_chain

    config, store = cli_config_and_store(tmp_path)
    now = datetime.now(UTC)
    ids = {}
    for bsn in ("123456782", "999999187"):
        dossier = b"<dossier>Erase-Marker-" + bsn.encode() + b"</dossier>"
        result = import_received(store, now=now, dossier=dossier, family_name="Peters", bsn=bsn)
        ids[bsn] = result.message.message_id
    with store.engine.connect() as conn:
        ciphertext = bytes(
            conn.exec_driver_sql(
                "SELECT d.ciphertext FROM dossiers d JOIN messages m ON m.id = d.message_pk "
                "WHERE m.message_id = ?",
                (ids["123456782"],),
            ).scalar_one()
        )[16:64]
    runner = CliRunner()
    base = ["subject", "erase", "--config", str(config), "--bsn", "-", "--json"]
    dry = runner.invoke(main, [*base, "--dry-run"], input="123456782\n")
    assert dry.exit_code == 0 and json.loads(dry.output) == {"would_erase": [ids["123456782"]]}
    asked = runner.invoke(main, base, input="123456782\nn\n")
    # not confirmed: nothing erased; the BSN came on a pipe, so there is no terminal to ask on
    # and it says to pass --yes (it said only "Aborted!": found by a helper's walkthrough)
    assert asked.exit_code == 2 and "pass --yes" in asked.output
    assert PrivacyRecords(store.engine, store.cipher).held_about("123456782")
    erased = runner.invoke(main, [*base, "--yes"], input="123456782\n")
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.output) == {"erased": [ids["123456782"]]}
    records = PrivacyRecords(store.engine, store.cipher)
    assert records.held_about("123456782") == []
    assert [h.message_id for h in records.held_about("999999187")] == [ids["999999187"]]
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file())
    assert ciphertext not in raw  # shredded, with its data key, from the file and its WAL
    entries = store.log_entries()
    assert verify_chain(entries).ok
    operations = [e.event.get("operation") for e in entries]
    assert "erasure.received_dossier" in operations
    assert not any("123456782" in json.dumps(e.event) for e in entries)
    from oso_gateway.transfer.mailbox import summary

    shown = {bsn: summary(store.find_message(m.IN, ids[bsn])) for bsn in ids}  # type: ignore[arg-type]
    assert shown["123456782"]["purged_at"] is not None  # the inbox says it was erased
    assert shown["999999187"]["purged_at"] is None
    again = runner.invoke(main, [*base, "--yes"], input="123456782\n")
    assert json.loads(again.output) == {"erased": []}


def test_the_report_names_the_pupils_identifier_and_the_inzage_in_its_language(
    pair: GatewayPair,
) -> None:
    """An onderwijsnummer was called a BSN, and the Dutch report gave the inzage's "how" in
    English (a privacy walkthrough)."""
    record = _send(pair, _data(pair, 5))
    [found] = _records(pair).disclosures(message_id=record.message_id)
    found = replace(found, inzage={"recorded": "2026-12-01", "how": "meeting"})
    nl = build_report([found], now=pair.clock(), pupil_tail="3981", pupil_kind="onderwijsnummer")
    assert ("Leerling", "onderwijsnummer eindigend op 3981") in nl.header
    assert any("(gesprek)" in v for _k, v in nl.sections[0].rows)
    en = build_report([found], language="en", now=pair.clock(), pupil_tail="3981")
    assert ("Pupil", "BSN ending in 3981") in en.header
    assert any("(meeting)" in v for _k, v in en.sections[0].rows)


@pytest.mark.postgres
def test_pushes_of_one_pupil_are_checked_one_transaction_at_a_time(postgres_url: str) -> None:
    """PostgreSQL reads what others committed only: the "one inzage, one push" check inside
    the queueing transaction waits for another one checking the same school and pupil
    (``lock_pupil_pushes``); another pupil does not wait."""
    import threading
    import time

    from conftest import postgres_schema_engine
    from sqlalchemy.orm import Session

    from oso_gateway.store.disclosures import lock_pupil_pushes

    with postgres_schema_engine(postgres_url, "l") as engine:
        order: list[str] = []

        def second(pupil: str, name: str) -> None:
            with Session(engine) as session, session.begin():
                lock_pupil_pushes(session, "00YY00", pupil)
                order.append(name)

        with Session(engine) as first, first.begin():
            lock_pupil_pushes(first, "00YY00", "hash-a")
            same = threading.Thread(target=second, args=("hash-a", "same pupil"))
            other = threading.Thread(target=second, args=("hash-b", "other pupil"))
            same.start()
            other.start()
            other.join(10)
            time.sleep(0.3)
            order.append("first commits")
        same.join(10)
        assert order == ["other pupil", "first commits", "same pupil"]
