"""``oso-gateway directory``: show and check the school directory file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from oso_gateway.commands.db import config_option, fail, settings_or_exit
from oso_gateway.config import Settings
from oso_gateway.errors import ConfigError, DirectoryFileError, GatewayError
from oso_gateway.runtime import load_identities, load_trust
from oso_gateway.transfer.directory import Directory

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
def show_command(config_file: Path | None, directory_file: Path | None, as_json: bool) -> None:
    """List the gateways and schools in the directory."""
    path = _path(settings_or_exit(config_file), directory_file)
    try:
        directory = Directory.load(path)
    except DirectoryFileError as exc:
        fail(exc)
        return
    if as_json:
        click.echo(json.dumps(directory.to_json(), indent=2))
        return
    for school in directory.schools():
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
def check_command(
    config_file: Path | None, directory_file: Path | None, now_text: str | None
) -> None:
    """Check the directory: file shape, https endpoints, certificates trusted and not expiring
    within 30 days, and this gateway's own key and certificate (readable, one pair, the one
    the directory gives its OIN). Exit 1 with the list of problems."""
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
        _report(exc.problems, code=exc.code)
        return
    try:
        trust = load_trust(settings) if settings.trust.anchor_files else None
    except GatewayError as exc:
        fail(exc, status=2)
        return
    problems = directory.check(trust=trust, now=now)
    problems += _served_path_problems(settings, directory)
    problems += _identity_problems(settings, directory)
    if problems:
        _report(problems)
        return
    click.echo(
        f"OK: {path}: {len(directory.gateways)} gateways, {len(directory.schools())} schools"
    )


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


def _report(problems: tuple[str, ...] | list[str], *, code: str | None = None) -> None:
    """The problems, one a line; ``code``: the error code when the file did not even load."""
    click.echo(f"{code + ': ' if code else ''}{len(problems)} problem(s):")
    for problem in problems:
        click.echo(f"  - {problem}")
    raise SystemExit(1)


def register(group: click.Group) -> None:
    group.add_command(directory_group)
