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
    line makes no client at all, and says which line (counted as an editor counts them)."""
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    runner = CliRunner()
    base = ["--config", config, "api-client", "add", "--from-file", "-"]
    lines = [
        {"name": "LAS Noord", "schools": ["02cd00"]},
        {"name": "LAS Zuid", "schools": ["03EF00", "02CD00"]},
    ]
    text = "\n".join(json.dumps(x) for x in lines)
    bad = text + "\n\n" + json.dumps({"name": "LAS Elders", "schools": ["01AB00"]})
    refused = runner.invoke(main, base, input=bad)
    assert refused.exit_code == 2 and "line 4" in refused.output and "01AB00" in refused.output
    assert _listed(config) == []  # none made
    twice = text + "\n" + json.dumps(lines[0])
    assert "line 3" in runner.invoke(main, base, input=twice).output  # a name once only
    for garbage, message in (("{", "line 1: not JSON"), ('{"name": "x"}', "line 1: give"),
                             ("\n\n", "holds no clients")):  # fmt: skip
        result = runner.invoke(main, base, input=garbage)
        assert result.exit_code == 2 and message in result.output, result.output
    made = runner.invoke(main, base, input="\ufeff" + text + "\n\n")  # a BOM, as Windows writes
    assert made.exit_code == 0, made.output
    rows = [json.loads(line) for line in made.stdout.splitlines()]
    assert [(r["name"], r["schools"]) for r in rows] == [
        ("LAS Noord", ["02CD00"]),
        ("LAS Zuid", ["03EF00", "02CD00"]),
    ]
    assert all(r["credential"].startswith(r["client_id"] + ".") for r in rows)
    assert "2 API clients made" in made.stderr
    assert {r["client_id"] for r in _listed(config)} == {r["client_id"] for r in rows}
    again = runner.invoke(main, base, input=text)  # the same list run twice: nothing new
    assert again.exit_code == 2 and "already" in again.output and len(_listed(config)) == 2
    both = runner.invoke(main, [*base, "LAS", "--school", "02CD00"], input="")
    assert both.exit_code == 2 and "not both" in both.output
    neither = runner.invoke(main, ["--config", config, "api-client", "add", "LAS"])
    assert neither.exit_code == 2 and "--school" in neither.output


def test_bulk_credentials_go_to_a_private_file_or_are_revoked(tmp_path: Path) -> None:
    """A credential no one received is not left active: 2,000 were, after `| head -1` (a
    walkthrough); `--out` writes them readable by the owner only."""
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    runner = CliRunner()
    entries = "\n".join(json.dumps({"name": f"LAS {i}", "schools": ["02CD00"]}) for i in range(3))
    out = tmp_path / "credentials.jsonl"
    base = ["--config", config, "api-client", "add", "--from-file", "-"]
    made = runner.invoke(main, [*base, "--out", str(out)], input=entries)
    assert made.exit_code == 0, made.output
    assert made.stdout == "" and f"3 API clients made (credentials in {out})" in made.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert len(out.read_text().splitlines()) == 3
    unwritable = runner.invoke(main, [*base, "--out", str(tmp_path / "no" / "f")], input=entries)
    assert unwritable.exit_code == 2 and len(_listed(config)) == 3  # stopped before any was made

    import oso_gateway.commands.api as api_module

    def closed(self: object, text: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    more = "\n".join(json.dumps({"name": f"LAS x{i}", "schools": ["02CD00"]}) for i in range(2))
    original = api_module._Target.write
    api_module._Target.write = closed  # type: ignore[method-assign]
    try:
        lost = runner.invoke(main, base, input=more)
    finally:
        api_module._Target.write = original  # type: ignore[method-assign]
    assert lost.exit_code == 1 and "were revoked" in lost.stderr
    revoked = [r for r in _listed(config) if r["name"].startswith("LAS x")]
    assert len(revoked) == 2 and all(r["revoked_at"] for r in revoked)


def _listed(config: str) -> list[dict[str, object]]:
    listed = CliRunner().invoke(main, ["--config", config, "api-client", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows: list[dict[str, object]] = json.loads(listed.output)
    return rows


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
