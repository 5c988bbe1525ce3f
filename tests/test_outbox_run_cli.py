"""``outbox run --once`` says what it left alone: a "delivered 0" with a message another worker
holds, or one waiting for its next attempt, explained itself nowhere (found by a helper's
walkthrough: an operator waited on a lease without knowing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from store_support import queue_outbound

from oso_gateway.cli import main
from oso_gateway.runtime import build_services
from oso_gateway.transfer.demo import PRIMARY_OIN, setup_dev_gateways


def test_run_once_names_held_and_waiting_messages(tmp_path: Path) -> None:
    gateway = setup_dev_gateways(tmp_path)[PRIMARY_OIN]
    services = build_services(gateway.settings)
    try:
        now = datetime.now(UTC)
        store = services.store
        queue_outbound(store, now=now - timedelta(seconds=1))
        claimed = store.claim_next_outbound(now=now, lease=timedelta(minutes=5))  # another worker
        assert claimed is not None
        later = queue_outbound(store, now=now)
        store.mark_retry(
            later, error_code="OSO-E461", next_attempt_at=now + timedelta(hours=1), now=now
        )
    finally:
        services.close()
    result = CliRunner().invoke(
        main, ["outbox", "run", "--once", "--config", str(gateway.config_file)]
    )
    assert result.exit_code == 0, result.output
    assert "delivered 0, retrying 0, failed 0" in result.output
    assert "1 held by another worker (its lease ends by " in result.output
    assert "1 waiting for their next attempt (the first at " in result.output
