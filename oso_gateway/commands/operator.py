"""``oso-gateway operator add|remove|list``: accounts of the operator web console.

Passwords are hashed with argon2id; they are read from a hidden prompt (typed twice), from the
first line of standard input (``--password-stdin``, for scripts) or generated and printed once
(``--generate``). Adding and removing an account are audit events in the transfer log.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from oso_gateway.commands.db import config_option, fail, settings_or_exit, store_or_exit
from oso_gateway.errors import GatewayError
from oso_gateway.store.operators import ROLES, DuplicateOperator, OperatorStore, check_name


def _open(config_file: Path | None):  # type: ignore[no-untyped-def]
    store = store_or_exit(settings_or_exit(config_file), require_key=False)
    return store, OperatorStore(store.engine)


def audit(store: object, *, operation: str, account: str, now: datetime) -> None:
    """An operator-administration event in the transfer log (``operator`` = the account)."""
    from oso_gateway.store import Store
    from oso_gateway.store.logchain import make_event

    assert isinstance(store, Store)
    event = make_event(
        at=now,
        kind="operator",
        direction="local",
        status="ok",
        operator=account,
        operation=operation,
    )
    store.append_log([event], now=now)


@click.group("operator")
def operator_group() -> None:
    """Operator accounts of the web console (roles: viewer, admin)."""


@operator_group.command("add")
@config_option
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@click.option("--generate", is_flag=True, help="Generate a random password and print it once.")
@click.option(
    "--school",
    "schools",
    multiple=True,
    help="Only this school's transfers in the console (BRIN + vestiging; repeatable).",
)
def add_command(
    config_file: Path | None,
    name: str,
    role: str,
    password_stdin: bool,
    generate: bool,
    schools: tuple[str, ...],
) -> None:
    """Create account NAME (a-z, 0-9, '.', '_', '-')."""
    import re

    codes = tuple(dict.fromkeys(s.strip().upper() for s in schools))
    if any(not re.fullmatch(r"[0-9]{2}[0-9A-Z]{2}[0-9]{2}", c) for c in codes):
        raise click.UsageError("--school takes BRIN + vestiging, e.g. 01AB00")
    from oso_gateway.web.auth import MIN_PASSWORD_LENGTH, generate_password, hash_password

    try:
        check_name(name)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if password_stdin and generate:
        raise click.UsageError("use either --password-stdin or --generate")
    if generate:
        password = generate_password()
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.UsageError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    store, operators = _open(config_file)
    now = datetime.now(UTC)
    try:
        operators.add(
            name,
            role=role,
            password_hash=hash_password(password),
            now=now,
            schools=codes or None,
        )
    except DuplicateOperator:
        click.echo(f"error: operator {name} exists", err=True)
        raise SystemExit(1) from None
    except GatewayError as exc:
        fail(exc)
    audit(store, operation="operator.add", account=name, now=now)
    click.echo(f"added operator {name} ({role})")
    if generate:
        click.echo(f"password: {password}")


@operator_group.command("remove")
@config_option
@click.argument("name")
def remove_command(config_file: Path | None, name: str) -> None:
    """Delete account NAME and end its console sessions."""
    store, operators = _open(config_file)
    try:
        removed = operators.remove(name, now=datetime.now(UTC))
    except GatewayError as exc:
        fail(exc)
        return
    if not removed:
        click.echo(f"error: no operator {name}", err=True)
        raise SystemExit(1)
    audit(store, operation="operator.remove", account=name, now=datetime.now(UTC))
    click.echo(f"removed operator {name}")


@operator_group.command("list")
@config_option
def list_command(config_file: Path | None) -> None:
    """List the accounts: name, role, created, last login, and the schools of a scoped one."""
    _store, operators = _open(config_file)
    try:
        accounts = operators.all()
    except GatewayError as exc:
        fail(exc)
        return
    if not accounts:
        click.echo("no operators (add one with `oso-gateway operator add NAME --role admin`)")
    for account in accounts:
        last = account.last_login_at.isoformat(timespec="seconds") if account.last_login_at else "-"
        scoped = f"  schools {', '.join(account.schools)}" if account.schools else ""
        click.echo(
            f"{account.name:<24} {account.role:<7} "
            f"created {account.created_at.isoformat(timespec='seconds')}  last login {last}"
            f"{scoped}"
        )


def register(group: click.Group) -> None:
    group.add_command(operator_group)
