"""``oso-gateway retention purge``: erase content past its retention period (crypto-shredding).

The policy is the ``[retention]`` table of the configuration; ``serve`` also purges on a schedule
(``retention.purge_every_minutes``). Erasure destroys each item's data key and ciphertext; the
message's PII-free metadata and the transfer log stay, and each purge is logged there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from oso_gateway.commands.db import config_option, fail, settings_or_exit
from oso_gateway.commands.keys import open_lifecycle
from oso_gateway.errors import ConfigError, GatewayError
from oso_gateway.store.lifecycle import PurgeCandidate


@click.group("retention")
def retention_group() -> None:
    """Retention policy: purge what is past its period."""


@retention_group.command("purge")
@config_option
@click.option(
    "--older-than",
    "older_than",
    default=None,
    help="Purge all content older than this (0s, 12h, 30d) instead of the configured periods.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be purged.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def purge_command(
    config_file: Path | None, older_than: str | None, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """Erase received dossiers, undelivered payloads, failed messages and closed request
    records past retention."""
    from oso_gateway.transfer.lifecycle import parse_duration, plan_purge, purge

    settings = settings_or_exit(config_file)
    try:
        age = parse_duration(older_than) if older_than is not None else None
    except ConfigError as exc:
        raise click.BadParameter(exc.detail, param_hint="--older-than") from None
    lifecycle = open_lifecycle(config_file)
    now = datetime.now(UTC)
    try:
        planned = plan_purge(lifecycle, settings.retention, now=now, older_than=age)
        if dry_run or not planned:
            _report(planned, as_json=as_json)
            return
        if not yes:
            click.confirm(f"erase the content of {len(planned)} item(s)?", abort=True)
        result = purge(lifecycle, settings.retention, now=now, older_than=age)
    except GatewayError as exc:
        fail(exc)
        return
    if as_json:
        click.echo(json.dumps({"purged": result.purged, "total": result.total}, sort_keys=True))
        return
    for kind, ids in result.purged.items():
        if ids:
            click.echo(f"purged {len(ids)} {kind.replace('_', ' ')}(s): {' '.join(ids)}")
    click.echo(f"{result.total} item(s) purged; the purge is in the transfer log")


def _report(planned: list[PurgeCandidate], *, as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {"would_purge": [{"kind": c.kind, "message_id": c.message_id} for c in planned]},
                sort_keys=True,
            )
        )
        return
    for c in planned:
        click.echo(f"would purge {c.kind}: {c.message_id}")
    click.echo(f"{len(planned)} item(s) due; nothing was erased")


def register(group: click.Group) -> None:
    group.add_command(retention_group)
