"""``oso-gateway retention purge``: erase content past its retention period (crypto-shredding).

The policy is the ``[retention]`` table of the configuration; ``serve`` also purges on a schedule
(``retention.purge_every_minutes``). Erasure destroys each item's data key and ciphertext; the
message's PII-free metadata and the transfer log stay, and each purge is logged there.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from oso_gateway.commands.db import config_option, confirm_or_exit, fail, settings_or_exit
from oso_gateway.commands.keys import open_lifecycle
from oso_gateway.errors import ConfigError, GatewayError
from oso_gateway.store.lifecycle import PurgeCandidate

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.config import Settings
    from oso_gateway.transfer.auditlog import BaseSigner


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
    records past retention (and forget school-API idempotency keys past theirs), then prune
    transfer-log events past retention.transfer_log_days.

    --older-than applies to that content only: the transfer log always keeps its own period.
    Pruned log events are written to log.archive_dir first when it is set.
    """
    from oso_gateway.transfer.lifecycle import (
        log_cutoff,
        parse_duration,
        plan_purge,
        prune_log,
        purge,
    )

    settings = settings_or_exit(config_file)
    try:
        age = parse_duration(older_than) if older_than is not None else None
    except ConfigError as exc:
        raise click.BadParameter(exc.detail, param_hint="--older-than") from None
    lifecycle = open_lifecycle(config_file)
    now = datetime.now(UTC)
    try:
        planned = plan_purge(lifecycle, settings.retention, now=now, older_than=age)
        keeper = _keeper(settings)
        try:
            log_due, log_through = lifecycle.log_prunable(
                log_cutoff(settings.retention, now), keeper.anchors()
            )
        except GatewayError as exc:  # the content is purged all the same
            click.echo(f"warning: cannot tell what of the transfer log is due: {exc}", err=True)
            log_due, log_through = 0, 0
        if dry_run or not (planned or log_due):
            _report(planned, log_due, log_through, as_json=as_json)
            return
        if not yes:
            confirm_or_exit(_question(len(planned), log_due))
        result = purge(lifecycle, settings.retention, now=now, older_than=age)
    except GatewayError as exc:
        fail(exc)
        return
    try:
        pruned = prune_log(
            lifecycle,
            settings.retention,
            now=now,
            archive_dir=settings.log.archive_dir,
            keeper=keeper,
        )
    except GatewayError as exc:
        click.echo(f"{result.total} item(s) purged; pruning the transfer log stopped:", err=True)
        fail(exc, status=2 if isinstance(exc, ConfigError) else 1)
        return
    if as_json:
        click.echo(
            json.dumps(
                {"purged": result.purged, "total": result.total, "transfer_log": pruned.to_json()},
                sort_keys=True,
            )
        )
        return
    for kind, ids in result.purged.items():
        if ids:
            # one message id may name several rows (a rejected attempt and the accepted one)
            shown = " ".join(i if n == 1 else f"{i} (×{n})" for i, n in Counter(ids).items())
            click.echo(f"purged {len(ids)} {kind.replace('_', ' ')}(s): {shown}")
    click.echo(f"{result.total} item(s) purged; the purge is in the transfer log")
    if pruned.pruned:
        kept = f", archived in {pruned.archive}" if pruned.archive else " (no log.archive_dir)"
        click.echo(
            f"pruned {pruned.pruned} transfer-log event(s) through event {pruned.base_seq}{kept}"
        )


def _keeper(settings: Settings) -> BaseSigner:
    """The gateway's first identity and anchor file: the key is read only when a batch is due
    (without an identity nothing is pruned, OSO-E501)."""
    from oso_gateway.runtime import first_identity
    from oso_gateway.transfer import auditlog

    return auditlog.BaseSigner(settings.anchor_file, lambda: first_identity(settings))


def _question(items: int, log_events: int) -> str:
    parts = []
    if items:
        parts.append(f"erase the content of {items} item(s)")
    if log_events:
        parts.append(f"prune {log_events} transfer-log event(s)")
    return " and ".join(parts) + "?"


def _report(
    planned: list[PurgeCandidate], log_due: int, log_through: int, *, as_json: bool
) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "would_purge": [{"kind": c.kind, "message_id": c.message_id} for c in planned],
                    "would_prune_log": {"events": log_due, "through_seq": log_through},
                },
                sort_keys=True,
            )
        )
        return
    for c in planned:
        click.echo(f"would purge {c.kind}: {c.message_id}")
    if log_due:
        click.echo(f"would prune {log_due} transfer-log event(s), through event {log_through}")
    click.echo(f"{len(planned)} item(s) due; nothing was erased")


def register(group: click.Group) -> None:
    group.add_command(retention_group)
