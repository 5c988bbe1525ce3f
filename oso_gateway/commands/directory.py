"""``oso-gateway directory``: show and check the school directory file."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import click

from oso_gateway.commands.db import config_option, fail, settings_or_exit
from oso_gateway.config import Settings
from oso_gateway.errors import ConfigError, DirectoryFileError, GatewayError
from oso_gateway.runtime import load_identities, load_trust
from oso_gateway.transfer.directory import Directory
from oso_gateway.transfer.unserved import Problem

_file_option = click.option(
    "--file",
    "directory_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Directory file (default: directory.file from the configuration).",
)


def _path(settings: Settings, directory_file: Path | None) -> Path:
    if directory_file is not None:
        return directory_file
    try:
        return settings.require_directory_file()
    except ConfigError as exc:
        fail(exc, status=2)
        raise  # unreachable


@click.group("directory")
def directory_group() -> None:
    """The school directory: which gateway serves which school."""


@directory_group.command("show")
@config_option
@_file_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--served",
    is_flag=True,
    help="Only the schools this gateway serves (the directory names one of its identities' "
    "OINs as their gateway): what --school of the other commands takes.",
)
def show_command(
    config_file: Path | None, directory_file: Path | None, as_json: bool, served: bool
) -> None:
    """List the gateways and schools in the directory."""
    settings = settings_or_exit(config_file)
    path = _path(settings, directory_file)
    try:
        directory = Directory.load(path)
    except DirectoryFileError as exc:
        fail(exc)
        return
    ours = {i.oin for i in settings.identities}
    schools = [s for s in directory.schools() if not served or s.oin in ours]
    if as_json:
        body = directory.to_json()
        if served:
            codes = {x.code for x in schools}
            body["schools"] = [s for s in body["schools"] if s["brin"] + s["vestiging"] in codes]
        click.echo(json.dumps(body, indent=2))
        return
    for school in schools:
        mandated = ", ".join(sorted(school.mandated - {school.oin}))
        click.echo(f"{school.code}  {school.name}")
        click.echo(f"        gateway {school.oin}  {school.endpoint}")
        if mandated:
            click.echo(f"        also mandated: {mandated}")


@directory_group.command("check")
@config_option
@_file_option
@click.option(
    "--now", "now_text", default=None, help="Check as of this ISO-8601 time (default: now)."
)
@click.option(
    "--json", "as_json", is_flag=True, help='Print {"ok", "problems": [{kind, code, text}]}.'
)
def check_command(
    config_file: Path | None, directory_file: Path | None, now_text: str | None, as_json: bool
) -> None:
    """Check the directory: file shape, https endpoints, certificates trusted and not expiring
    within 30 days, and this gateway's own key and certificate (readable, one pair, the one
    the directory gives its OIN); and what this gateway still holds for schools it no longer
    serves: API clients, console operators, per-school storage keys and stored data. Exit 1
    with the list of problems."""
    settings = settings_or_exit(config_file)
    path = _path(settings, directory_file)
    try:
        now = datetime.fromisoformat(now_text) if now_text else datetime.now(UTC)
    except ValueError:
        raise click.BadParameter("not an ISO-8601 time", param_hint="--now") from None
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    try:
        directory = Directory.load(path)
    except DirectoryFileError as exc:
        found = [Problem(kind="directory_file", code=exc.code, text=p) for p in exc.problems]
        _report(found, as_json=as_json, code=exc.code)
        return
    try:
        trust = load_trust(settings) if settings.trust.anchor_files else None
    except GatewayError as exc:
        fail(exc, status=2)
        return
    problems = _tagged("certificate", directory.check(trust=trust, now=now))
    problems += _tagged("endpoint_path", _served_path_problems(settings, directory))
    problems += _tagged("identity", _identity_problems(settings, directory))
    problems += _unserved_problems(settings, directory)
    if problems:
        _report(problems, as_json=as_json)
        return
    summary = f"{path}: {len(directory.gateways)} gateways, {len(directory.schools())} schools"
    if as_json:
        click.echo(json.dumps({"ok": True, "problems": [], "summary": summary}, indent=2))
        return
    click.echo(f"OK: {summary}")


_CODE = re.compile(r"OSO-E\d{3}")


def _tagged(kind: str, texts: list[str]) -> list[Problem]:
    """Problems of one kind; the code is the one the text names (None when it names none)."""
    found = []
    for text in texts:
        code = _CODE.search(text)
        found.append(Problem(kind=kind, code=code.group(0) if code else None, text=text))
    return found


def _unserved_problems(settings: Settings, directory: Directory) -> list[Problem]:
    """API clients, console operators, per-school storage keys and stored data of schools this
    gateway no longer serves (``transfer.unserved``). Without a database yet there are none;
    a database or keyring that cannot be read is itself a problem (nothing unchecked passes)."""
    from oso_gateway.errors import DatabaseMissing
    from oso_gateway.store import create_store_engine, require_existing_database
    from oso_gateway.store.api_clients import ApiClientStore
    from oso_gateway.store.lifecycle import Lifecycle
    from oso_gateway.store.migrate import check_schema_current
    from oso_gateway.store.operators import OperatorStore
    from oso_gateway.transfer import unserved

    oins = [identity.oin for identity in settings.identities]
    served = unserved.served_codes(directory, oins)
    ours = unserved.our_codes(directory, oins)
    try:
        require_existing_database(settings.database_url, config_file=settings.config_file)
    except DatabaseMissing:
        return []
    engine = None
    try:
        engine = create_store_engine(settings.database_url)
        check_schema_current(engine)
        found = unserved.client_problems(ApiClientStore(engine).list(), served)
        found += unserved.operator_problems(OperatorStore(engine).all(), served)
        data_keys = Lifecycle(engine, None).data_keys_by_school()
    except GatewayError as exc:
        text = f"the database could not be read ({exc.detail}): what this gateway holds for "
        return [Problem(kind="store", code=exc.code, text=text + "schools not checked")]
    finally:
        if engine is not None:
            engine.dispose()
    try:
        keys = _storage_keys(settings)
    except GatewayError as exc:
        text = f"the storage keys could not be listed ({exc.detail}): per-school keys not checked"
        return [*found, Problem(kind="storage_keys", code=exc.code, text=text)]
    return found + unserved.key_problems(keys, data_keys, ours)


def _storage_keys(settings: Settings) -> list[object]:
    """The keyring's keys (id, state, school): read without the storage key (no material is
    needed to list them); a vendor's provider as configured."""
    from oso_gateway.store.keyring import LocalKeyProvider, keyring_file_for, provider_from_settings

    if settings.key_provider:
        provider = provider_from_settings(settings)
        return list(provider.keys()) if provider is not None else []
    local = LocalKeyProvider(
        keyring_file=keyring_file_for(settings), keyring_text=settings.keyring_text
    )
    return list(local.keys())


def _served_path_problems(settings: Settings, directory: Directory) -> list[str]:
    """Schools served by our identities whose endpoint path our server does not answer."""
    from oso_gateway.web.soap import endpoint_path_problems

    ours = {identity.oin for identity in settings.identities}
    served = [(s.code, s.endpoint) for s in directory.schools() if s.gateway.oin in ours]
    return endpoint_path_problems(served)


def _identity_problems(settings: Settings, directory: Directory) -> list[str]:
    """Our own identities against the directory: each key and certificate readable and of one
    pair (as ``serve`` needs them), and the certificate the directory gives our OIN the one we
    hold the key of (``directory.identity_problems``)."""
    from oso_gateway.transfer.directory import identity_problems

    if not settings.identities:
        return []
    try:
        identities = load_identities(settings)
    except GatewayError as exc:
        return [f"our identity: {exc.code}: {exc.detail}"]
    return identity_problems([(i.oin, i.certificate) for i in identities], directory)


def _report(problems: list[Problem], *, as_json: bool, code: str | None = None) -> None:
    """The problems, one a line (or as JSON); ``code``: the error code when the file did not
    even load. Exit 1."""
    if as_json:
        doc = {"ok": False, "problems": [p.to_json() for p in problems]}
        click.echo(json.dumps(doc, indent=2))
        raise SystemExit(1)
    click.echo(f"{code + ': ' if code else ''}{len(problems)} problem(s):")
    for problem in problems:
        click.echo(f"  - {problem.text}")
    raise SystemExit(1)


def register(group: click.Group) -> None:
    group.add_command(directory_group)
