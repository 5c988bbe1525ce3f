"""`oso-gateway db upgrade | current | keygen`, and the newer-database guard."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from oso_gateway.cli import main
from oso_gateway.config import load_settings
from oso_gateway.errors import SchemaNotCurrent
from oso_gateway.store import check_schema_current, create_store_engine, head_revision


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f'data_dir = "state"\n{extra}')
    return path


def test_db_upgrade_creates_the_schema_and_db_current_reports_it(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    before = runner.invoke(main, ["db", "current", "--config", str(config)])
    assert before.exit_code == 1 and "oso-gateway db upgrade" in before.output
    up = runner.invoke(main, ["db", "upgrade", "--config", str(config)])
    assert up.exit_code == 0, up.output
    assert f"upgraded empty -> {head_revision()}" in up.output
    assert (tmp_path / "state" / "gateway.sqlite").is_file()
    again = runner.invoke(main, ["db", "upgrade", "--config", str(config)])
    assert again.exit_code == 0 and "already at revision" in again.output
    now = runner.invoke(main, ["db", "current", "--config", str(config)])
    assert now.exit_code == 0 and "up to date" in now.output


def test_db_commands_read_the_config_file_from_the_environment(tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"OSO_GATEWAY_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "state" / "gateway.sqlite").is_file()


def test_db_commands_hide_the_database_password(tmp_path: Path) -> None:
    config = _config(tmp_path, 'database_url = "postgresql://gw:hunter2@127.0.0.1:1/oso"\n')
    result = CliRunner().invoke(main, ["db", "current", "--config", str(config)])
    assert result.exit_code == 1
    assert "OSO-E502" in result.output and "hunter2" not in result.output


def test_a_bad_configuration_is_a_usage_error_with_its_code(tmp_path: Path) -> None:
    config = _config(tmp_path, "[server]\nport = 0\n")
    result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 2
    assert "OSO-E501" in result.output and "server.port" in result.output


def test_a_directory_given_as_the_configuration_is_refused_with_its_code(tmp_path: Path) -> None:
    """It was Click's "Invalid value for '--config'" with no code; now OSO-E501 as a missing
    file, however the directory is given (a command's option, the top-level one, the env)."""
    for args, env in (
        (["db", "upgrade", "--config", str(tmp_path)], {}),
        (["--config", str(tmp_path), "db", "upgrade"], {}),
        (["db", "upgrade"], {"OSO_GATEWAY_CONFIG": str(tmp_path)}),
    ):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert "OSO-E501" in result.output and "Is a directory" in result.output, args
    assert not (tmp_path / "data").exists()


def test_a_database_migrated_by_a_newer_gateway_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    engine = create_store_engine(load_settings(config, {}).database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00d99'"))
    with pytest.raises(SchemaNotCurrent, match="newer oso-gateway"):
        check_schema_current(engine)
    engine.dispose()
    # a rollback: `db current` said "behind: run db upgrade", and `db upgrade` ended in
    # alembic's traceback (an operator's walkthrough)
    current = CliRunner().invoke(main, ["db", "current", "--config", str(config)])
    assert current.exit_code == 1 and "newer than this release" in current.output
    assert "behind" not in current.output
    upgrade = CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)])
    assert upgrade.exit_code == 1 and "OSO-E503" in upgrade.output, upgrade.output
    assert "restore the backup" in upgrade.output and "Traceback" not in upgrade.output


def test_keygen_writes_a_private_key_file_that_the_config_accepts(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "storage.key"
    result = CliRunner().invoke(main, ["db", "keygen", "--out", str(key_file)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key_file.parent).st_mode) == 0o700  # it made the directory
    assert len(base64.b64decode(key_file.read_text().strip())) == 32
    settings = load_settings(_config(tmp_path, f'[storage]\nkey_file = "{key_file}"\n'), {})
    assert settings.storage_key == base64.b64decode(key_file.read_text().strip())
    # Never overwrites an existing key (that would make every stored dossier unreadable).
    before = key_file.read_bytes()
    again = CliRunner().invoke(main, ["db", "keygen", "--out", str(key_file)])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output
    assert key_file.read_bytes() == before


def test_the_sqlite_files_are_their_owners_alone(tmp_path: Path) -> None:
    """The database holds encrypted dossiers and keyed hashes: its files and directory are
    created 0600 / 0700 whatever the umask (they were 0644; found by a helper's walkthrough)."""
    config = _config(tmp_path)
    old = os.umask(0o022)
    try:
        assert CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)]).exit_code == 0
        engine = create_store_engine(load_settings(config, {}).database_url)
        with engine.begin() as conn:  # a write: the WAL and its index exist
            conn.execute(text("CREATE TABLE probe (x INTEGER)"))
            files = sorted(Path(engine.url.database or "").parent.glob("*.sqlite*"))
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        engine.dispose()
    finally:
        os.umask(old)
    assert {name.rsplit(".sqlite", 1)[1] for name in modes} >= {"", "-wal", "-shm"}
    assert set(modes.values()) == {0o600}, modes


def test_existing_sqlite_files_readable_by_others_are_made_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A database made before the gateway created its files 0600 (or copied in by hand, 0644)
    is tightened, with its WAL and index, the next time the gateway opens it, and says so."""
    config = _config(tmp_path)
    assert CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    url = load_settings(config, {}).database_url
    engine = create_store_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (x INTEGER)"))
    files = sorted(  # the data: the lock files hold none (and are created 0600)
        f for f in Path(engine.url.database or "").parent.glob("*.sqlite*") if f.suffix != ".lock"
    )
    assert {f.name.rsplit(".sqlite", 1)[1] for f in files} >= {"", "-wal"}
    for f in files:
        f.chmod(0o644)
    with caplog.at_level("WARNING", logger="oso_gateway.store.engine"):
        create_store_engine(url).dispose()
    engine.dispose()
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files if f.exists()}
    assert set(modes.values()) == {0o600}, modes
    assert "readable by others" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="oso_gateway.store.engine"):
        create_store_engine(url).dispose()
    assert "readable by others" not in caplog.text  # only once: the files stay private


def test_a_database_readable_by_others_that_cannot_be_tightened_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: when the mode cannot be changed (not ours, a read-only mount), the gateway
    does not open a database others can read, and says how to fix it."""
    from oso_gateway.errors import ConfigError

    config = _config(tmp_path)
    assert CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    url = load_settings(config, {}).database_url
    database = Path(create_store_engine(url).url.database or "")
    database.chmod(0o644)

    def refuse(self: Path, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(Path, "chmod", refuse)
    with pytest.raises(ConfigError) as info:
        create_store_engine(url)
    assert f"chmod 600 {database}" in str(info.value)
    result = CliRunner().invoke(main, ["db", "current", "--config", str(config)])
    assert result.exit_code == 2 and "cannot be made private" in result.output


def test_a_private_write_leaves_a_device_or_a_pipe_as_it_is(tmp_path: Path) -> None:
    """`--out /dev/null` as root made /dev/null root's alone (0600): every other user's
    programs then failed (found when a helper's walkthrough broke the machine's PostgreSQL).
    A regular file is still made 0600; a FIFO (or a device) keeps its mode."""
    import threading

    from oso_gateway.commands.db import write_private

    existing = tmp_path / "report.html"
    existing.write_bytes(b"old")
    existing.chmod(0o644)
    write_private(existing, b"new")
    assert existing.read_bytes() == b"new" and stat.S_IMODE(existing.stat().st_mode) == 0o600
    fifo = tmp_path / "into-the-las"
    os.mkfifo(fifo, 0o644)
    fifo.chmod(0o644)  # whatever the umask
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_private(fifo, b"<dossier/>")
    reader.join(10)
    assert received == [b"<dossier/>"]
    assert stat.S_IMODE(fifo.stat().st_mode) == 0o644  # not ours to change


def test_db_current_json(tmp_path: Path) -> None:
    """--json was missing (README: "Every command takes --json")."""
    import json

    config = _config(tmp_path)
    runner = CliRunner()
    before = runner.invoke(main, ["db", "current", "--json", "--config", str(config)])
    assert before.exit_code == 1 and json.loads(before.stdout)["state"] == "behind"
    runner.invoke(main, ["db", "upgrade", "--config", str(config)])
    now = runner.invoke(main, ["db", "current", "--json", "--config", str(config)])
    body = json.loads(now.stdout)
    assert now.exit_code == 0 and body["state"] == "current"
    assert body["revision"] == body["head"] == head_revision()
