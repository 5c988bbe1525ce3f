"""``oso-gateway api spec`` and ``oso-gateway api-client add|list|revoke``.

``api spec`` prints the school API's OpenAPI 3.1 document (generated from the code, the same
that ``/api/v1/openapi.json`` serves). ``api-client`` manages the credentials of school systems:
the secret is printed once, at ``add``, and stored only hashed; ``revoke`` takes effect on the
next request.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import click

from oso_gateway.commands.db import config_option, fail, new_private_file, services_or_exit
from oso_gateway.errors import ApiClientNotFound, GatewayError


@click.group("api")
def api_group() -> None:
    """The school API (docs/api.md)."""


@api_group.command("spec")
def spec_command() -> None:
    """Print the OpenAPI 3.1 document of the school API (JSON)."""
    from oso_gateway.web.api import openapi_document

    click.echo(json.dumps(openapi_document(), indent=2, sort_keys=False))


@click.group("api-client")
def client_group() -> None:
    """Credentials of school systems (LAS) for the school API, each scoped to schools."""


def _clients(config_file: Path | None) -> tuple[Any, Any]:
    from oso_gateway.store.api_clients import ApiClientStore
    from oso_gateway.transfer.apiclients import ApiClients

    services = services_or_exit(config_file)
    return services, ApiClients(ApiClientStore(services.store.engine), served=services.schools)


def _json(record: Any) -> dict[str, Any]:
    return {
        "client_id": record.client_id,
        "name": record.name,
        "schools": list(record.schools),
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


@client_group.command("add")
@click.argument("name", required=False)
@click.option("--school", "schools", multiple=True, help="BRIN + vestiging (repeatable).")
@click.option(
    "--from-file",
    "from_file",
    type=click.File("r", encoding="utf-8-sig"),
    default=None,
    help="Many clients at once (a vendor's schools): JSON lines, one "
    '{"name": ..., "schools": [...]} each (\'-\': standard input). Every line is checked '
    "before any client is made; needs --out.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --from-file: a new file for the credentials (JSON lines), created readable by "
    "its owner only; an existing file or a link is refused.",
)
@click.option(
    "--skip-existing",
    is_flag=True,
    help="With --from-file: skip (and report) a line whose name is an active client's of the "
    "same schools, so that a list with lines appended runs again; the same name with other "
    "schools is still refused.",
)
@click.option("--json", "as_json", is_flag=True)
@config_option
def add_command(
    name: str | None,
    schools: tuple[str, ...],
    from_file: TextIO | None,
    out: Path | None,
    skip_existing: bool,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Create a credential for NAME (a school system) acting for the given schools, or one for
    each line of --from-file (written to --out). A name an active client has (compared without
    case and with runs of spaces as one) is refused (OSO-E616)."""
    if skip_existing and from_file is None:
        raise click.UsageError("--skip-existing goes with --from-file")
    if from_file is not None:
        if name is not None or schools:
            raise click.UsageError("give NAME and --school, or --from-file, not both")
        if out is None:
            # to a terminal or a pipe, credentials can be lost unseen (`| head -1` kept one of
            # fifty, and the rest stayed active: a review); a file is checked as it is written
            raise click.UsageError("--from-file writes the credentials to a new file: give --out")
        _add_many(_entries(from_file), config_file, out, skip_existing, as_json)
        return
    if out is not None:
        raise click.UsageError("--out goes with --from-file")
    if name is None or not schools:
        raise click.UsageError("give NAME and at least one --school (or --from-file)")
    services, clients = _clients(config_file)
    try:
        record, credential = clients.add(name, schools, now=datetime.now(UTC))
    except GatewayError as exc:
        fail(exc, status=2)
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps({**_json(record), "credential": credential}, indent=2))
        return
    click.echo(f"client   {record.client_id}  {record.name}  schools {', '.join(record.schools)}")
    click.echo(f"credential (shown once; send as 'Authorization: Bearer ...'):\n{credential}")


def _entries(source: TextIO) -> list[tuple[int, str, list[str]]]:
    """The (line, name, schools) of each non-blank JSON line; OSO-E616 (exit 2) names a bad
    line, as for a line whose content is refused (it was a usage error without a code)."""
    from oso_gateway.errors import ApiClientConfigError

    entries = []
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            fail(ApiClientConfigError(f"--from-file line {number}: not JSON"), status=2)
        if (
            not isinstance(item, dict)
            or set(item) != {"name", "schools"}
            or not isinstance(item["name"], str)
            or not isinstance(item["schools"], list)
            or not all(isinstance(s, str) for s in item["schools"])
        ):
            shape = '{"name": "...", "schools": ["00YY00", ...]}'
            fail(ApiClientConfigError(f"--from-file line {number}: give {shape}"), status=2)
        entries.append((number, item["name"], item["schools"]))
    if not entries:
        fail(ApiClientConfigError("--from-file holds no clients"), status=2)
    return entries


def _add_many(
    entries: list[tuple[int, str, list[str]]],
    config_file: Path | None,
    out: Path,
    skip_existing: bool,
    as_json: bool,
) -> None:
    """Make the clients (all in one transaction), then write their credentials to ``out``, a
    file made for them before anything else; when the credentials are not all written (a full
    disk, an interrupt), every client made is revoked and the file removed: a credential no
    one holds is not left active (2,000 were: a walkthrough)."""
    handle = new_private_file(out)  # refused before any client is made
    services, clients = _clients(config_file)
    made: list[tuple[Any, str]] = []
    skipped: list[tuple[int, Any]] = []
    try:
        try:
            made, skipped = clients.add_many(
                entries, now=datetime.now(UTC), skip_existing=skip_existing
            )
        except GatewayError as exc:
            fail(exc, status=2)
        for record, credential in made:
            line = json.dumps({**_json(record), "credential": credential}) + "\n"
            handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
    except BaseException as exc:
        handle.close()
        out.unlink(missing_ok=True)
        for record, _credential in made:
            clients.revoke(record.client_id, now=datetime.now(UTC))
        if made:
            click.echo(
                f"error: the credentials were not all written ({type(exc).__name__}); the "
                f"{len(made)} clients made were revoked",
                err=True,
            )
        raise
    finally:
        services.close()
    if not made:  # every line skipped: no empty file left to be refused as --out next time
        out.unlink(missing_ok=True)
    _say_made(made, skipped, out, as_json)


def _say_made(
    made: list[tuple[Any, str]], skipped: list[tuple[int, Any]], out: Path, as_json: bool
) -> None:
    """What ``add --from-file`` did: the clients made (their credentials only in ``out``) and
    the lines skipped as existing clients."""
    if as_json:
        body = {
            "made": [_json(record) for record, _credential in made],
            "skipped": [{"line": line, **_json(record)} for line, record in skipped],
            "credentials_file": str(out) if made else None,
        }
        click.echo(json.dumps(body, indent=2))
        return
    for line, record in skipped:
        click.echo(f"skipped line {line}: {record.name} is active client {record.client_id}")
    if made:
        click.echo(f"{len(made)} API clients made; their credentials are in {out}")
    else:
        click.echo(f"no API client made ({len(skipped)} existing skipped)")


@client_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@config_option
def list_command(as_json: bool, config_file: Path | None) -> None:
    """The API clients (never their secrets)."""
    services, clients = _clients(config_file)
    try:
        records = [_json(r) for r in clients.list()]
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    for r in records:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        click.echo(f"{r['client_id']}  {state:<10} {', '.join(r['schools'])}  {r['name']}")


@client_group.command("revoke")
@click.argument("clients_named", metavar="[CLIENT]...", nargs=-1)
@click.option(
    "--school",
    default=None,
    help="Revoke every active client of this school (BRIN + vestiging; a client of several "
    "schools loses them all).",
)
@click.option(
    "--from-file",
    "from_file",
    type=click.File("r", encoding="utf-8-sig"),
    default=None,
    help="Client ids or names, one a line ('-': standard input). Every line is looked up "
    "before any client is revoked.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@config_option
def revoke_command(
    clients_named: tuple[str, ...],
    school: str | None,
    from_file: TextIO | None,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Revoke each CLIENT (an id, or an active client's name): its next request is refused.
    One that names no client is OSO-E624 (exit 1) and revokes none."""
    if sum((bool(clients_named), school is not None, from_file is not None)) != 1:
        raise click.UsageError("give CLIENT ids or names, --school or --from-file (one of them)")
    entries: list[tuple[int | None, str]] = [(None, c.strip()) for c in clients_named]
    if from_file is not None:
        entries = [(n, t.strip()) for n, t in enumerate(from_file, start=1) if t.strip()]
        if not entries:
            fail(ApiClientNotFound("--from-file holds no client ids or names"))
    services, clients = _clients(config_file)
    try:
        now = datetime.now(UTC)
        if school is not None:
            records = clients.revoke_school(school, now=now)
        else:
            records = clients.revoke_many(entries, now=now)
    except GatewayError as exc:
        fail(exc)
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps([_json(r) for r in records], indent=2))
        return
    for record in records:
        click.echo(f"revoked {record.client_id}  {', '.join(record.schools)}  {record.name}")


def register(group: click.Group) -> None:
    group.add_command(api_group)
    group.add_command(client_group)
