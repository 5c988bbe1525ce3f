"""``db upgrade`` does not migrate the schema under running gateway processes (OSO-E563), and a
process that starts while an upgrade runs waits for it, or stops with OSO-E564
(``store.presence``). Nothing stopped an upgrade under a running older ``serve`` before: the
docs only said to stop every process first (an operator's upgrade walkthrough)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import postgres_schema_engine
from sqlalchemy import Engine, text

from oso_gateway.cli import main
from oso_gateway.errors import GatewayRunning, SchemaNotCurrent, UpgradeInProgress
from oso_gateway.runtime import build_services, hold_presence
from oso_gateway.store import create_store_engine, head_revision, upgrade
from oso_gateway.store.migrate import alembic_config
from oso_gateway.store.presence import Presence, exclusive, holders, lock_file
from oso_gateway.transfer.demo import PRIMARY_OIN, setup_dev_gateways


def _one_behind(engine: Engine) -> None:
    """The database as a release behind left it: its last migration not run yet (the one
    before the head is recorded and the head's changes are undone by its downgrade)."""
    from alembic import command

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "-1")


def _held(engine: Engine) -> bool:
    try:
        with exclusive(engine):
            return False
    except GatewayRunning:
        return True


def _down_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    down = script.get_revision(head_revision()).down_revision
    assert isinstance(down, str)
    return down


def test_an_upgrade_is_refused_while_a_process_holds_its_presence(engine: Engine) -> None:
    _one_behind(engine)
    presence = Presence(engine, what="serve")
    try:
        assert presence.held
        with pytest.raises(GatewayRunning) as refused:
            upgrade(engine)
        assert refused.value.code == "OSO-E563"
        assert "stop every `serve` and `outbox run`" in refused.value.detail
        if engine.dialect.name == "sqlite":
            assert str(lock_file(engine)) in refused.value.detail
        else:  # the holder is named: what it is, the host and the pid
            assert f"serve on {os.uname().nodename} pid {os.getpid()}" in refused.value.detail
    finally:
        presence.close()
    upgrade(engine)  # every process gone: the upgrade runs


def test_a_database_at_the_head_is_left_alone_whatever_runs(engine: Engine) -> None:
    presence = Presence(engine, what="serve")
    try:
        upgrade(engine)  # nothing to migrate: a deploy script's habitual upgrade goes through
        _one_behind(engine)
        with pytest.raises(GatewayRunning):
            upgrade(engine)
    finally:
        presence.close()


def test_a_second_process_and_a_closed_one(engine: Engine) -> None:
    _one_behind(engine)
    first = Presence(engine, what="serve")
    second = Presence(engine, what="outbox run")  # shared: both run at once
    first.close()
    with pytest.raises(GatewayRunning):
        upgrade(engine)  # the second still runs
    second.close()
    upgrade(engine)


def test_a_starting_process_waits_for_a_running_upgrade(engine: Engine) -> None:
    with exclusive(engine), pytest.raises(UpgradeInProgress) as waited:
        Presence(engine, what="serve", wait=0.5)
    assert waited.value.code == "OSO-E564"
    released = threading.Event()

    def upgrading() -> None:
        with exclusive(engine):
            released.wait(10)

    thread = threading.Thread(target=upgrading)
    thread.start()
    time.sleep(0.3)  # the upgrade has the database
    threading.Timer(0.5, released.set).start()
    started = time.monotonic()
    presence = Presence(engine, what="serve", wait=10)
    try:
        assert presence.held and time.monotonic() - started >= 0.3  # it waited, then ran
    finally:
        presence.close()
        thread.join()


def test_two_upgrades_at_once_are_told_apart_from_running_gateways(engine: Engine) -> None:
    _one_behind(engine)
    with exclusive(engine), pytest.raises(GatewayRunning) as refused:
        upgrade(engine)
    if engine.dialect.name == "postgresql":
        assert "another `db upgrade` is running" in refused.value.detail


@pytest.mark.postgres
def test_gateways_in_other_schemas_of_the_database_do_not_hold_each_other(
    postgres_url: str,
) -> None:
    with (
        postgres_schema_engine(postgres_url, "a") as first,
        postgres_schema_engine(postgres_url, "b") as second,
    ):
        upgrade(first)
        _one_behind(first)
        upgrade(second)
        _one_behind(second)
        presence = Presence(first, what="serve")
        try:
            upgrade(second)  # another gateway's schema: not held
            assert len(holders(first)) == 1 and holders(second) == []
            with pytest.raises(GatewayRunning):
                upgrade(first)
        finally:
            presence.close()


@pytest.mark.postgres
def test_a_presence_lost_with_its_connection_is_taken_again(postgres_url: str) -> None:
    with postgres_schema_engine(postgres_url, "r") as engine:
        upgrade(engine)
        moved: list[int] = []
        presence = Presence(engine, what="serve", on_schema_moved=lambda: moved.append(1))
        try:
            assert presence.check()
            _one_behind(engine)
            with engine.begin() as connection:  # the database drops the connection (a restart)
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name LIKE 'oso-gateway presence%' AND pid = ANY("
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory')"
                    )
                )
            time.sleep(0.2)
            upgrade(engine)  # nothing held it for a moment
            _one_behind(engine)
            assert presence.check()  # the keeper's look: a new connection, the lock again
            assert moved == [1]  # and the schema is not this code's any more: it stops
            with pytest.raises(GatewayRunning):
                upgrade(engine)
        finally:
            presence.close()


@pytest.mark.postgres
def test_a_process_whose_schema_moved_while_unmarked_is_stopped(postgres_url: str) -> None:
    """The mark lost (a database restart), a newer release's upgrade ran meanwhile: the
    process took its mark again and ran on, its code on a schema it does not know (a
    review). Now it is stopped (``on_schema_moved``: SIGTERM in a real process)."""
    with postgres_schema_engine(postgres_url, "m") as engine:
        upgrade(engine)
        stopped: list[int] = []
        presence = Presence(engine, what="serve", on_schema_moved=lambda: stopped.append(1))
        try:
            assert presence.check() and not stopped  # marked and current: nothing to do
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name LIKE 'oso-gateway presence%'"
                    )
                )
                connection.execute(text("UPDATE alembic_version SET version_num = 'x_newer_1'"))
            time.sleep(0.2)
            assert presence.check() and stopped == [1]
        finally:
            presence.close()
            with engine.begin() as connection:
                connection.execute(
                    text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()}
                )


def test_closing_does_not_wait_for_a_check_that_hangs(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check stuck on a stopped database held the lock that close() waited for, and a stop
    hung with it (a review)."""
    from oso_gateway.store import presence as presence_module

    monkeypatch.setattr(presence_module, "CLOSE_WAIT", 0.2)
    presence = Presence(engine, what="serve")
    presence._lock.acquire()  # as a hanging check holds it
    try:
        started = time.monotonic()
        presence.close()
        assert time.monotonic() - started < 2
    finally:
        presence._lock.release()
    presence.close()  # and a later close lets go of the mark
    _one_behind(engine)
    upgrade(engine)


def test_a_lock_file_that_cannot_be_opened_is_a_configuration_error(tmp_path: Path) -> None:
    from oso_gateway.errors import ConfigError

    engine = create_store_engine(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    upgrade(engine)
    path = lock_file(engine)
    assert path is not None
    path.unlink(missing_ok=True)  # the upgrade made it
    path.mkdir()  # stands in for a file this user cannot open (as root, modes do not stop it)
    with pytest.raises(ConfigError) as refused:
        Presence(engine, what="serve")
    assert str(path) in refused.value.detail and refused.value.code == "OSO-E501"
    engine.dispose()


def test_a_symlink_to_the_database_names_the_same_lock(tmp_path: Path) -> None:
    real = tmp_path / "gateway.sqlite"
    engine = create_store_engine(f"sqlite:///{real}")
    upgrade(engine)
    (tmp_path / "link.sqlite").symlink_to(real)
    linked = create_store_engine(f"sqlite:///{tmp_path / 'link.sqlite'}")
    presence = Presence(linked, what="serve")
    try:
        assert lock_file(linked) == lock_file(engine)
        _one_behind(engine)
        with pytest.raises(GatewayRunning):
            upgrade(engine)
    finally:
        presence.close()
        linked.dispose()
        engine.dispose()


def test_an_in_memory_database_holds_nothing() -> None:
    engine = create_store_engine("sqlite://")
    presence = Presence(engine, what="test")
    assert not presence.held and presence.check()
    upgrade(engine)
    _one_behind(engine)
    upgrade(engine)
    presence.close()


def test_a_process_that_waited_checks_the_schema_again(tmp_path: Path) -> None:
    gateway = setup_dev_gateways(tmp_path)[PRIMARY_OIN]
    services = build_services(gateway.settings)
    try:
        with services.store.engine.begin() as connection:  # an upgrade moved it meanwhile
            connection.execute(text("UPDATE alembic_version SET version_num = 'x_newer_1'"))
        with pytest.raises(SchemaNotCurrent):
            hold_presence(services, what="serve")
        assert services.presence is None
        assert lock_file(services.store.engine) is not None
        with exclusive(services.store.engine):  # what it took, it let go
            pass
    finally:
        services.close()


def test_db_upgrade_refuses_while_outbox_run_runs(tmp_path: Path) -> None:
    gateway = setup_dev_gateways(tmp_path)[PRIMARY_OIN]
    config = str(gateway.config_file)
    engine = create_store_engine(gateway.settings.database_url)
    down = _down_revision()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSO_GATEWAY_")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "oso_gateway.cli", "outbox", "run", "--config", config],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    head = head_revision()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None and not _held(engine):
            time.sleep(0.1)  # the worker starts, then marks itself as running
        # a new release's migration to run (the database recorded as one behind)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": down})
        refused = CliRunner().invoke(main, ["db", "upgrade", "--config", config])
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        assert refused.exit_code == 1, refused.output
        assert "OSO-E563" in refused.output and "-running.lock" in refused.output
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
        engine.dispose()
    upgraded = CliRunner().invoke(main, ["db", "upgrade", "--config", config])
    assert upgraded.exit_code == 0 and "already at revision" in upgraded.output, upgraded.output
