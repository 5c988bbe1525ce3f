"""``oso-gateway operator add|remove|list``: accounts of the operator web console.

Passwords are hashed with argon2id; they are read from a hidden prompt (typed twice), from the
first line of standard input (``--password-stdin``, for scripts) or generated and printed once
(``--generate``). ``add --from-file`` makes many accounts at once, all or none, each with a
generated password written to a new file of the owner's only (``--out``), never to the terminal
or a log. Adding and removing an account are audit events in the transfer log.

Names are compared without case: one typed ``Anja`` is the account ``anja`` (every stored name
is lower case), at the console's login as here.
"""

from __future__ import annotations

import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import click

from oso_gateway.commands.db import (
    config_option,
    fail,
    new_private_file,
    not_served,
    served_by_settings,
    settings_or_exit,
    store_or_exit,
)
from oso_gateway.errors import (
    GatewayError,
    OperatorExists,
    OperatorListInvalid,
    OperatorNotFound,
)
from oso_gateway.store.operators import (
    ROLES,
    VIEWER,
    DuplicateOperator,
    OperatorRecord,
    OperatorStore,
    check_name,
    normalise_name,
)

_SCHOOL_RE = re.compile(r"[0-9]{2}[0-9A-Z]{2}[0-9]{2}")


def _open(config_file: Path | None):  # type: ignore[no-untyped-def]
    store = store_or_exit(settings_or_exit(config_file), require_key=False)
    return store, OperatorStore(store.engine)


def audit(store: object, *, operation: str, account: str, now: datetime) -> None:
    """An operator-administration event in the transfer log (``operator`` = the account)."""
    _audit_all(store, operation=operation, accounts=[account], now=now)


def _audit_all(store: object, *, operation: str, accounts: list[str], now: datetime) -> None:
    """One event per account, appended together."""
    from oso_gateway.store import Store
    from oso_gateway.store.logchain import make_event

    assert isinstance(store, Store)
    events = [
        make_event(
            at=now,
            kind="operator",
            direction="local",
            status="ok",
            operator=account,
            operation=operation,
        )
        for account in accounts
    ]
    store.append_log(events, now=now)


def _json(account: OperatorRecord) -> dict[str, Any]:
    """An account as ``--json`` gives it (never its hash); ``schools`` null: every school."""
    return {
        "name": account.name,
        "role": account.role,
        "schools": list(account.schools) if account.schools else None,
        "created_at": account.created_at.isoformat(timespec="seconds"),
        "last_login_at": (
            account.last_login_at.isoformat(timespec="seconds") if account.last_login_at else None
        ),
    }


def _school_codes(schools: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The codes, upper case, each once; ``ValueError`` for one that is not BRIN + vestiging."""
    codes = tuple(dict.fromkeys(s.strip().upper() for s in schools))
    if any(not _SCHOOL_RE.fullmatch(c) for c in codes):
        raise ValueError("--school takes BRIN + vestiging, e.g. 01AB00")
    return codes


def _foreign(codes: tuple[str, ...], served: frozenset[str] | None) -> str | None:
    """The first code this gateway does not serve (None: all served, or nothing to check)."""
    if served is None:
        return None
    return next((c for c in codes if c not in served), None)


@click.group("operator")
def operator_group() -> None:
    """Operator accounts of the web console (roles: viewer, admin)."""


@operator_group.command("add")
@config_option
@click.argument("name", required=False)
@click.option("--role", type=click.Choice(ROLES), default=None, help="Default: viewer.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@click.option("--generate", is_flag=True, help="Generate a random password and print it once.")
@click.option(
    "--school",
    "schools",
    multiple=True,
    help="Only this school's transfers in the console (BRIN + vestiging; repeatable; one "
    "this gateway serves).",
)
@click.option(
    "--from-file",
    "from_file",
    type=click.File("r", encoding="utf-8-sig"),
    default=None,
    help='Many accounts at once: JSON lines, one {"name": ..., "role": "viewer"|"admin", '
    "\"schools\": [...]} each (role and schools optional; '-': standard input). Every line is "
    "checked before any account is made; each gets a generated password, written to --out.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --from-file: a new file for the generated passwords (JSON lines), created "
    "readable by its owner only; an existing file or a link is refused.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def add_command(
    config_file: Path | None,
    name: str | None,
    role: str | None,
    password_stdin: bool,
    generate: bool,
    schools: tuple[str, ...],
    from_file: TextIO | None,
    out: Path | None,
    as_json: bool,
) -> None:
    """Create account NAME (a-z, 0-9, '.', '_', '-'; typed in any case, kept in lower case),
    or one for each line of --from-file (passwords written to --out)."""
    if from_file is not None:
        if name is not None or schools or role or password_stdin or generate:
            raise click.UsageError(
                "give NAME (with --role, --school, a password option) or --from-file, not both"
            )
        if out is None:
            raise click.UsageError("--from-file writes the passwords to a new file: give --out")
        _add_many(_entries(from_file), config_file, out, as_json)
        return
    if out is not None:
        raise click.UsageError("--out goes with --from-file")
    if name is None:
        raise click.UsageError("give NAME (or --from-file)")
    try:
        codes = _school_codes(schools)
        name = check_name(normalise_name(name))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    foreign = _foreign(codes, served_by_settings(settings_or_exit(config_file)))
    if foreign is not None:
        fail(not_served(foreign), status=2)
    password = _password(password_stdin, generate)
    _add_one(config_file, name, role or VIEWER, codes, password, as_json, shown=generate)


def _password(password_stdin: bool, generate: bool) -> str:
    from oso_gateway.web.auth import MIN_PASSWORD_LENGTH, generate_password

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
    return password


def _add_one(
    config_file: Path | None,
    name: str,
    role: str,
    codes: tuple[str, ...],
    password: str,
    as_json: bool,
    *,
    shown: bool,
) -> None:
    from oso_gateway.web.auth import hash_password

    store, operators = _open(config_file)
    now = datetime.now(UTC)
    try:
        account = operators.add(
            name, role=role, password_hash=hash_password(password), now=now, schools=codes or None
        )
    except DuplicateOperator:
        fail(OperatorExists(f"operator {name} exists (names are compared without case)"))
    except GatewayError as exc:
        fail(exc)
    audit(store, operation="operator.add", account=name, now=now)
    if as_json:
        body = _json(account) | ({"password": password} if shown else {})
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(f"added operator {name} ({role})")
    if shown:
        click.echo(f"password: {password}")


def _entries(source: TextIO) -> list[tuple[int, str, str, tuple[str, ...]]]:
    """The (line, name, role, schools) of each non-blank JSON line, their form checked;
    OSO-E623 (exit 2) names the first bad line."""
    entries = []
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            fail(OperatorListInvalid(f"--from-file line {number}: not JSON"), status=2)
        shape = '{"name": "...", "role": "viewer", "schools": ["00YY00", ...]}'
        if (
            not isinstance(item, dict)
            or "name" not in item
            or not set(item) <= {"name", "role", "schools"}
            or not isinstance(item["name"], str)
            or item.get("role", VIEWER) not in ROLES
            or not isinstance(item.get("schools", []), list)
            or not all(isinstance(s, str) for s in item.get("schools", []))
        ):
            fail(OperatorListInvalid(f"--from-file line {number}: give {shape}"), status=2)
        try:
            name = check_name(normalise_name(item["name"]))
            codes = _school_codes(item.get("schools", []))
        except ValueError as exc:
            fail(OperatorListInvalid(f"--from-file line {number}: {exc}"), status=2)
        entries.append((number, name, item.get("role", VIEWER), codes))
    if not entries:
        fail(OperatorListInvalid("--from-file holds no accounts"), status=2)
    return entries


def _check_many(
    entries: list[tuple[int, str, str, tuple[str, ...]]],
    taken: set[str],
    served: frozenset[str] | None,
) -> None:
    """Every line before any account is made: a name once only, not an existing account's,
    schools this gateway serves (OSO-E623, exit 2, naming the line)."""
    seen: dict[str, int] = {}
    for number, name, _role, codes in entries:
        problem = None
        if name in seen:
            problem = f"{name} is on line {seen[name]} already"
        elif name in taken:
            problem = f"operator {name} exists (names are compared without case)"
        elif (foreign := _foreign(codes, served)) is not None:
            problem = f"school {foreign} is not served by this gateway"
        if problem is not None:
            fail(OperatorListInvalid(f"--from-file line {number}: {problem}"), status=2)
        seen[name] = number


def _add_many(
    entries: list[tuple[int, str, str, tuple[str, ...]]],
    config_file: Path | None,
    out: Path,
    as_json: bool,
) -> None:
    """Make the accounts (one transaction) with generated passwords, then write the passwords
    to ``out``, a file made before anything else; when they are not all written, the accounts
    made are removed and the file too: an account whose password no one holds is not left."""
    from oso_gateway.web.auth import generate_password, hash_password

    served = served_by_settings(settings_or_exit(config_file))
    store, operators = _open(config_file)
    try:
        taken = {a.name for a in operators.all()}
    except GatewayError as exc:
        fail(exc)
    _check_many(entries, taken, served)
    handle = new_private_file(out)  # refused before any account is made
    made: list[OperatorRecord] = []
    now = datetime.now(UTC)
    try:
        passwords = [generate_password() for _ in entries]
        # argon2id takes ~0.3 s and 64 MiB a hash: a few at once, where there are cores
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            hashes = list(pool.map(hash_password, passwords))
        rows = [
            (name, role, password_hash, codes or None)
            for (_n, name, role, codes), password_hash in zip(entries, hashes, strict=True)
        ]
        try:
            made = operators.add_many(rows, now=now)
        except DuplicateOperator:  # made in the meantime by another command
            fail(OperatorListInvalid("an account of the list was made meanwhile: run it again"))
        except GatewayError as exc:
            fail(exc)
        for account, password in zip(made, passwords, strict=True):
            line = json.dumps({**_json(account), "password": password}) + "\n"
            handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
    except BaseException as exc:
        handle.close()
        out.unlink(missing_ok=True)
        for account in made:
            operators.remove(account.name, now=datetime.now(UTC))
        if made:
            click.echo(
                f"error: the passwords were not all written ({type(exc).__name__}); the "
                f"{len(made)} accounts made were removed",
                err=True,
            )
        raise
    _audit_all(store, operation="operator.add", accounts=[a.name for a in made], now=now)
    if as_json:
        click.echo(json.dumps([_json(a) | {"passwords_file": str(out)} for a in made], indent=2))
        return
    click.echo(f"{len(made)} operators added; their passwords are in {out}")


@operator_group.command("remove")
@config_option
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def remove_command(config_file: Path | None, name: str, as_json: bool) -> None:
    """Delete account NAME and end its console sessions."""
    name = normalise_name(name)
    store, operators = _open(config_file)
    try:
        removed = operators.remove(name, now=datetime.now(UTC))
    except GatewayError as exc:
        fail(exc)
    if not removed:
        fail(OperatorNotFound(f"no operator {name[:64]}"))
    audit(store, operation="operator.remove", account=name, now=datetime.now(UTC))
    if as_json:
        click.echo(json.dumps({"removed": name}))
        return
    click.echo(f"removed operator {name}")


@operator_group.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(config_file: Path | None, as_json: bool) -> None:
    """List the accounts: name, role, created, last login, schools (all: every school)."""
    _store, operators = _open(config_file)
    try:
        accounts = operators.all()
    except GatewayError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps([_json(a) for a in accounts], indent=2))
        return
    if not accounts:
        click.echo("no operators (add one with `oso-gateway operator add NAME --role admin`)")
    for account in accounts:
        last = account.last_login_at.isoformat(timespec="seconds") if account.last_login_at else "-"
        click.echo(
            f"{account.name:<24} {account.role:<7} "
            f"created {account.created_at.isoformat(timespec='seconds')}  last login {last}  "
            f"schools {','.join(account.schools) if account.schools else 'all'}"
        )


def register(group: click.Group) -> None:
    group.add_command(operator_group)
