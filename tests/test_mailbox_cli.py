"""`oso-gateway inbox|outbox ...` on the gateways `demo --workdir W` leaves behind (--config)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from oso_gateway.cli import main
from oso_gateway.dossier.categories import present_keys
from oso_gateway.dossier.validate import validate_dossier

pytestmark = pytest.mark.integration

SENDER = "gateway-00000001000000000001"
RECEIVER = "gateway-00000001000000000002"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(main, ["demo", "--workdir", str(work)])
    assert result.exit_code == 0, result.output
    assert str(work / RECEIVER / "config.toml") in result.output  # the demo names its configs
    yield work


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def inbox_id(config: Path) -> str:
    code, out = run("--config", str(config), "inbox", "list", "--json")
    assert code == 0, out
    items = json.loads(out)["items"]
    assert len(items) == 1
    return str(items[0]["message_id"])


def test_receiving_gateway_lists_the_demo_dossier_with_metadata_only(demo: Path) -> None:
    code, out = run("--config", str(demo / RECEIVER / "config.toml"), "inbox", "list", "--json")
    assert code == 0, out
    (item,) = json.loads(out)["items"]
    assert item["status"] == "imported"
    assert item["school"] == "01AB00" and item["counterpart_school"] == "00YY00"
    assert "toetsresultaten" not in item["categories"]  # opted out: removed by the sender
    assert "leerling" in item["categories"]
    assert set(item) >= {"message_id", "created_at", "size_bytes", "payload_digest"}
    # the per-command --config works as well as the top-level one
    code2, out2 = run("inbox", "list", "--json", "--config", str(demo / RECEIVER / "config.toml"))
    assert code2 == 0 and json.loads(out2)["items"] == [item]


def test_export_writes_schema_and_rule_valid_xml_without_the_withheld_category(
    demo: Path, tmp_path: Path
) -> None:
    from oso_gateway.dossier.generator import generate_dossier

    config = demo / RECEIVER / "config.toml"
    message_id = inbox_id(config)
    out = tmp_path / "d.xml"
    code, text = run("--config", str(config), "inbox", "export", message_id, "--out", str(out))
    assert code == 0, text
    data = out.read_bytes()
    assert validate_dossier(data, now=datetime.now(UTC)).valid
    root = etree.fromstring(data)
    assert "toetsresultaten" not in present_keys(root)
    sent = etree.fromstring(generate_dossier(overstap="POVO", seed=2019, now=datetime.now(UTC)))
    ns = {"d": root.nsmap[None]}
    for name in ("bsn", "achternaam"):
        path = f"string(.//d:leerling/d:{name})"
        assert root.xpath(path, namespaces=ns) == sent.xpath(path, namespaces=ns) != ""


def test_a_message_id_without_its_urn_prefix_is_found(demo: Path) -> None:
    config = str(demo / RECEIVER / "config.toml")
    message_id = inbox_id(demo / RECEIVER / "config.toml")
    bare = message_id.removeprefix("urn:uuid:").upper()
    code, out = run("--config", config, "inbox", "show", bare, "--json")
    assert code == 0, out
    assert json.loads(out)["message_id"] == message_id
    # or by the start of its UUID, as `log list` shows it (`log show` took that; these did not)
    short = message_id.removeprefix("urn:uuid:")[:8]
    code, out = run("--config", config, "inbox", "show", short, "--json")
    assert code == 0, out
    assert json.loads(out)["message_id"] == message_id
    exported = CliRunner().invoke(
        main, ["--config", config, "inbox", "export", short, "--out", "-", "--json"]
    )
    assert exported.exit_code == 0 and json.loads(exported.stderr)["message_id"] == message_id
    sender = str(demo / SENDER / "config.toml")
    code, out = run("--config", sender, "outbox", "show", short, "--json")
    assert code == 0 and json.loads(out)["message_id"] == message_id  # the sender's copy
    code, out = run("--config", config, "outbox", "show", short)
    assert code == 1 and "OSO-E602" in out and "no message in the outbox" in out


def test_an_unknown_status_filter_is_a_usage_error(demo: Path) -> None:
    config = str(demo / RECEIVER / "config.toml")
    code, out = run("--config", config, "inbox", "list", "--status", "imported")
    assert code == 0
    code, out = run("--config", config, "inbox", "list", "--status", "bogus")
    assert code == 2 and "not a status of the inbox" in out and "imported" in out
    code, out = run("--config", config, "outbox", "list", "--status", "imported")
    assert code == 2 and "not a status of the outbox (" in out and "_view" not in out
    # --since takes a span back from now, as log list does (found by an operator)
    code, out = run("--config", config, "inbox", "list", "--since", "24h", "--json")
    assert code == 0 and len(json.loads(out)["items"]) == 1, out
    code, out = run("--config", config, "inbox", "list", "--since", "yesterday")
    assert code == 2 and "24h" in out


def test_a_decline_reason_with_control_characters_is_refused_on_the_command_line(
    demo: Path,
) -> None:
    config = demo / RECEIVER / "config.toml"
    message_id = inbox_id(config)
    for reason in ("not \u001b[31mours", "x\u202ey"):
        code, out = run("--config", str(config), "inbox", "decline", message_id, "--reason", reason)
        assert code == 1 and "OSO-E606" in out, out
    code, out = run("--config", str(config), "inbox", "list", "--json")
    assert json.loads(out)["items"][0]["status"] == "imported"  # nothing changed


def test_export_to_standard_output_writes_the_dossier_alone(demo: Path, tmp_path: Path) -> None:
    """``--out -`` pipes the dossier into the school's system; it wrote a file named "-"."""
    config = demo / RECEIVER / "config.toml"
    message_id = inbox_id(config)
    result = CliRunner().invoke(
        main, ["--config", str(config), "inbox", "export", message_id, "--out", "-", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith(b"<?xml")
    assert validate_dossier(result.stdout_bytes, now=datetime.now(UTC)).valid
    assert json.loads(result.stderr)["out"] == "-"
    assert not Path("-").exists()


def test_an_output_file_that_cannot_be_written_is_an_error_with_a_code(
    demo: Path, tmp_path: Path
) -> None:
    """A missing directory gave a raw FileNotFoundError traceback (found by a walkthrough)."""
    config = demo / RECEIVER / "config.toml"
    message_id = inbox_id(config)
    for out in (tmp_path / "nodir" / "x.xml", Path("/etc/passwd/x")):
        code, text = run("--config", str(config), "inbox", "export", message_id, "--out", str(out))
        assert code == 1 and "OSO-E562" in text and str(out) in text, text
        assert "Traceback" not in text
    code, text = run(
        "--config",
        str(config),
        "log",
        "export",
        "--format",
        "csv",
        "--out",
        str(tmp_path / "n" / "l"),
    )
    assert code == 1 and "OSO-E562" in text


def test_export_json_and_categories_keep_only_the_chosen_and_required(
    demo: Path, tmp_path: Path
) -> None:
    config = demo / RECEIVER / "config.toml"
    message_id = inbox_id(config)
    out = tmp_path / "d.json"
    code, text = run(
        "--config", str(config), "inbox", "export", message_id, "--out", str(out),
        "--format", "json", "--categories", "verzuim",
    )  # fmt: skip
    assert code == 0, text
    body = json.loads(out.read_text())
    assert body["format"].startswith("oso-gegevensset-2019+json")
    leerling = body["dossier"]["huidigeschool"]["leerling"]
    assert "verzuimlijst" in json.dumps(leerling) or "verzuim" in json.dumps(leerling)
    assert "schoolloopbaanlijst" not in leerling and "verzorger" not in leerling
    assert isinstance(body["dossier"]["huidigeschool"]["adreslijst"]["adres"], list)
    code, text = run(
        "--config", str(config), "inbox", "export", message_id, "--out", str(out),
        "--categories", "nosuch",
    )  # fmt: skip
    # a usage error (exit 2), as `objection add --category nosuch` is (it exited 1)
    assert code == 2 and "OSO-E612" in text


def test_sending_gateway_shows_it_delivered_with_a_verified_receipt(demo: Path) -> None:
    config = demo / SENDER / "config.toml"
    code, out = run("--config", str(config), "outbox", "list", "--json")
    assert code == 0, out
    (item,) = json.loads(out)["items"]
    assert item["status"] == "delivered"
    code, out = run("--config", str(config), "outbox", "show", item["message_id"], "--json")
    shown = json.loads(out)
    assert shown["receipt"]["verified"] is True
    assert shown["receipt"]["payload_digest"] == item["payload_digest"]
    # the receipt's size is of the bytes its digest covers, as the sender counts them (it
    # counted the receiver's stored document, 39 bytes of XML declaration more)
    assert shown["receipt"]["payload_bytes"] == item["size_bytes"]
    code, out = run("--config", str(demo / RECEIVER / "config.toml"), "inbox", "list", "--json")
    (received,) = json.loads(out)["items"]
    assert received["size_bytes"] == item["size_bytes"]  # one size for one transfer
    assert received["payload_digest"] == item["payload_digest"]
    assert [e["status"] for e in shown["events"]][-1] == "delivered"
    code, out = run("--config", str(config), "outbox", "cancel", item["message_id"])
    assert code == 1 and "OSO-E605" in out  # delivered: too late to cancel


def test_a_school_scope_hides_other_schools_messages(demo: Path) -> None:
    config = demo / RECEIVER / "config.toml"
    message_id = inbox_id(config)
    code, out = run("--config", str(config), "inbox", "show", message_id, "--school", "02CD00")
    assert code == 2 and "OSO-E620" in out  # not served here: a mistyped code, not "no such"
    # a school this gateway does not serve is an error, not an empty list (exit 0 with
    # "(no messages)" and a note listing all 300 served schools: a vendor's walkthrough); a
    # malformed code is no school at all
    for command in (["outbox", "list"], ["inbox", "list"], ["request", "list"],
                    ["outbox", "retry-failed", "--yes"], ["inbox", "ack", message_id]):  # fmt: skip
        listed = CliRunner().invoke(
            main, ["--config", str(config), *command, "--school", "02cd00", "--json"]
        )
        assert listed.exit_code == 2 and listed.stdout == "", (command, listed.output)
        assert "OSO-E620" in listed.stderr and "--school 02CD00" in listed.stderr
        assert "directory show --served" in listed.stderr and "01AB00" not in listed.stderr
    for command in (["outbox", "list"], ["inbox", "list"], ["request", "list"]):
        for option in ("--school", "--counterpart"):
            if option == "--counterpart" and command[0] == "request":
                continue
            code, out = run("--config", str(config), *command, option, "zz")
            assert code == 2 and "BRIN (4 characters) + vestiging" in out, (command, option)


def test_a_school_no_longer_served_is_still_listed_with_a_note(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the gateway holds for a school it served before the directory changed stays
    listed: only a school it holds nothing for is a typing error (OSO-E620)."""
    from oso_gateway.transfer.services import GatewayServices

    config = demo / RECEIVER / "config.toml"
    message_id = inbox_id(config)
    monkeypatch.setattr(GatewayServices, "schools", lambda _self: ())
    listed = CliRunner().invoke(
        main, ["--config", str(config), "inbox", "list", "--school", "01AB00", "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert [i["message_id"] for i in json.loads(listed.stdout)["items"]] == [message_id]
    assert "does not serve school 01AB00 now" in listed.stderr


def test_ack_then_decline_drops_the_content_and_keeps_the_record(
    demo: Path, tmp_path: Path
) -> None:
    config = demo / RECEIVER / "config.toml"
    message_id = inbox_id(config)
    code, out = run("--config", str(config), "inbox", "ack", message_id, "--json")
    assert code == 0 and json.loads(out)["status"] == "fetched"
    code, out = run(
        "--config", str(config), "inbox", "decline", message_id, "--reason", "wrong school",
        "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["status"] == "declined"
    code, out = run("--config", str(config), "inbox", "show", message_id, "--json")
    shown = json.loads(out)
    assert shown["decline_reason"] == "wrong school"
    assert [e["status"] for e in shown["events"]][-2:] == ["fetched", "declined"]
    code, out = run(
        "--config", str(config), "inbox", "export", message_id, "--out", str(tmp_path / "x")
    )
    assert code == 1 and "OSO-E611" in out
    code, out = run("--config", str(config), "log", "list", "--json")
    assert "wrong school" not in out  # the reason is never logged
    assert re.search(r"declined", out)


def test_a_purged_dossier_is_marked_in_the_list_and_its_fetch_says_e530(tmp_path: Path) -> None:
    """`inbox list` showed an erased dossier as plain `imported` (found by a helper's
    walkthrough); it keeps its status and now says its content was erased."""
    result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    config = str(tmp_path / "w" / RECEIVER / "config.toml")
    message_id = inbox_id(Path(config))
    code, out = run("--config", config, "inbox", "list")
    assert code == 0 and "content erased" not in out
    code, out = run("--config", config, "retention", "purge", "--older-than", "0s")
    assert code == 2 and "pass --yes" in out  # no terminal to ask on: not a silent "Aborted!"
    code, out = run("--config", config, "retention", "purge", "--older-than", "0s", "--yes")
    assert code == 0, out
    code, out = run("--config", config, "inbox", "list")
    assert code == 0 and message_id in out
    today = datetime.now(UTC).date().isoformat()
    assert f"imported         {message_id}" in out and f"(content erased {today})" in out
    code, out = run("--config", config, "inbox", "export", message_id, "--out", "-")
    assert code == 1 and "OSO-E530" in out and "purged" in out
