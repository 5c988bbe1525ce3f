"""``oso-gateway inbox list|show|export|ack|decline`` and ``outbox list|show|retry|cancel``.

The schools' ends for people without a school-system (LAS) integration: the same services as
the school API (``oso_gateway.transfer.mailbox``), for every school the gateway serves or, with
``--school``, one of them. Each command has ``--json``. Output holds message ids, schools,
statuses, sizes and codes; only ``inbox export`` writes the dossier itself (to ``--out``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from oso_gateway.commands.db import (
    config_option,
    fail,
    require_served,
    school_code,
    services_or_exit,
    text_from_stdin,
    when,
    write_private,
)
from oso_gateway.commands.transfer import outbox_group
from oso_gateway.errors import GatewayError, UnknownCategory

_F = TypeVar("_F", bound=Callable[..., Any])


def _common(func: _F) -> _F:
    func = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)
    func = click.option(
        "--school",
        default=None,
        callback=school_code,
        help="Only this school's messages (BRIN + vestiging).",
    )(func)
    return config_option(func)


def _list_options(func: _F) -> _F:
    for option in (
        click.option("--status", "statuses", multiple=True, help="Only this status (repeatable)."),
        click.option(
            "--counterpart",
            default=None,
            callback=school_code,
            help="Only messages with this other school.",
        ),
        click.option("--since", callback=when, default=None, help="Created at or after (ISO)."),
        click.option("--until", callback=when, default=None, help="Created before (ISO)."),
        click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True),
        click.option("--cursor", default=None, help="Continue after a previous page."),
    ):
        func = option(func)
    return func


def _run(config_file: Path | None, school: str | None, work: Callable[[Any, Any], Any]) -> Any:
    from oso_gateway.transfer.mailbox import EVERY_SCHOOL, Scope

    services = services_or_exit(config_file)
    try:
        require_served(services, school)
        scope = EVERY_SCHOOL if school is None else Scope((school,))
        return work(services, scope)
    except GatewayError as exc:
        fail(exc, status=1)
    finally:
        services.close()


def _emit(data: Any, as_json: bool, text: Callable[[Any], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        text(data)


def _table(page: Any) -> None:
    items = page["items"]
    if not items:
        click.echo("(no messages)")
    for item in items:
        code = f" {item['last_error_code']}" if item["last_error_code"] else ""
        if item.get("purged_at"):  # its status stays; its content is gone (E530 on a fetch)
            code += f" (content erased {item['purged_at'][:10]})"
        click.echo(
            f"{item['created_at']}  {item['status']:<16} {item['message_id']}  "
            f"{item['school']} {'<-' if item['direction'] == 'in' else '->'} "
            f"{item['counterpart_school']}  {item['size_bytes'] or 0} bytes{code}"
        )
    if page["next_cursor"]:
        click.echo(f"(more: --cursor {page['next_cursor']})")


def _details(item: Any) -> None:
    for key, value in item.items():
        if key == "events":
            click.echo("events:")
            for e in value:
                extra = f" attempt {e['attempt']}" if e["attempt"] else ""
                extra += f" {e['error_code']}" if e["error_code"] else ""
                click.echo(f"  {e['at']}  {e['status']}{extra}")
        elif isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k}: {v}")
        else:
            click.echo(f"{key}: {', '.join(value) if isinstance(value, list) else value}")


def _page_command(box: str) -> Callable[..., None]:
    def command(
        config_file: Path | None,
        school: str | None,
        as_json: bool,
        statuses: tuple[str, ...],
        counterpart: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> None:
        from oso_gateway.store import models as m
        from oso_gateway.store.mailbox import INBOX_STATUSES
        from oso_gateway.transfer.mailbox import ListFilter

        known = INBOX_STATUSES if box == "inbox" else m.OUTBOUND_STATUSES
        unknown = sorted(set(statuses) - set(known))
        if unknown:  # a typo answered "(no messages)" before
            shown = box.removesuffix("_view")  # the outbox's service, not a name to show
            raise click.BadParameter(
                f"{', '.join(unknown)}: not a status of the {shown} (one of {', '.join(known)})",
                param_hint="--status",
            )
        where = ListFilter(
            statuses=statuses,
            counterpart_school=counterpart.upper() if counterpart else None,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )

        def work(services: Any, scope: Any) -> Any:
            page = getattr(services, box).list(scope, where)
            return {"items": page.items, "next_cursor": page.next_cursor}

        _emit(_run(config_file, school, work), as_json, _table)

    return command


def _one_command(box: str, method: str) -> Callable[..., None]:
    def command(
        config_file: Path | None, school: str | None, as_json: bool, message_id: str
    ) -> None:
        def work(services: Any, scope: Any) -> Any:
            service = getattr(services, box)
            return getattr(service, method)(scope, service.resolve(scope, message_id))

        _emit(_run(config_file, school, work), as_json, _details)

    return command


@click.group("inbox")
def inbox_group() -> None:
    """Received dossiers, for the receiving school: list, show, export, ack, decline."""


inbox_group.command("list", help="Received dossiers (metadata only), newest first.")(
    _common(_list_options(_page_command("inbox")))
)
inbox_group.command("show", help="One received message: metadata and events.")(
    _common(click.argument("message_id")(_one_command("inbox", "show")))
)
inbox_group.command("ack", help="Acknowledge: the school's system has taken it (fetched).")(
    _common(click.argument("message_id")(_one_command("inbox", "acknowledge")))
)


@inbox_group.command("export")
@_common
@click.argument("message_id")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    required=True,
    help="File to write (mode 0600), or - for standard output (a pipe into the school's system).",
)
@click.option("--format", "fmt", type=click.Choice(["xml", "json"]), default="xml")
@click.option(
    "--categories", default=None, help="Only these category keys (comma-separated) + required."
)
def export_command(
    config_file: Path | None,
    school: str | None,
    as_json: bool,
    message_id: str,
    out: Path,
    fmt: str,
    categories: str | None,
) -> None:
    """Write the dossier of MESSAGE_ID to --out as OSO XML (or JSON); --out - writes it to
    standard output and the summary (with --json too) to standard error."""
    from oso_gateway.transfer.mailbox import parse_categories

    try:  # a wrong key is a usage error (exit 2), as `objection add --category` says it
        keys = parse_categories(categories)
    except UnknownCategory as exc:
        fail(exc, status=2, hint=f"not a category key: {', '.join(exc.keys)}")

    def work(services: Any, scope: Any) -> tuple[str, bytes]:
        full: str = services.inbox.resolve(scope, message_id)
        data: bytes = services.inbox.export(scope, full, fmt=fmt, categories=keys)
        return full, data

    full_id, data = _run(config_file, school, work)
    to_stdout = str(out) == "-"
    if to_stdout:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_private(out, data)
    result = {
        "message_id": full_id,
        "format": fmt,
        "bytes": len(data),
        "out": "-" if to_stdout else str(out),
    }
    if to_stdout:  # standard output holds the dossier alone
        line = json.dumps(result) if as_json else f"wrote {len(data)} bytes to standard output"
        click.echo(line, err=True)
        return
    _emit(result, as_json, lambda r: click.echo(f"wrote {r['bytes']} bytes to {r['out']}"))


@inbox_group.command("decline")
@_common
@click.argument("message_id")
@click.option(
    "--reason",
    required=True,
    callback=text_from_stdin,
    help="Why (kept for audit; never logged; '-': read it from standard input).",
)
def decline_command(
    config_file: Path | None, school: str | None, as_json: bool, message_id: str, reason: str
) -> None:
    """Decline a received dossier: its content is deleted, the record and reason kept."""

    def work(services: Any, scope: Any) -> Any:
        full = services.inbox.resolve(scope, message_id)
        return services.inbox.decline(scope, full, reason=reason)

    _emit(_run(config_file, school, work), as_json, _details)


outbox_group.command("list", help="Outgoing dossiers, newest first.")(
    _common(_list_options(_page_command("outbox_view")))
)
outbox_group.command("show", help="One outgoing message: events and its verified receipt.")(
    _common(click.argument("message_id")(_one_command("outbox_view", "show")))
)
outbox_group.command("retry", help="Send a failed (or waiting) message again now.")(
    _common(click.argument("message_id")(_one_command("outbox_view", "retry")))
)
outbox_group.command("cancel", help="Cancel a message that is not delivered nor on the wire.")(
    _common(click.argument("message_id")(_one_command("outbox_view", "cancel")))
)


@outbox_group.command("retry-failed")
@click.option("--school", default=None, callback=school_code, help="Only this school's messages.")
@click.option(
    "--counterpart",
    default=None,
    callback=school_code,
    help="Only messages to this school (e.g. the one whose gateway was down).",
)
@click.option(
    "--since", callback=when, default=None, help="Created at or after (ISO, or a span: 24h)."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@config_option
def retry_failed_command(
    school: str | None,
    counterpart: str | None,
    since: datetime | None,
    yes: bool,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Send every failed outgoing message again (dossiers, and the pull workflow's requests
    and answers), each with a fresh attempt budget: after a peer's outage outlasted the retries.
    A running outbox worker sends them (serve, or outbox run)."""
    from oso_gateway.commands.db import confirm_or_exit
    from oso_gateway.store import models as m
    from oso_gateway.store.mailbox import Mailbox, MessageQuery, TransitionRefused

    services = services_or_exit(config_file)
    try:
        require_served(services, school)
        mailbox = Mailbox(services.store)
        failed: list[Any] = []
        while True:  # every one, a page at a time
            page = mailbox.list(
                MessageQuery(
                    direction=m.OUT,
                    schools=None if school is None else (school,),
                    statuses=(m.FAILED,),
                    counterpart_school=counterpart,
                    since=since,
                    before_pk=failed[-1].pk if failed else None,
                    limit=500,
                )
            )
            failed += page
            if len(page) < 500:
                break
        if failed and not yes:
            confirm_or_exit(f"send {len(failed)} failed message(s) again?")
        retried, left = [], []
        for record in reversed(failed):  # the oldest first
            try:
                mailbox.retry(record.pk, now=services.clock())
                retried.append(record.message_id)
            except TransitionRefused as exc:  # retried, cancelled or erased meanwhile
                left.append({"message_id": record.message_id, "status": exc.status})
    except GatewayError as exc:
        fail(exc, status=1)
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps({"retried": retried, "left": left}, indent=2))
        return
    for message_id in retried:
        click.echo(f"queued again: {message_id}")
    for item in left:
        click.echo(f"left alone: {item['message_id']} ({item['status']})")
    click.echo(
        f"{len(retried)} message(s) queued again; a running outbox worker sends them "
        "(serve, or outbox run)"
        if retried
        else "(no failed messages)"
    )


def register(group: click.Group) -> None:
    group.add_command(inbox_group)
