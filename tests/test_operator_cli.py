"""`oso-gateway operator add | remove | list`: console accounts, argon2id hashes, audit events."""

from __future__ import annotations

from pathlib import Path

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
