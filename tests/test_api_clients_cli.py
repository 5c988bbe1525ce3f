"""`oso-gateway api-client add|list|revoke` and `oso-gateway api spec`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
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
    outs = iter(tmp_path / f"credentials-{i}.jsonl" for i in range(20))

    def bulk(text: str) -> Any:
        out = next(outs)
        result = runner.invoke(
            main,
            ["--config", config, "api-client", "add", "--from-file", "-", "--out", str(out)],
            input=text,
        )
        return result, out

    lines = [
        {"name": "LAS Noord", "schools": ["02cd00"]},
        {"name": "LAS Zuid", "schools": ["03EF00", "02CD00"]},
    ]
    text = "\n".join(json.dumps(x) for x in lines)
    bad = text + "\n\n" + json.dumps({"name": "LAS Elders", "schools": ["01AB00"]})
    refused, out = bulk(bad)
    assert refused.exit_code == 2 and "line 4" in refused.output and "01AB00" in refused.output
    assert _listed(config) == [] and not out.exists()  # none made, no file left
    twice = text + "\n" + json.dumps(lines[0])
    assert "line 3" in bulk(twice)[0].output  # a name once only
    twice = text + "\n" + json.dumps({"name": "LAS ZUID", "schools": ["02CD00"]})
    assert "line 3" in bulk(twice)[0].output  # in any case
    for garbage, message in (("{", "line 1: not JSON"), ('{"name": "x"}', "line 1: give"),
                             ("\n\n", "holds no clients")):  # fmt: skip
        result, _out = bulk(garbage)
        assert result.exit_code == 2 and message in result.output, result.output
        assert "OSO-E616" in result.output  # coded, as a refused line's content is
    made, out = bulk("\ufeff" + text + "\n\n")  # a BOM, as Windows tools write
    assert made.exit_code == 0, made.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["name"], r["schools"]) for r in rows] == [
        ("LAS Noord", ["02CD00"]),
        ("LAS Zuid", ["03EF00", "02CD00"]),
    ]
    assert all(r["credential"].startswith(r["client_id"] + ".") for r in rows)
    assert "2 API clients made" in made.output and rows[0]["credential"] not in made.output
    assert {r["client_id"] for r in _listed(config)} == {r["client_id"] for r in rows}
    again, _out = bulk(text)  # the same list run twice: nothing new
    assert again.exit_code == 2 and "already" in again.output and len(_listed(config)) == 2
    # nor one written another way ("LAS-A " and "las-a" passed beside "LAS-A": a review)
    other_case = json.dumps({"name": "las  noord ", "schools": ["02CD00"]})
    near, _out = bulk(other_case)
    assert near.exit_code == 2 and "named 'LAS Noord' already" in near.output, near.output
    assert len(_listed(config)) == 2
    base = ["--config", config, "api-client", "add", "--from-file", "-"]
    both = runner.invoke(main, [*base, "LAS", "--school", "02CD00"], input="")
    assert both.exit_code == 2 and "not both" in both.output
    to_a_pipe = runner.invoke(main, base, input=text)  # a pipe can lose them unseen
    assert to_a_pipe.exit_code == 2 and "give --out" in to_a_pipe.output
    neither = runner.invoke(main, ["--config", config, "api-client", "add", "LAS"])
    assert neither.exit_code == 2 and "--school" in neither.output


def test_bulk_credentials_go_to_a_new_private_file_or_are_revoked(tmp_path: Path) -> None:
    """A credential no one received is not left active (2,000 were, after `| head -1`: a
    walkthrough); the file is new and the owner's alone (an existing one kept its owner: a
    review)."""
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    runner = CliRunner()
    entries = "\n".join(json.dumps({"name": f"LAS {i}", "schools": ["02CD00"]}) for i in range(3))
    base = ["--config", config, "api-client", "add", "--from-file", "-", "--out"]
    out = tmp_path / "credentials.jsonl"
    made = runner.invoke(main, [*base, str(out)], input=entries)
    assert made.exit_code == 0, made.output
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert len(out.read_text().splitlines()) == 3
    theirs = tmp_path / "theirs.jsonl"
    theirs.write_text("")
    theirs.chmod(0o644)
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "elsewhere.jsonl")
    for taken in (out, theirs, link, tmp_path / "no" / "f"):
        refused = runner.invoke(main, [*base, str(taken)], input=entries.replace("LAS", "X"))
        assert refused.exit_code == 2, refused.output
    assert theirs.read_text() == "" and not (tmp_path / "elsewhere.jsonl").exists()
    assert len(_listed(config)) == 3  # stopped before any was made

    import oso_gateway.commands.api as api_module

    real_json = api_module._json
    calls = []

    def fails_on_the_second(record: Any) -> dict[str, Any]:
        calls.append(record)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_json(record)

    more = "\n".join(json.dumps({"name": f"LAS x{i}", "schools": ["02CD00"]}) for i in range(2))
    api_module._json = fails_on_the_second  # type: ignore[assignment]
    try:
        lost = runner.invoke(main, [*base, str(tmp_path / "full.jsonl")], input=more)
    finally:
        api_module._json = real_json  # type: ignore[assignment]
    assert lost.exit_code != 0 and "were revoked" in lost.output
    assert not (tmp_path / "full.jsonl").exists()
    revoked = [r for r in _listed(config) if str(r["name"]).startswith("LAS x")]
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


def test_a_list_that_fails_part_way_makes_no_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All in one transaction: a failure at the second client left the first one active, its
    credential shown to no one (a review). Here the second gets the first one's id."""
    from datetime import UTC, datetime

    from oso_gateway.runtime import build_services
    from oso_gateway.store.api_clients import ApiClientStore, DuplicateClient
    from oso_gateway.transfer import apiclients as module

    services = build_services(setup_dev_gateways(tmp_path)[VENDOR_OIN].settings)
    try:
        clients = module.ApiClients(ApiClientStore(services.store.engine), served=services.schools)
        monkeypatch.setattr(module.secrets, "token_hex", lambda _n: "0123456789abcdef")
        entries = [(1, "LAS a", ["02CD00"]), (2, "LAS b", ["03EF00"])]
        with pytest.raises(DuplicateClient):
            clients.add_many(entries, now=datetime.now(UTC))
        assert clients.list() == []
    finally:
        services.close()


def _cli(config: str, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["--config", config, "api-client", *args], input=input)


def test_one_client_add_refuses_an_active_clients_name_as_the_list_does(tmp_path: Path) -> None:
    """`add "LAS X"` made a second active client of one name while --from-file refused it."""
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    first = _cli(config, "add", "LAS X", "--school", "02CD00", "--json")
    assert first.exit_code == 0, first.output
    for name in ("LAS X", "las  x ", "LAS X"):
        again = _cli(config, "add", name, "--school", "03EF00")
        assert again.exit_code == 2 and "OSO-E616" in again.output, again.output
        assert "named 'LAS X' already" in again.output
    assert len(_listed(config)) == 1
    assert _cli(config, "revoke", json.loads(first.output)["client_id"]).exit_code == 0
    assert _cli(config, "add", "LAS X", "--school", "03EF00").exit_code == 0  # revoked: free


def test_a_list_with_a_line_appended_runs_again_with_skip_existing(tmp_path: Path) -> None:
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    lines = [
        json.dumps({"name": "LAS Noord", "schools": ["02CD00"]}),
        json.dumps({"name": "LAS Zuid", "schools": ["03EF00", "02CD00"]}),
    ]
    outs = iter(tmp_path / f"credentials-{i}.jsonl" for i in range(10))

    def bulk(text: str, *more: str) -> tuple[Any, Path]:
        out = next(outs)
        args = ["add", "--from-file", "-", "--out", str(out), *more]
        return _cli(config, *args, input=text), out

    assert bulk("\n".join(lines))[0].exit_code == 0
    appended = "\n".join([*lines, json.dumps({"name": "LAS West", "schools": ["03EF00"]})])
    refused, _out = bulk(appended)  # without the flag: as before, nothing made
    assert refused.exit_code == 2 and "line 1" in refused.output and len(_listed(config)) == 2
    made, out = bulk(appended, "--skip-existing", "--json")
    assert made.exit_code == 0, made.output
    body = json.loads(made.output)
    assert [r["name"] for r in body["made"]] == ["LAS West"]
    assert [(r["line"], r["name"]) for r in body["skipped"]] == [(1, "LAS Noord"), (2, "LAS Zuid")]
    assert [json.loads(x)["name"] for x in out.read_text().splitlines()] == ["LAS West"]
    assert len(_listed(config)) == 3
    text, out = bulk(appended, "--skip-existing")  # all there: nothing made, no empty file
    assert text.exit_code == 0 and "skipped line 3: LAS West" in text.output
    assert "no API client made" in text.output and not out.exists()
    other = lines[1] + "\n" + json.dumps({"name": "las noord", "schools": ["03EF00"]})
    moved, _out = bulk(other, "--skip-existing")  # the same name, other schools: an error
    assert moved.exit_code == 2 and "line 2" in moved.output and "other schools" in moved.output
    assert len(_listed(config)) == 3
    alone = _cli(config, "add", "LAS", "--school", "02CD00", "--skip-existing")
    assert alone.exit_code == 2 and "goes with --from-file" in alone.output


def test_revoke_many_by_school_or_list_all_or_none_and_a_coded_unknown(tmp_path: Path) -> None:
    """One at a time took 2.6 s each; an unknown client said "error: no API client x" with
    no code."""
    config = str(setup_dev_gateways(tmp_path)[VENDOR_OIN].config_file)
    ids = {}
    for name, school in (("LAS a", "02CD00"), ("LAS b", "02CD00"), ("LAS c", "03EF00")):
        added = _cli(config, "add", name, "--school", school, "--json")
        ids[name] = json.loads(added.output)["client_id"]
    unknown = _cli(config, "revoke", "nonexist")
    assert unknown.exit_code == 1 and "OSO-E624" in unknown.output, unknown.output
    # a credential pasted in an id's place is not echoed (it was, whole: a review)
    pasted = _cli(config, "revoke", "c-0123456789abcdef.s3cr3tSECRETs3cr3tSECRETs3cr3t")
    assert pasted.exit_code == 1 and "OSO-E624" in pasted.output
    assert "s3cr3t" not in pasted.output
    listed = "\n".join([ids["LAS a"], "las B", "nonexist", ""])
    none = _cli(config, "revoke", "--from-file", "-", input=listed)
    assert none.exit_code == 1 and "OSO-E624" in none.output and "line 3" in none.output
    assert all(r["revoked_at"] is None for r in _listed(config))  # all or none
    done = _cli(
        config, "revoke", "--from-file", "-", "--json", input=listed.replace("nonexist", "")
    )
    assert done.exit_code == 0, done.output
    assert sorted(r["name"] for r in json.loads(done.output)) == ["LAS a", "LAS b"]
    by_school = _cli(config, "revoke", "--school", "03ef00", "--json")
    assert [r["client_id"] for r in json.loads(by_school.output)] == [ids["LAS c"]]
    assert all(r["revoked_at"] for r in _listed(config))
    empty = _cli(config, "revoke", "--school", "02CD00")  # no active client left
    assert empty.exit_code == 1 and "OSO-E624" in empty.output
    again = _cli(config, "revoke", ids["LAS a"])  # an id revoked before: no change, no error
    assert again.exit_code == 0 and f"revoked {ids['LAS a']}" in again.output
    both = _cli(config, "revoke", ids["LAS a"], "--school", "02CD00")
    assert both.exit_code == 2 and "one of them" in both.output
