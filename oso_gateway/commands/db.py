"""``oso-gateway db``: database schema (upgrade, current) and the at-rest storage key (keygen).

Also defines ``config_option``, the ``--config FILE`` option every command that needs the
settings shares (default: ``$OSO_GATEWAY_CONFIG``; without either, defaults + environment).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from oso_gateway.config import CONFIG_ENV, Settings, generate_storage_key, load_settings
from oso_gateway.errors import (
    ConfigError,
    GatewayError,
    KeyMaterialError,
    OutputUnwritable,
    SchemaNotCurrent,
    SchoolFilterNotServed,
)
from oso_gateway.store.engine import shown_url

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.store import Store
    from oso_gateway.transfer.services import GatewayServices

_F = TypeVar("_F", bound=Callable[..., object])
#: environment variables that say where the database is (a configuration without a file)
_STORE_ENV = ("OSO_GATEWAY_DATABASE_URL", "OSO_GATEWAY_DATA_DIR")


#: where ``oso-gateway --config FILE <command>`` (the top-level option) leaves the file
GLOBAL_CONFIG_KEY = "oso_gateway.config_file"


def _or_global(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """The command's own ``--config`` wins; else the top-level ``--config``; else the env."""
    source = ctx.get_parameter_source("config_file")
    if source is click.core.ParameterSource.COMMANDLINE:
        return value
    given: Path | None = ctx.meta.get(GLOBAL_CONFIG_KEY)
    return given if given is not None else value


def config_option(func: _F) -> _F:
    """``--config FILE`` (env ``OSO_GATEWAY_CONFIG``), passed to the command as ``config_file``.

    ``oso-gateway --config FILE <command>`` works as well: the top-level option is used when the
    command is not given its own.
    """
    return click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path),  # a directory: OSO-E501, as a missing file
        envvar=CONFIG_ENV,
        default=None,
        callback=_or_global,
        help=f"Configuration file (TOML). Default: the top-level --config, then ${CONFIG_ENV}.",
    )(func)


def when(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """A ``--since``/``--until`` value: an ISO date or time (no zone: UTC) or a span back from
    now (``90m``, ``24h``, ``7d``; ``auditlog.parse_when``); anything else is a usage error."""
    from oso_gateway.transfer.auditlog import parse_when

    if value is None:
        return None
    try:
        return parse_when(value, now=datetime.now(UTC))
    except ValueError:
        raise click.BadParameter(
            "an ISO date or time (2026-09-01, 2026-09-01T08:00Z) or a span like 90m, 24h, 7d"
        ) from None


def parse_school(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    """A school option's value as a ``School`` (BRIN + vestiging; a BRIN alone is vestiging
    00); a malformed one is a usage error."""
    from oso_gateway.transfer.schools import School

    if value is None:
        return None
    try:
        return School.parse_new(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def school_code(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``parse_school``'s code (``01AB00``): a filter's school; a malformed one is a usage
    error, not an empty list."""
    parsed = parse_school(ctx, param, value)
    return None if parsed is None else str(parsed.code)


def text_from_stdin(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    """A free-text option's value, or with ``-`` standard input (the text without its last
    line break): text that may name a pupil then stays out of the shell's history and the
    process list."""
    if value != "-":
        return value
    return sys.stdin.read().rstrip("\r\n")


#: how an operator lists the schools a gateway serves (named in OSO-E620's text)
SERVED_HINT = "`oso-gateway directory show --served` lists the schools it serves"


def not_served(school: str) -> SchoolFilterNotServed:
    """OSO-E620 for ``--school``: it names the code given and where to look, never the list
    of every served school (300 of them filled the screen: a vendor's walkthrough)."""
    return SchoolFilterNotServed(
        f"--school {school}: this gateway does not serve that school (a typing error?); "
        + SERVED_HINT
    )


def require_served(services: Any, school: str | None) -> None:
    """Stop (exit 2, OSO-E620) when the filter ``--school`` names a school this gateway does
    not serve: a mistyped code read as an empty list ("(no messages)", exit 0). A school it
    holds messages or requests for (one it served before the directory changed) is still
    listed, with a note that it is not served now."""
    from oso_gateway.store.mailbox import Mailbox

    if school is None or school in services.schools():
        return
    if Mailbox(services.store).holds_school(school):
        click.echo(f"note: this gateway does not serve school {school} now", err=True)
        return
    fail(not_served(school), status=2)


def served_by_settings(settings: Settings) -> frozenset[str] | None:
    """The schools (BRIN + vestiging) the configured directory names one of our identities'
    OINs as the gateway of, read without opening the store or loading a key (``operator
    add``); None when no directory or no identity is configured: nothing to check against."""
    from oso_gateway.transfer.directory import Directory

    if settings.directory_file is None or not settings.identities:
        return None
    try:
        directory = Directory.load(settings.directory_file)
    except GatewayError as exc:
        fail(exc, status=2)
    from oso_gateway.transfer.unserved import served_codes

    return served_codes(directory, (i.oin for i in settings.identities))


def settings_or_exit(config_file: Path | None) -> Settings:
    """Load the settings; a configuration problem ends the command (exit 2) with its code."""
    try:
        return load_settings(config_file, os.environ)
    except ConfigError as exc:
        fail(exc, status=2)
        raise  # unreachable


def services_or_exit(config_file: Path | None) -> GatewayServices:
    """The gateway's services (``runtime.build_services``); a problem ends the command with its
    code (exit 2 for configuration, 1 otherwise)."""
    from oso_gateway.runtime import build_services

    settings = settings_or_exit(config_file)
    no_database_without_config(settings)
    try:
        return build_services(settings)
    except GatewayError as exc:
        # a configuration problem, as store_or_exit: settings, schema, our own key or CRL files
        status = 2 if isinstance(exc, ConfigError | SchemaNotCurrent | KeyMaterialError) else 1
        fail(exc, status=status, hint=_no_config_hint(settings))


def store_or_exit(settings: Settings, *, require_key: bool = True) -> Store:
    """The store (``store.open_store``); a configuration problem or a schema that is not current
    ends the command with exit 2, any other problem with exit 1, each with its code."""
    from oso_gateway.store import open_store

    no_database_without_config(settings)
    try:
        return open_store(settings, require_key=require_key)
    except (ConfigError, SchemaNotCurrent) as exc:
        fail(exc, status=2, hint=_no_config_hint(settings))
    except GatewayError as exc:
        fail(exc, hint=_no_config_hint(settings))


def no_database_without_config(settings: Settings) -> None:
    """Run without any configuration and with no database at the defaults' place, a command
    stops with E560 (what is really missing: the gateway's --config) before it trips over the
    first thing the defaults lack (an identity, a storage key)."""
    from oso_gateway.store import require_existing_database

    if settings.config_file is not None:
        return
    try:
        require_existing_database(settings.database_url, config_file=None)
    except GatewayError as exc:
        fail(exc, status=2, hint=_no_config_hint(settings))


def _no_config_hint(settings: Settings) -> str | None:
    """When no configuration file was given at all, say so: a command run without --config
    (nor OSO_GATEWAY_CONFIG) fails on whatever the defaults lack first (an identity, a key)."""
    if settings.config_file is not None:
        return None
    return (
        "no configuration file was given: pass the gateway's with --config FILE "
        "(or set OSO_GATEWAY_CONFIG)"
    )


def school_names(settings: Settings) -> dict[str, str]:
    """School code (BRIN + vestiging) → name from the configured directory; empty when none
    is configured or it does not load (a name is a nicety: the code is always shown)."""
    from oso_gateway.transfer.directory import Directory

    if settings.directory_file is None:
        return {}
    try:
        return Directory.load(settings.directory_file).school_names()
    except GatewayError:
        return {}


def require_our_school(settings: Settings, school: str) -> None:
    """Stop (exit 2, E463) when the directory neither names one of our identities as the
    school's gateway nor mandates one for it: what is recorded for a school (a parents'
    objection, its own storage key) belongs on the gateway its dossiers leave from. Without a
    directory or an identity configured there is nothing to check against."""
    from oso_gateway.errors import NotMandated
    from oso_gateway.transfer.directory import Directory
    from oso_gateway.transfer.schools import School

    if settings.directory_file is None or not settings.identities:
        return
    try:
        directory = Directory.load(settings.directory_file)
        wanted = School.parse(school)
    except GatewayError as exc:
        fail(exc, status=2)
    except ValueError:
        hint = "give BRIN + vestiging, e.g. 00YY00"
        raise click.BadParameter(hint, param_hint="--school") from None
    # the school's serving gateway is always among its mandated OINs
    if any(
        directory.is_mandated(i.oin, wanted.brin, wanted.vestiging) for i in settings.identities
    ):
        return
    fail(
        NotMandated(
            f"school {wanted.code} is not one of this gateway's: the directory "
            f"({settings.directory_file}) neither serves nor mandates it through our OIN(s)"
        ),
        status=2,
        hint=SERVED_HINT,
    )


def confirm_or_exit(question: str) -> None:
    """Ask ``question`` on the terminal (no: abort, exit 1). Without a terminal to ask on (a
    cron job, a pipe that also gave the BSN) there is no one to answer: stop at once, exit 2,
    naming ``--yes`` (it read the end of the input as "no" and said only "Aborted!")."""
    if not sys.stdin.isatty():
        click.echo(
            f"error: {question} There is no terminal to ask on: pass --yes to confirm.", err=True
        )
        raise SystemExit(2)
    click.confirm(question, abort=True)


def fail(exc: GatewayError, *, status: int = 1, hint: str | None = None) -> NoReturn:
    click.echo(f"error: {exc.code}: {exc.detail}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    raise SystemExit(status)


def new_private_file(path: Path, *, option: str = "--out") -> Any:
    """A new file for secrets (binary, for writing), readable by its owner only from the first
    byte: an existing file (someone else's, kept theirs by a chmod) or a link is refused, exit
    2 (a review)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        click.echo(f"error: {path} exists; {option} takes a new file", err=True)
        raise SystemExit(2) from None
    except OSError as exc:
        click.echo(f"error: cannot create {path}: {exc.strerror or exc}", err=True)
        raise SystemExit(2) from None
    return os.fdopen(fd, "wb")


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (0600) from the first byte on: a
    dossier or a parents' report holds personal data (an existing file is made 0600 too). A
    device or a pipe (``/dev/null``, a FIFO into the school's system) is written as it is: its
    mode is not ours to change (run as root, ``--out /dev/null`` made /dev/null root's alone,
    and every other user's programs failed: found by a helper's walkthrough)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            if stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
    except OSError as exc:
        fail(OutputUnwritable(f"cannot write {path}: {exc.strerror or type(exc).__name__}"))


@click.group("db")
def db_group() -> None:
    """Database schema and storage key."""


@db_group.command("upgrade")
@config_option
def upgrade_command(config_file: Path | None) -> None:
    """Create or migrate the database schema to this version's head."""
    from oso_gateway.store import create_store_engine, current_revision, upgrade

    settings = settings_or_exit(config_file)
    if config_file is None and not any(os.environ.get(n) for n in _STORE_ENV):
        click.echo(
            f"warning: no --config given (nor ${CONFIG_ENV}): creating the database the built-in "
            f"defaults name, {shown_url(settings.database_url)}",
            err=True,
        )
    try:
        engine = create_store_engine(settings.database_url)
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    except GatewayError as exc:
        fail(exc, status=2 if isinstance(exc, ConfigError) else 1)
        return
    if before == after:
        click.echo(f"{shown_url(settings.database_url)}: already at revision {after}")
    else:
        click.echo(f"{shown_url(settings.database_url)}: upgraded {before or 'empty'} -> {after}")
    from oso_gateway.store.lifecycle import PLAIN_TEXT_NOTE, plain_text_rows

    plain = plain_text_rows(engine)
    if plain:
        click.echo(PLAIN_TEXT_NOTE.format(count=plain), err=True)


@db_group.command("current")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def current_command(config_file: Path | None, as_json: bool) -> None:
    """Show the database's schema revision; exit 1 when it is not the head."""
    from oso_gateway.store import create_store_engine, current_revision, head_revision
    from oso_gateway.store.migrate import is_newer

    settings = settings_or_exit(config_file)
    try:
        current = current_revision(create_store_engine(settings.database_url))
    except GatewayError as exc:
        fail(exc, status=2 if isinstance(exc, ConfigError) else 1)
        return
    head = head_revision()
    state = "up to date" if current == head else "behind: run `oso-gateway db upgrade`"
    if is_newer(current):  # it said "behind" of a database a newer release migrated
        state = "newer than this release (restore the backup taken before that upgrade)"
    if as_json:
        word = "newer" if is_newer(current) else "current" if current == head else "behind"
        body = {
            "database": shown_url(settings.database_url),
            "revision": current,
            "head": head,
            "state": word,
        }
        click.echo(json.dumps(body))
        if current != head:
            raise SystemExit(1)
        return
    click.echo(
        f"{shown_url(settings.database_url)}: revision {current or 'none'} (head {head}) {state}"
    )
    if current != head:
        raise SystemExit(1)


@db_group.command("keygen")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="File to create (mode 0600; an existing file is never overwritten).",
)
def keygen_command(out: Path) -> None:
    """Create a new random at-rest storage key (base64) for storage.key_file.

    Keep it safe and backed up: without it the stored dossiers cannot be read.
    """
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.UsageError(f"{out} exists; refusing to overwrite a storage key") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(generate_storage_key() + "\n")
    click.echo(f"wrote a new storage key to {out}")


def register(group: click.Group) -> None:
    group.add_command(db_group)
