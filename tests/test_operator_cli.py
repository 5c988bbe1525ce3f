"""`oso-gateway operator add | remove | list`: console accounts, argon2id hashes, audit events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from console_support import cheap_hasher

from oso_gateway.cli import main
from oso_gateway.config import load_settings
from oso_gateway.store import OperatorStore, create_store_engine, open_store
from oso_gateway.web import auth


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cheap_hasher(monkeypatch)
    path = tmp_path / "gateway.toml"
    path.write_text('data_dir = "state"\n')
    assert CliRunner().invoke(main, ["db", "upgrade", "--config", str(path)]).exit_code == 0
    return path


def _operators(config: Path) -> OperatorStore:
    return OperatorStore(create_store_engine(load_settings(config, {}).database_url))


def _audit(config: Path) -> list[tuple[str, str]]:
    store = open_store(load_settings(config, {}), require_key=False)
    return [
        (e.event["operation"], e.event["operator"])
        for e in store.log_entries()
        if e.event.get("kind") == "operator"
    ]


def test_add_stores_an_argon2id_hash_and_list_shows_the_account(config: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["operator", "add", "ada", "--role", "admin", "--password-stdin", "--config", str(config)],
        input="a-long-enough-secret\n",
    )
    assert result.exit_code == 0, result.output
    assert "a-long-enough-secret" not in result.output
    account = _operators(config).get("ada")
    assert account is not None and account.role == "admin"
    assert account.password_hash.startswith("$argon2id$")
    assert auth.verify_password(account.password_hash, "a-long-enough-secret")
    assert not auth.verify_password(account.password_hash, "a-long-enough-secreT")
    listed = runner.invoke(main, ["operator", "list", "--config", str(config)])
    assert listed.exit_code == 0 and "ada" in listed.output and "admin" in listed.output
    assert "$argon2" not in listed.output
    assert _audit(config) == [("operator.add", "ada")]


def test_generate_prints_a_password_that_logs_in(config: Path) -> None:
    result = CliRunner().invoke(
        main, ["operator", "add", "vic", "--generate", "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    password = result.output.split("password: ")[1].strip()
    account = _operators(config).get("vic")
    assert account is not None and account.role == "viewer"
    assert auth.verify_password(account.password_hash, password)


def test_the_prompt_asks_twice_and_refuses_short_passwords(config: Path) -> None:
    runner = CliRunner()
    short = runner.invoke(
        main, ["operator", "add", "bob", "--config", str(config)], input="short\nshort\n"
    )
    assert short.exit_code == 2 and "at least" in short.output
    ok = runner.invoke(
        main,
        ["operator", "add", "bob", "--config", str(config)],
        input="twelve-chars-ok\ntwelve-chars-ok\n",
    )
    assert ok.exit_code == 0, ok.output
    assert _operators(config).get("bob") is not None


def test_names_outside_the_log_format_and_duplicates_are_refused(config: Path) -> None:
    runner = CliRunner()
    args = ["--password-stdin", "--config", str(config)]
    bad = runner.invoke(main, ["operator", "add", "Ada Lovelace", *args], input="x" * 20 + "\n")
    assert bad.exit_code == 2 and "a-z" in bad.output
    assert runner.invoke(main, ["operator", "add", "ada", *args], input="x" * 20).exit_code == 0
    again = runner.invoke(main, ["operator", "add", "ada", *args], input="y" * 20 + "\n")
    assert again.exit_code == 1 and "exists" in again.output


def test_remove_deletes_the_account_and_is_audited(config: Path) -> None:
    runner = CliRunner()
    args = ["--password-stdin", "--config", str(config)]
    runner.invoke(main, ["operator", "add", "ada", *args], input="x" * 20 + "\n")
    removed = runner.invoke(main, ["operator", "remove", "ada", "--config", str(config)])
    assert removed.exit_code == 0, removed.output
    assert _operators(config).get("ada") is None
    missing = runner.invoke(main, ["operator", "remove", "ada", "--config", str(config)])
    assert missing.exit_code == 1
    assert _audit(config) == [("operator.add", "ada"), ("operator.remove", "ada")]


def test_a_schema_that_is_not_current_is_a_usage_error_as_for_the_other_commands(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('data_dir = "state"\n')
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "gateway.sqlite").touch()  # a database, no `db upgrade`
    for args in (["operator", "list"], ["log", "list"]):
        result = CliRunner().invoke(main, [*args, "--config", str(path)])
        assert result.exit_code == 2, (args, result.output)
        assert "OSO-E503" in result.output


# --- a vendor's script: many accounts, scopes, codes, --json (a walkthrough) ---------------------


@pytest.fixture
def vendor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A gateway with a directory and an identity: it serves 02CD00 and 03EF00."""
    from oso_gateway.transfer.demo import VENDOR_OIN, setup_dev_gateways

    cheap_hasher(monkeypatch)
    return str(setup_dev_gateways(tmp_path / "dev")[VENDOR_OIN].config_file)


def _cli(config: str, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["--config", config, "operator", *args], input=input)


def test_a_scope_only_of_schools_the_gateway_serves(vendor: str) -> None:
    """It made an account scoped to a school the gateway does not serve, exit 0 (api-client
    add refuses the same): E620, exit 2, no account."""
    refused = _cli(vendor, "add", "noord", "--generate", "--school", "99ZZ00")
    assert refused.exit_code == 2 and "OSO-E620" in refused.output
    assert "99ZZ00" in refused.output and "directory show --served" in refused.output
    assert _operators(Path(vendor)).get("noord") is None
    made = _cli(vendor, "add", "noord", "--generate", "--school", "02cd00", "--json")
    assert made.exit_code == 0, made.output
    body = json.loads(made.output)
    assert body["name"] == "noord" and body["schools"] == ["02CD00"] and body["password"]


def test_an_existing_name_in_any_case_is_a_coded_refusal_and_logs_in_in_any_case(
    config: Path,
) -> None:
    """ "error: operator anja exists" had no code; "Anja" and "anja" were two logins of which
    one failed: names are compared without case."""
    args = ["--password-stdin", "--config", str(config)]
    runner = CliRunner()
    assert runner.invoke(main, ["operator", "add", "anja", *args], input="x" * 20).exit_code == 0
    for name in ("anja", "Anja", " ANJA"):
        again = runner.invoke(main, ["operator", "add", name, *args], input="y" * 20 + "\n")
        assert again.exit_code == 1 and "OSO-E621" in again.output, (name, again.output)
    upper = runner.invoke(main, ["operator", "add", "Bert", *args], input="z" * 20 + "\n")
    assert upper.exit_code == 0 and "added operator bert" in upper.output
    assert [a.name for a in _operators(config).all()] == ["anja", "bert"]
    missing = runner.invoke(main, ["operator", "remove", "nobody", "--config", str(config)])
    assert missing.exit_code == 1 and "OSO-E622" in missing.output
    removed = runner.invoke(main, ["operator", "remove", "BERT", "--json", "--config", str(config)])
    assert removed.exit_code == 0 and json.loads(removed.output) == {"removed": "bert"}


def test_the_console_login_takes_the_name_in_any_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console_support import PASSWORD, add_operator, console_app, login
    from gateway_pair import sqlite_store

    cheap_hasher(monkeypatch)
    store = sqlite_store(tmp_path / "gw.sqlite")
    try:
        add_operator(store, "anja", "viewer")
        app = console_app(tmp_path, store)
        assert login(app.test_client(), "Anja", PASSWORD).status_code == 302
        assert login(app.test_client(), " ANJA ", PASSWORD).status_code == 302
        assert login(app.test_client(), "Anja", "wrong-password-x").status_code == 401
        # one throttle key per account, however it is typed: case variants buy no more guesses
        keys = {
            r.key
            for r in _throttle_rows(store)
            if r.key.startswith("account:")  # the failed attempt's key
        }
        assert keys == {"account:anja"}
    finally:
        store.engine.dispose()


def _throttle_rows(store: Any) -> list[Any]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from oso_gateway.store.operators import LoginThrottle

    with Session(store.engine) as session:
        return list(session.scalars(select(LoginThrottle)))


def test_list_json_shows_each_accounts_school_scope(vendor: str) -> None:
    _cli(vendor, "add", "alle", "--generate", "--role", "admin")
    _cli(vendor, "add", "noord", "--generate", "--school", "02CD00", "--school", "03EF00")
    listed = _cli(vendor, "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["name"], r["role"], r["schools"]) for r in rows] == [
        ("alle", "admin", None),  # every school
        ("noord", "viewer", ["02CD00", "03EF00"]),
    ]
    assert all(r["last_login_at"] is None and r["created_at"] for r in rows)
    assert "$argon2" not in listed.output
    text = _cli(vendor, "list").output
    assert "schools all" in text and "schools 02CD00,03EF00" in text


def test_many_accounts_from_one_file_all_or_none_passwords_in_a_private_file(
    vendor: str, tmp_path: Path
) -> None:
    """300 calls of `add` took 9 minutes; one file, checked whole before any account is made,
    each password generated and written to a new file of the owner's only (never the
    terminal)."""
    lines = [
        {"name": "Noord.1", "role": "admin", "schools": ["02cd00"]},
        {"name": "zuid-1", "schools": ["03EF00"]},
        {"name": "alle"},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\n\n"
    outs = iter(tmp_path / f"passwords-{i}.jsonl" for i in range(20))

    def bulk(body: str, *more: str) -> tuple[Any, Path]:
        out = next(outs)
        return _cli(vendor, "add", "--from-file", "-", "--out", str(out), *more, input=body), out

    for bad, message in (
        (text + json.dumps({"name": "x", "schools": ["99ZZ00"]}), "line 5: school 99ZZ00"),
        (text + json.dumps({"name": "ZUID-1"}), "line 5: zuid-1 is on line 2"),
        (text + json.dumps({"name": "x", "role": "root"}), "line 5: give"),
        (text + json.dumps({"name": "a b"}), "line 5: account names"),
        ("{", "line 1: not JSON"),
        ("\n", "holds no accounts"),
    ):
        refused, out = bulk(bad)
        assert refused.exit_code == 2, refused.output
        assert "OSO-E623" in refused.output and message in refused.output, refused.output
        assert not out.exists() and _operators(Path(vendor)).all() == []
    made, out = bulk("\ufeff" + text, "--json")
    assert made.exit_code == 0, made.output
    listed = json.loads(made.output)
    assert [(r["name"], r["role"], r["schools"]) for r in listed] == [
        ("noord.1", "admin", ["02CD00"]),
        ("zuid-1", "viewer", ["03EF00"]),
        ("alle", "viewer", None),
    ]
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for row in rows:
        assert row["password"] not in made.output
        account = _operators(Path(vendor)).get(row["name"])
        assert account is not None and auth.verify_password(account.password_hash, row["password"])
    assert _audit(Path(vendor)) == [("operator.add", r["name"]) for r in rows]
    again, out = bulk(text)  # run twice: nothing new, a coded line
    assert again.exit_code == 2 and "line 1: operator noord.1 exists" in again.output
    both = _cli(vendor, "add", "x", "--from-file", "-", "--out", str(next(outs)), input=text)
    assert both.exit_code == 2 and "not both" in both.output
    no_out = _cli(vendor, "add", "--from-file", "-", input=text)
    assert no_out.exit_code == 2 and "give --out" in no_out.output
