"""`outbox run` anchors the transfer log like `serve` does, so a cron-driven worker is covered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from oso_gateway.cli import main
from oso_gateway.store import open_store
from oso_gateway.store.logchain import make_event
from oso_gateway.transfer.demo import PRIMARY_OIN, setup_dev_gateways


def test_outbox_run_once_anchors_the_log_when_events_are_unanchored(tmp_path: Path) -> None:
    gateway = setup_dev_gateways(tmp_path)[PRIMARY_OIN]
    store = open_store(gateway.settings)
    try:
        store.append_log(
            [make_event(at=datetime.now(UTC), kind="system", status="started")],
            now=datetime.now(UTC),
        )
    finally:
        store.engine.dispose()
    anchors = gateway.settings.anchor_file
    assert not anchors.exists()

    config = ["--config", str(gateway.config_file)]
    result = CliRunner().invoke(main, ["outbox", "run", "--once", *config])
    assert result.exit_code == 0, result.output
    assert anchors.read_text().count("\n") == 1

    again = CliRunner().invoke(main, ["outbox", "run", "--once", *config])
    assert again.exit_code == 0, again.output
    assert anchors.read_text().count("\n") == 1  # nothing new since: no second anchor

    verify = CliRunner().invoke(main, ["log", "verify", *config])
    assert verify.exit_code == 0, verify.output
