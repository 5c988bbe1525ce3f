"""`oso-gateway demo --flow pull` and the request / inzage commands (with --json) on the demo's
gateways: real servers on loopback, mutual TLS, the dev PKI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from oso_gateway.cli import main
from oso_gateway.dossier.generator import generate_dossier

pytestmark = pytest.mark.integration

OLD_CONFIG = "gateway-00000001000000000001/config.toml"
NEW_CONFIG = "gateway-00000001000000000002/config.toml"
N = "{http://www.edustandaard.nl/oso_gegevensset/2019/dossier}"


def _json(args: list[str], *, code: int = 0) -> dict[str, object]:
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == code, result.output
    value: dict[str, object] = json.loads(result.output)
    return value


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("pull") / "w"
    result = CliRunner().invoke(main, ["demo", "--flow", "pull", "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    return workdir, result.output


def test_the_pull_demo_prints_each_step_and_its_receipts(demo: tuple[Path, str]) -> None:
    _workdir, output = demo
    for step in ("request sent", "accepted", "inzage recorded", "delivered", "imported"):
        assert step in output
    assert output.count("(receipt verified)") == 3
    assert "request delivered" in output


def test_request_list_shows_the_delivered_request_on_both_sides(demo: tuple[Path, str]) -> None:
    workdir, _ = demo
    sent = _json(["request", "list", "--config", str(workdir / NEW_CONFIG), "--side", "sent"])
    received = _json(["request", "list", "--config", str(workdir / OLD_CONFIG)])
    [ours] = sent["requests"]  # type: ignore[misc]
    [theirs] = received["requests"]  # type: ignore[misc]
    assert ours["status"] == theirs["status"] == "delivered"
    assert ours["request_id"] == theirs["request_id"]
    assert "pupil" not in ours and ours["delivery_message_id"]


def test_a_request_id_may_be_given_without_its_urn_uuid_prefix(demo: tuple[Path, str]) -> None:
    """A bare UUID (as people copy it) was "no request … here" for a request that exists."""
    workdir, _ = demo
    config = str(workdir / NEW_CONFIG)
    [ours] = _json(["request", "list", "--config", config, "--side", "sent"])["requests"]  # type: ignore[misc]
    full = str(ours["request_id"])
    bare = full.removeprefix("urn:uuid:")
    assert bare != full
    for given in (bare, bare.upper(), full):
        shown = _json(["request", "show", given, "--config", config])
        assert shown["request_id"] == full, given


def test_request_list_pages_with_limit_and_cursor_and_filters_by_school(
    demo: tuple[Path, str],
) -> None:
    """Every request by default; with --limit, pages that put together give exactly that list,
    the last with no next_cursor; --school keeps one school's (any case)."""
    workdir, _ = demo
    new = str(workdir / NEW_CONFIG)
    base = ["request", "send", "--config", new, "--from", "01AB00", "--to", "00YY00"]
    # at least three, whatever the other tests sent (pupils of this test's own: an open
    # request for a pupil refuses a second one, E486)
    for bsn in ("999999011", "999999163"):
        _json([*base, "--bsn", bsn, "--birth-date", "2015-02-02", "--family-name", "Peters"])
    everything = _json(["request", "list", "--config", new])
    ids = [r["request_id"] for r in everything["requests"]]  # type: ignore[attr-defined]
    assert len(ids) >= 3 and everything["next_cursor"] is None
    pages, cursor = [], None
    while True:
        more = ["--cursor", cursor] if cursor else []
        page = _json(["request", "list", "--config", new, "--limit", "2", *more])
        pages.append([r["request_id"] for r in page["requests"]])  # type: ignore[attr-defined]
        cursor = page["next_cursor"]  # type: ignore[assignment]
        if cursor is None:
            break
        assert len(pages) <= len(ids), "the pages do not end"
    assert [i for p in pages for i in p] == ids and all(len(p) == 2 for p in pages[:-1])
    mine = _json(["request", "list", "--config", new, "--school", "01ab00"])
    assert [r["request_id"] for r in mine["requests"]] == [  # type: ignore[attr-defined]
        r["request_id"]
        for r in everything["requests"]  # type: ignore[attr-defined]
        if r["our_school"] == "01AB00"
    ]
    other = CliRunner().invoke(main, ["request", "list", "--config", new, "--school", "99ZZ00"])
    assert other.exit_code == 2 and other.stdout == ""  # not "(no requests)": a typing error
    assert "OSO-E620" in other.stderr and "--school 99ZZ00" in other.stderr
    text = CliRunner().invoke(main, ["request", "list", "--config", new, "--limit", "1"])
    assert text.exit_code == 0 and "more: --cursor " in text.output
    bad = CliRunner().invoke(main, ["request", "list", "--config", new, "--cursor", "x1"])
    assert bad.exit_code == 2 and "--cursor" in bad.output


def test_request_send_answer_decline_withdraw_and_inzage_by_hand(demo: tuple[Path, str]) -> None:
    workdir, _ = demo
    new, old = str(workdir / NEW_CONFIG), str(workdir / OLD_CONFIG)
    data = generate_dossier(overstap="POVO", seed=2019, now=datetime.now(UTC))
    leerling = etree.fromstring(data).find(f"{N}huidigeschool/{N}leerling")
    assert leerling is not None
    pupil = [
        "--bsn",
        leerling.findtext(N + "bsn") or "",
        "--birth-date",
        leerling.findtext(N + "geboortedatum") or "",
        "--family-name",
        leerling.findtext(N + "achternaam") or "",
    ]
    base = ["request", "send", "--config", new, "--from", "01AB00", "--to", "00YY00"]
    # the requests are queued; the old school's gateway is not running, so nothing is delivered
    first = _json([*base, *pupil])
    assert first["status"] == "sent"
    # the same pupil again while the first is open: refused, naming the first (E486)
    duplicate = _json([*base, *pupil], code=1)
    assert duplicate["error"] == "OSO-E486"
    assert duplicate["duplicate_of"] == first["request_id"]
    assert str(first["request_id"]) in str(duplicate["detail"])
    human = CliRunner().invoke(main, [*base, *pupil])
    assert human.exit_code == 1 and "OSO-E486" in human.output
    assert pupil[1] not in human.output  # the request and the schools, never the pupil
    shown = _json(["request", "show", str(first["request_id"]), "--config", new])
    assert shown["pupil"]["bsn"] == leerling.findtext(N + "bsn")  # type: ignore[index]
    withdrawn = _json(["request", "withdraw", str(first["request_id"]), "--config", new])
    assert withdrawn["status"] == "withdrawn"
    # withdrawn again (a retry): answered as the first was, not refused as a step too late
    again = _json(["request", "withdraw", str(first["request_id"]), "--config", new])
    assert again == {**withdrawn, "updated_at": again["updated_at"]}
    assert again["updated_at"] == withdrawn["updated_at"]
    second = _json([*base, *pupil])  # the first is withdrawn: the pupil may be asked for again
    assert second["status"] == "sent" and second["request_id"] != first["request_id"]
    unknown = _json(["request", "answer", str(second["request_id"]), "--config", old,
                     "--ready-by", "2030-01-01"], code=1)  # fmt: skip
    assert unknown["error"] == "OSO-E473"  # never delivered to the old school
    bad = _json([*base, "--bsn", "123456789", "--birth-date", "2015-01-01",
                 "--family-name", "X"], code=1)  # fmt: skip
    assert bad["error"] == "OSO-E483"


def test_an_inzage_and_a_waiver_at_once_is_a_usage_error(demo: tuple[Path, str]) -> None:
    """Not the waiver's refusal ("policy does not allow a waiver"), as it was."""
    workdir, _ = demo
    result = CliRunner().invoke(
        main,
        ["inzage", "record", "urn:uuid:00000000-0000-4000-8000-000000000001", "--date",
         "2026-01-05", "--how", "paper", "--waive", "no show", "--config",
         str(workdir / OLD_CONFIG)],
    )  # fmt: skip
    assert result.exit_code == 2 and "not both" in result.output
    push = CliRunner().invoke(
        main,
        ["inzage", "record", "--school", "00YY00", "--pupil-id", "999999187", "--waive", "x",
         "--previewed", "0123456789abcdef", "--config", str(workdir / OLD_CONFIG)],
    )  # fmt: skip
    assert push.exit_code == 2 and "not both" in push.output
    odd = CliRunner().invoke(
        main,
        ["inzage", "record", "--school", "00YY00", "--pupil-id", "999999187", "--date",
         "2026-01-05", "--how", "paper", "--previewed", "Jansen", "--config",
         str(workdir / OLD_CONFIG)],
    )  # fmt: skip
    assert odd.exit_code == 2 and "16 hex digits" in odd.output and "Jansen" not in odd.output


def test_request_send_reads_the_pupil_from_standard_input(demo: tuple[Path, str]) -> None:
    """``--pupil -`` keeps the BSN, name and birth date off the command line (the process list
    and the shell's history; found by a helper's privacy review)."""
    workdir, _ = demo
    new = str(workdir / NEW_CONFIG)
    base = ["request", "send", "--config", new, "--from", "01AB00", "--to", "00YY00", "--json"]
    # a pupil of this test's own (another test's open request for one would refuse it, E486)
    pupil = {"bsn": "999999023", "birth_date": "2015-02-02", "family_name": "Peters"}
    sent = CliRunner().invoke(main, [*base, "--pupil", "-"], input=json.dumps(pupil))
    assert sent.exit_code == 0, sent.output
    request_id = json.loads(sent.output)["request_id"]
    shown = _json(["request", "show", request_id, "--config", new])
    human = CliRunner().invoke(main, ["request", "show", request_id, "--config", new])
    assert human.exit_code == 0 and "events:" in human.output
    assert "{'" not in human.output and "sent" in human.output  # events as lines, not dicts
    shown_pupil = shown["pupil"]
    assert isinstance(shown_pupil, dict)
    assert {k: shown_pupil.get(k) for k in pupil} == pupil
    both = CliRunner().invoke(main, [*base, "--pupil", "-", "--bsn", "1"], input="{}")
    assert both.exit_code == 2 and "either" in both.output
    # from a school this gateway does not serve: said so, not a mandate refusal (E463 "has not
    # mandated OIN …": an administrator's walkthrough)
    other = [a if a != "01AB00" else "00YY00" for a in base]
    foreign = CliRunner().invoke(main, [*other, "--pupil", "-"], input=json.dumps(pupil))
    assert foreign.exit_code == 2 and "00YY00 is not one of this gateway's" in foreign.output
    for bad in ("not json", '{"bsn": 999999187}', '{"shoe_size": "42"}', '{"birth_date": "x"}'):
        refused = CliRunner().invoke(main, [*base, "--pupil", "-"], input=bad)
        assert refused.exit_code == 2, bad
        assert "999999187" not in refused.output
    # the CLI refuses what the school API refuses (a NUL gave a raw lxml traceback, a bidi
    # override was sent to the other school; found by a helper's walkthrough)
    for name in ("Pe\u0000ters", "Peters\u202e", "Jan\u0085"):
        odd = CliRunner().invoke(
            main, [*base, "--pupil", "-"], input=json.dumps({**pupil, "family_name": name})
        )
        assert odd.exit_code == 1 and "OSO-E483" in odd.output, (name, odd.output)
    missing = CliRunner().invoke(main, [*base, "--bsn", "999999187"])
    assert missing.exit_code == 2 and "birth date and a family name" in missing.output


def test_inzage_record_for_a_push_and_decline_usage(demo: tuple[Path, str]) -> None:
    workdir, _ = demo
    old = str(workdir / OLD_CONFIG)
    recorded = _json(["inzage", "record", "--config", old, "--school", "00YY00", "--pupil-id",
                      "999999187", "--date", "2026-01-05", "--how", "paper"])  # fmt: skip
    assert recorded == {"recorded": "inzage", "school": "00YY00"}
    # the BSN from standard input, as every privacy command takes it (it was refused as a
    # failed 11-proef of "-": found by a helper's walkthrough)
    piped = CliRunner().invoke(
        main,
        ["inzage", "record", "--config", old, "--school", "00YY00", "--pupil-id", "-",
         "--date", "2026-01-06", "--how", "digital", "--json"],
        input="999999187\n",
    )  # fmt: skip
    assert piped.exit_code == 0 and json.loads(piped.output)["recorded"] == "inzage", piped.output
    refused = _json(["inzage", "record", "--config", old, "--school", "00YY00", "--pupil-id",
                     "999999187", "--waive", "onbereikbaar"], code=1)  # fmt: skip
    assert refused["error"] == "OSO-E472"
    assert "policy does not allow a waiver" in refused["detail"]  # --json says why as well
    result = CliRunner().invoke(main, ["request", "decline", "x", "--config", old])
    assert result.exit_code == 2  # --reason is required


def test_the_receiving_inbox_links_the_dossier_to_its_request(demo: tuple[Path, str]) -> None:
    workdir, _ = demo
    config = str(workdir / NEW_CONFIG)
    result = CliRunner().invoke(main, ["--config", config, "inbox", "list", "--json"])
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)["items"]
    requests = _json(["request", "list", "--config", config, "--status", "delivered"])
    [request] = requests["requests"]  # type: ignore[misc]
    assert [(i["message_id"], i["request_id"]) for i in items] == [
        (request["delivery_message_id"], request["request_id"])
    ]


def test_an_erased_request_is_shown_as_its_tombstone(demo: tuple[Path, str]) -> None:
    """After ``subject erase`` a closed request still shows its status and history, with no
    pupil, rather than failing with OSO-E543 (its content is gone, not the request)."""
    workdir, _ = demo
    new = str(workdir / NEW_CONFIG)
    base = ["request", "send", "--config", new, "--from", "01AB00", "--to", "00YY00", "--json"]
    pupil = {"bsn": "111222333", "birth_date": "2014-03-03", "family_name": "Visser"}
    sent = CliRunner().invoke(main, [*base, "--pupil", "-"], input=json.dumps(pupil))
    assert sent.exit_code == 0, sent.output
    request_id = json.loads(sent.output)["request_id"]
    assert _json(["request", "withdraw", request_id, "--config", new])["status"] == "withdrawn"
    erase = ["subject", "erase", "--config", new, "--bsn", "-", "--yes", "--json"]
    erased = CliRunner().invoke(main, erase, input="111222333\n")
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.output)["erased_requests"] == [request_id]
    shown = _json(["request", "show", request_id, "--config", new])
    assert shown["purged"] is True and shown["pupil"] is None
    assert shown["status"] == "withdrawn"
    events = shown["events"]
    assert isinstance(events, list) and events[-1]["code"] == "purged"
    human = CliRunner().invoke(main, ["request", "show", request_id, "--config", new])
    assert human.exit_code == 0 and "111222333" not in human.output


def test_request_show_prints_the_preview_a_line_per_category(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It printed the held dossier's preview as a Python dict (found by a helper's
    walkthrough)."""
    from datetime import UTC, datetime

    from oso_gateway.commands.request import _print
    from oso_gateway.dossier.generator import generate_dossier
    from oso_gateway.dossier.preview import preview
    from oso_gateway.security.xmlparse import parse_xml

    data = generate_dossier(overstap="POVO", seed=5, now=datetime.now(UTC))
    shown = preview(parse_xml(data).getroot()).as_dict()
    _print({"request_id": "urn:uuid:x", "preview": {**shown, "version": "0123456789abcdef"}})
    out = capsys.readouterr().out
    assert "{'" not in out and "preview (per category" in out
    assert "  leerling: shared (" in out
    assert "  version: 0123456789abcdef" in out  # the version the inzage names


def test_a_decline_text_may_come_from_standard_input() -> None:
    """A decline's free text may name the pupil: on the command line it stays in the shell's
    history and the process list, so `-` reads it from standard input (a privacy
    walkthrough), for a request's decline and an inbox decline alike."""
    import click

    from oso_gateway.commands.db import text_from_stdin

    @click.command()
    @click.option("--text", callback=text_from_stdin)
    def echo(text: str) -> None:
        click.echo(repr(text))

    runner = CliRunner()
    piped = runner.invoke(echo, ["--text", "-"], input="De leerling is verhuisd.\nNaar Gent.\n")
    assert piped.output.strip() == repr("De leerling is verhuisd.\nNaar Gent.")
    assert runner.invoke(echo, ["--text", "as typed"]).output.strip() == repr("as typed")
    for group, command, option in (("request", "decline", "text"), ("inbox", "decline", "reason")):
        declined = main.commands[group].commands[command]  # type: ignore[attr-defined]
        [param] = [p for p in declined.params if p.name == option]
        assert param.callback is text_from_stdin, (group, command)
