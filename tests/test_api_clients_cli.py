"""`oso-gateway api-client add|list|revoke` and `oso-gateway api spec`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from oso_gateway.cli import main
from oso_gateway.transfer.demo import VENDOR_OIN, setup_dev_gateways


def test_add_shows_the_secret_once_list_never_and_revoke_marks_it(tmp_path: Path) -> None:
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    runner = CliRunner()
    added = runner.invoke(
        main, ["--config", config, "api-client", "add", "LAS Noord", "--school", "02CD00", "--json"]
    )
    assert added.exit_code == 0, added.output
    body = json.loads(added.output)
    client_id, credential = body["client_id"], body["credential"]
    assert credential.startswith(client_id + ".") and body["schools"] == ["02CD00"]
    listed = runner.invoke(main, ["--config", config, "api-client", "list", "--json"])
    assert json.loads(listed.output)[0]["client_id"] == client_id
    assert credential.split(".")[1] not in listed.output
    stored = (Path(config).parent / "gateway.sqlite").read_bytes()
    assert credential.split(".")[1].encode() not in stored  # only its hash is stored
    revoked = runner.invoke(main, ["--config", config, "api-client", "revoke", client_id])
    assert revoked.exit_code == 0
    listed = runner.invoke(main, ["--config", config, "api-client", "list", "--json"])
    assert json.loads(listed.output)[0]["revoked_at"] is not None


def test_a_client_only_for_schools_the_gateway_serves(tmp_path: Path) -> None:
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    for school, code in (("01AB00", "OSO-E616"), ("bogus", "OSO-E616")):
        result = CliRunner().invoke(
            main, ["--config", config, "api-client", "add", "LAS", "--school", school]
        )
        assert result.exit_code == 2 and code in result.output


def test_a_vendor_adds_many_clients_from_one_file_all_or_none(tmp_path: Path) -> None:
    """One process for a vendor's list of schools (300 calls of `add` took ~1 s each); a bad
    line makes no client at all, and says which line."""
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    runner = CliRunner()
    base = ["--config", config, "api-client", "add", "--from-file", "-"]
    lines = [
        {"name": "LAS Noord", "schools": ["02cd00"]},
        {"name": "LAS Zuid", "schools": ["03EF00", "02CD00"]},
    ]
    bad = [*lines, {"name": "LAS Elders", "schools": ["01AB00"]}]
    refused = runner.invoke(main, base, input="\n".join(json.dumps(x) for x in bad))
    assert refused.exit_code == 2 and "entry 3" in refused.output and "01AB00" in refused.output
    listed = runner.invoke(main, ["--config", config, "api-client", "list", "--json"])
    assert json.loads(listed.output) == []  # none made
    for garbage, message in (("{", "line 1: not JSON"), ('{"name": "x"}', "line 1: give"),
                             ("\n\n", "holds no clients")):  # fmt: skip
        result = runner.invoke(main, base, input=garbage)
        assert result.exit_code == 2 and message in result.output, result.output
    made = runner.invoke(main, base, input="\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert made.exit_code == 0, made.output
    rows = [json.loads(line) for line in made.stdout.splitlines()]
    assert [(r["name"], r["schools"]) for r in rows] == [
        ("LAS Noord", ["02CD00"]),
        ("LAS Zuid", ["03EF00", "02CD00"]),
    ]
    assert all(r["credential"].startswith(r["client_id"] + ".") for r in rows)
    assert "2 API clients made" in made.stderr
    listed = runner.invoke(main, ["--config", config, "api-client", "list", "--json"])
    assert {r["client_id"] for r in json.loads(listed.output)} == {r["client_id"] for r in rows}
    both = runner.invoke(main, [*base, "LAS", "--school", "02CD00"], input="")
    assert both.exit_code == 2 and "not both" in both.output
    neither = runner.invoke(main, ["--config", config, "api-client", "add", "LAS"])
    assert neither.exit_code == 2 and "--school" in neither.output


def test_api_spec_prints_an_openapi_3_1_document_with_every_operation() -> None:
    result = CliRunner().invoke(main, ["api", "spec"])
    assert result.exit_code == 0, result.output
    spec = json.loads(result.output)
    assert spec["openapi"] == "3.1.0"
    operations = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    assert operations >= {
        "submitDossier", "dryRunDossier", "listOutbox", "getOutboxMessage",
        "retryOutboxMessage", "cancelOutboxMessage", "listInbox", "getInboxMessage",
        "getInboxDossier", "ackInboxMessage", "declineInboxMessage", "getReceipt",
        "health", "ready",
    }  # fmt: skip
    from openapi_spec_validator import validate

    validate(spec)
