"""``oso-gateway keys``: the storage keyring (list, rotate, retire, delete).

Every stored item has its own data key, wrapped by a storage key of the keyring. ``rotate`` makes
a new storage key and re-wraps every data key under it, online (``serve`` may keep running) and in
batches: after a crash, ``keys rotate --resume`` finishes the work. A key that nothing refers to
any more can be retired and then deleted. See ``docs/operations.md``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from oso_gateway.commands.db import (
    config_option,
    fail,
    require_our_school,
    settings_or_exit,
    store_or_exit,
)
from oso_gateway.errors import GatewayError
from oso_gateway.store.lifecycle import Lifecycle


def open_lifecycle(config_file: Path | None) -> Lifecycle:
    """The lifecycle repository from the configuration (exit 2 on a configuration problem)."""
    store = store_or_exit(settings_or_exit(config_file))
    return Lifecycle(store.engine, store.cipher)


@click.group("keys")
def keys_group() -> None:
    """Storage keys: list, rotate, retire, delete."""


@keys_group.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
def list_command(config_file: Path | None, as_json: bool) -> None:
    """Every storage key: id, state, school, and how many stored items it still wraps."""
    from oso_gateway.transfer.lifecycle import list_keys

    lifecycle = open_lifecycle(config_file)
    try:
        rows = list_keys(lifecycle)
    except GatewayError as exc:
        fail(exc)
        return
    _list_keys(rows, as_json)
    from oso_gateway.store.lifecycle import PLAIN_TEXT_NOTE, plain_text_rows

    plain = plain_text_rows(lifecycle.engine)
    if plain:  # under no key, so in no row above (`keys rotate` said it found some)
        click.echo(PLAIN_TEXT_NOTE.format(count=plain), err=True)
    # a key a rotation replaced that still wraps items: the rotation stopped half-way (killed,
    # Ctrl-C) and nothing said so (an operator's drill)
    unfinished = [r for r in rows if r.info.state == "inactive" and r.use.total]
    if unfinished:
        click.echo(
            "note: a rotation is unfinished: "
            + ", ".join(f"{r.info.key_id} still wraps {r.use.total}" for r in unfinished)
            + "; `oso-gateway keys rotate --resume` re-wraps them under the active key",
            err=True,
        )
    # a key that still wraps items but is not held here: the restore check fails (exit 3, so
    # that automation sees it; it exited 0)
    missing = [r.info.key_id for r in rows if r.use.total and not r.info.available]
    if missing:
        click.echo(
            f"warning: stored items are wrapped under key(s) not available here: "
            f"{', '.join(missing)}; restore the keyring and key file that go with this database",
            err=True,
        )
        raise SystemExit(3)


def _list_keys(rows: list[Any], as_json: bool) -> None:
    if as_json:
        for row in rows:
            click.echo(
                json.dumps(
                    {
                        "key_id": row.info.key_id,
                        "state": row.info.state,
                        "school": row.info.school,
                        "created": row.info.created,
                        "available": row.info.available,
                        "data_keys": row.use.data_keys,
                        "legacy_rows": row.use.legacy_rows,
                    },
                    sort_keys=True,
                )
            )
        return
    click.echo(
        f"{'KEY ID':<16}  {'STATE':<9}  {'SCHOOL':<6}  {'WRAPS':>7}  {'AVAILABLE':<9}  CREATED"
    )
    for row in rows:
        # "available": its material is held here (a restore checks that every key that still
        # wraps items is)
        available = "yes" if row.info.available else "NO"
        click.echo(
            f"{row.info.key_id:<16}  {row.info.state:<9}  {row.info.school or '-':<6}  "
            f"{row.use.total:>7}  {available:<9}  {row.info.created or '-'}"
        )


@keys_group.command("rotate")
@config_option
@click.option("--school", default=None, help="Rotate this school's own key (BRIN+vestiging).")
@click.option(
    "--resume", is_flag=True, help="Make no new key: finish re-wrapping under the active one."
)
@click.option("--batch", type=click.IntRange(1, 100_000), default=200, show_default=True)
@click.option(
    "--all-schools",
    is_flag=True,
    help="Also a new key for every school with a key of its own (one pass for all).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def rotate_command(
    config_file: Path | None,
    school: str | None,
    resume: bool,
    batch: int,
    all_schools: bool,
    as_json: bool,
) -> None:
    """Make a new active storage key and re-wrap every data key under it (online, batched).
    Without --school or --all-schools, the schools' own keys stay as they are."""
    from oso_gateway.transfer.lifecycle import rotate

    if school is not None and all_schools:
        raise click.UsageError("give --school or --all-schools, not both")
    lifecycle = open_lifecycle(config_file)
    if school is not None:
        school = school.strip().upper()
        if not holds_school(lifecycle, school):
            # a school of ours; or one that left this gateway whose data is still stored here
            # (its key must still be rotated: `keys rotate --school` refused it, E463)
            require_our_school(settings_or_exit(config_file), school)
    try:
        result = rotate(
            lifecycle,
            now=datetime.now(UTC),
            school=school,
            new_key=not resume,
            batch=batch,
            all_schools=all_schools,
        )
    except GatewayError as exc:
        fail(exc)
        return
    if as_json:
        body = {
            "new_key_id": result.new_key_id or None,
            "school": school,
            "all_schools": all_schools,
            "rewrapped": result.rewrapped,
            "upgraded": result.upgraded,
        }
        click.echo(json.dumps(body))
        return
    if result.new_key_id:
        click.echo(f"new active storage key {result.new_key_id}")
    click.echo(
        f"re-wrapped {result.rewrapped} data key(s); gave {result.upgraded} older row(s) "
        "a data key of their own"
    )


def holds_school(lifecycle: Lifecycle, school: str) -> bool:
    """Whether this gateway still stores data of ``school`` (data keys of its items) or holds a
    storage key of its own (not destroyed): its keys are ours to rotate, retire and delete,
    served or not."""
    try:
        if lifecycle.data_keys_by_school().get(school):
            return True
        keys = lifecycle.cipher.provider.keys()
    except GatewayError as exc:
        fail(exc)
    return any(k.school == school and k.state != "destroyed" for k in keys)


@keys_group.command("retire")
@config_option
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def retire_command(config_file: Path | None, key_id: str, as_json: bool) -> None:
    """Retire a storage key that is no longer active (it still unwraps until deleted)."""
    from oso_gateway.transfer.lifecycle import retire

    lifecycle = open_lifecycle(config_file)
    try:
        retire(lifecycle, key_id, now=datetime.now(UTC))
    except GatewayError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps({"key_id": key_id, "state": "retired"}))
        return
    click.echo(f"storage key {key_id} retired")


@keys_group.command("delete")
@config_option
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def delete_command(config_file: Path | None, key_id: str, as_json: bool) -> None:
    """Destroy a retired storage key; refused (OSO-E532) while anything is wrapped under it."""
    from oso_gateway.transfer.lifecycle import delete_key

    lifecycle = open_lifecycle(config_file)
    try:
        delete_key(lifecycle, key_id, now=datetime.now(UTC))
    except GatewayError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps({"key_id": key_id, "deleted": True}))
        return
    click.echo(
        f"storage key {key_id} deleted (if it came from storage.key or storage.key_file, "
        "remove it from there too)"
    )


def register(group: click.Group) -> None:
    group.add_command(keys_group)
