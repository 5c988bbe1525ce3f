"""``oso-gateway log``: the hash-chained transfer log (list, show, export, verify, anchor).

Everything printed comes from the chained log, whose events hold only identifiers, schools, OINs,
statuses, codes, sizes, digests and fingerprints: no pupil personal data by construction.
Tables fit an 80-column terminal; ``--json`` gives every field.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from oso_gateway.commands.db import (
    config_option,
    fail,
    settings_or_exit,
    store_or_exit,
    when,
)
from oso_gateway.errors import ConfigError, GatewayError, OutputUnwritable
from oso_gateway.store import models as m
from oso_gateway.store.logchain import FIELD_FORMATS, StoredEvent

if TYPE_CHECKING:  # pragma: no cover
    from cryptography import x509

    from oso_gateway.config import Settings
    from oso_gateway.store import Store
    from oso_gateway.transfer.auditlog import LogFilter

_F = TypeVar("_F", bound=Callable[..., Any])

STATUSES = tuple(dict.fromkeys((*m.OUTBOUND_STATUSES, *m.INBOUND_STATUSES)))


def _open(config_file: Path | None) -> tuple[Settings, Store]:
    settings = settings_or_exit(config_file)
    return settings, store_or_exit(settings, require_key=False)


def _school(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from oso_gateway.transfer.auditlog import normalise_school

    if value is None:
        return None
    try:
        return normalise_school(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _status(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    status = value.strip().lower()
    if not re.fullmatch(FIELD_FORMATS["status"], status):
        raise click.BadParameter("a status is a word of lowercase letters and underscores")
    return status


def _filter_options(func: _F) -> _F:
    """``--status --school --direction --kind --since --until``, passed on as ``where``."""

    @click.option(
        "--status",
        callback=_status,
        help=f"Only this status ({', '.join(STATUSES)}; operator events: ok, refused, …).",
    )
    @click.option(
        "--school",
        callback=_school,
        help="A school on either side (ours or the other): BRIN or BRIN + vestiging.",
    )
    @click.option("--direction", type=click.Choice(("in", "out")), help="Only this direction.")
    @click.option(
        "--kind",
        type=click.Choice(("message", "api", "operator", "system")),
        help="Only this kind: transfers (message), school-API calls, operator actions, system.",
    )
    @click.option("--since", callback=when, help="From this time (ISO) or span back (24h, 7d).")
    @click.option("--until", callback=when, help="Up to this time (ISO) or span back.")
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        status: str | None,
        school: str | None,
        direction: str | None,
        kind: str | None,
        since: datetime | None,
        until: datetime | None,
        **kwargs: Any,
    ) -> Any:
        from oso_gateway.transfer.auditlog import LogFilter

        where = LogFilter(
            status=status,
            school=school,
            direction=direction,
            kind=kind,
            since=since,
            until=until,
        )
        return func(*args, where=where, **kwargs)

    return wrapper  # type: ignore[return-value]


# --- rendering -------------------------------------------------------------------------------


def _time(event: StoredEvent) -> str:
    return event.event["at"][:19].replace("T", " ")


def _school_of(event: StoredEvent) -> str:
    return event.event.get("counterpart_brin", "") + event.event.get("counterpart_vestiging", "")


def _status_of(event: StoredEvent) -> str:
    """The status; for an operator's action also what was done (``retry ok``)."""
    e = event.event
    if e.get("kind") == "operator" and "operation" in e:
        return f"{e['operation']} {e['status']}"
    return e.get("status", "")


def _short_id(event: StoredEvent) -> str:
    return event.event.get("message_id", "").removeprefix("urn:uuid:")[:13]


def _schools_of(event: StoredEvent) -> str:
    """Our school, then the other one, the arrow the way the message went: ``00YY00>01AB00``
    (sent), ``01AB00<00YY00`` (received); ``?`` for a side the event does not name. A gateway
    serving many schools could not tell from the other school alone which of its own failed."""
    e = event.event
    ours = e.get("school_brin", "") + e.get("school_vestiging", "")
    theirs = _school_of(event)
    if not (ours or theirs):
        return "-"
    arrow = {"out": ">", "in": "<"}.get(e.get("direction", ""), " ")
    return f"{ours or '?':<6}{arrow}{theirs or '?'}"


_LIST_HEADER = f"{'SEQ':>6} {'TIME (UTC)':<19} {'STATUS':<16} {'OURS>/<THEIRS':<13} "
_LIST_HEADER += f"{'CODE':<8} MESSAGE"


def render_table(rows: Sequence[StoredEvent]) -> str:
    """One line per event, at most 80 characters wide: the direction is the arrow between our
    school and theirs (``local`` events have none)."""
    lines = [_LIST_HEADER]
    for row in rows:
        e = row.event
        lines.append(
            f"{row.seq:>6} {_time(row):<19} {_status_of(row):<16.16} {_schools_of(row):<13} "
            f"{e.get('error_code', '-'):<8} {_short_id(row) or '-'}"
        )
    return "\n".join(lines)


def error_meaning(code: str, *, direction: str | None = None) -> str:
    """What an error code means (the error class's own description), for ``log show``; on an
    outgoing message, how the sender reads it where the description would read backwards."""
    from oso_gateway import errors

    d = errors.describe(code)
    if d is None:
        return "unknown code (not one of this gateway version's codes)"
    reading = errors.sender_reading(code) if direction == "out" else ""
    return reading or (d.explanation if d.explanation != "—" else d.public_message)


def render_timeline(message_id: str, rows: Sequence[StoredEvent]) -> str:
    first = rows[0].event
    facts = [
        f"Message   {message_id}",
        f"Direction {first.get('direction', '-')}",
    ]
    school = _school_of(rows[0])
    oins = list(
        dict.fromkeys(r.event["counterpart_oin"] for r in rows if "counterpart_oin" in r.event)
    )
    if school or oins:
        facts.append(f"Counterpart school {school or '-'}  OIN {oins[0] if oins else '-'}")
    if len(oins) > 1:  # ids are unique per sender: another gateway used the same one
        facts.append(f"Note: events from {len(oins)} counterpart OINs: {', '.join(oins)}")
    size = next((r.event["size_bytes"] for r in rows if "size_bytes" in r.event), None)
    digest = next((r.event["payload_digest"] for r in rows if "payload_digest" in r.event), None)
    if size is not None:
        facts.append(f"Payload   {size} bytes")
    if digest is not None:
        facts.append(f"SHA-256   {digest}")
    lines = [*facts, "", f"{'SEQ':>6} {'TIME (UTC)':<19} {'STATUS':<16} {'TRY':>3} CODE"]
    for row in rows:
        e = row.event
        lines.append(
            f"{row.seq:>6} {_time(row):<19} {_status_of(row):<16.16} "
            f"{e.get('attempt', ''):>3} {e.get('error_code', '')}".rstrip()
        )
        if "operator" in e:
            lines.append(f"{'':8}by operator {e['operator']}")
        code = e.get("error_code")
        if code:
            lines += textwrap.wrap(
                f"{code}: {error_meaning(code, direction=e.get('direction'))}",
                width=78,
                initial_indent=" " * 8,
                subsequent_indent=" " * 18,
            )
    return "\n".join(lines)


# --- commands --------------------------------------------------------------------------------


@click.group("log")
def log_group() -> None:
    """The tamper-evident transfer log (no pupil data): list, show, export, verify, anchor."""


@log_group.command("list")
@config_option
@_filter_options
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Show the newest N matching events (0: all).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON: every field of every event.")
def list_command(config_file: Path | None, where: LogFilter, limit: int, as_json: bool) -> None:
    """Transfer-log events, oldest first (the newest --limit of those that match)."""
    from oso_gateway.transfer.auditlog import event_dict, select_events

    _settings, store = _open(config_file)
    try:
        rows = select_events(store, where, limit=limit or None)
    except GatewayError as exc:
        fail(exc)
        return
    if as_json:
        click.echo(json.dumps([event_dict(r) for r in rows], indent=2))
    elif rows:
        click.echo(render_table(rows))
    else:
        click.echo("no matching events")


@log_group.command("show")
@config_option
@click.argument("message_id")
@click.option("--json", "as_json", is_flag=True, help="JSON: every field of every event.")
def show_command(config_file: Path | None, message_id: str, as_json: bool) -> None:
    """The timeline of one message (full id, or a unique prefix of its UUID)."""
    from oso_gateway.transfer.auditlog import event_dict, resolve_message_id, timeline

    _settings, store = _open(config_file)
    try:
        ids = resolve_message_id(store, message_id)
        if len(ids) != 1:
            what = "no logged message" if not ids else f"{len(ids)} logged messages"
            click.echo(f"error: {what} match that id", err=True)
            raise SystemExit(1)
        rows = timeline(store, ids[0])
    except GatewayError as exc:
        fail(exc)
        return
    if as_json:
        events = [
            {
                **event_dict(r),
                **(
                    {"meaning": error_meaning(c, direction=r.event.get("direction"))}
                    if (c := r.event.get("error_code"))
                    else {}
                ),
            }
            for r in rows
        ]
        click.echo(json.dumps({"message_id": ids[0], "events": events}, indent=2))
    else:
        click.echo(render_timeline(ids[0], rows))


@log_group.command("export")
@config_option
@_filter_options
@click.option(
    "--format", "fmt", type=click.Choice(("csv", "jsonl")), required=True, help="Output format."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file (default: standard output).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="With --out: print a summary (events, file, format) as JSON on standard output.",
)
def export_command(
    config_file: Path | None, where: LogFilter, fmt: str, out: Path | None, as_json: bool
) -> None:
    """Export events: CSV (a column per field) or JSON lines (re-verifiable: seq, hashes, event)."""
    from oso_gateway.transfer.auditlog import export_events, select_events

    if as_json and out is None:
        raise click.UsageError("--json summarises an export to --out (the events: --format jsonl)")

    _settings, store = _open(config_file)
    try:
        rows = select_events(store, where)
    except GatewayError as exc:
        fail(exc)
        return
    if out is None:
        export_events(rows, fmt, sys.stdout)
        return
    try:
        with out.open("w", encoding="utf-8", newline="") as handle:
            count = export_events(rows, fmt, handle)
    except OSError as exc:
        fail(OutputUnwritable(f"cannot write {out}: {exc.strerror or type(exc).__name__}"))
    if as_json:
        click.echo(json.dumps({"exported": count, "out": str(out), "format": fmt}))
        return
    click.echo(f"exported {count} events to {out}", err=True)


def _certificate(path: Path) -> x509.Certificate:
    from oso_gateway.security.keys import load_certificate

    return load_certificate(path.read_bytes())


def _anchor_path(settings: Settings, anchors: Path | None) -> Path:
    return anchors if anchors is not None else settings.anchor_file


_anchors_option = click.option(
    "--anchors",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Anchor file (default: log.anchor_file, else <data_dir>/transfer-log.anchors).",
)


def _to_verify(
    settings: Settings,
    export_file: Path | None,
    archive_files: tuple[Path, ...],
    cert_files: tuple[Path, ...],
    *,
    as_json: bool,
) -> tuple[Any, Any, list[Any]]:
    """``log verify``'s input: the anchors' certificates, the chain's base and the events
    (from the database, with archives, or from an export). A log that cannot be read is no
    verdict on it: exit 3 (2 for the configuration), with --json ``"ok": null``; a file that is
    no export is BROKEN (exit 1)."""
    from oso_gateway.errors import SchemaNotCurrent
    from oso_gateway.runtime import load_earlier_certificates, load_identity_certificates
    from oso_gateway.store import open_store
    from oso_gateway.transfer.auditlog import (
        Signers,
        chain_start,
        merge_segments,
        read_export,
        read_log,
    )

    try:
        # ours now; earlier ones (the configuration's, --cert) only within their validity
        earlier = load_earlier_certificates(settings) + [_certificate(p) for p in cert_files]
        signers = Signers(
            current=tuple(load_identity_certificates(settings)), earlier=tuple(earlier)
        )
        if export_file is not None:
            rows = read_export(export_file)
            return signers, chain_start(rows), rows
        base, rows = read_log(open_store(settings, require_key=False))
        if archive_files:
            rows = merge_segments([*(read_export(f) for f in archive_files), rows])
            base = chain_start(rows)
        return signers, base, rows
    except GatewayError as exc:  # not a verdict on the log: it could not be read
        status = 2 if isinstance(exc, ConfigError | SchemaNotCurrent) else 3
        if as_json:
            problem = {"error": exc.code, "message": exc.public_message, "detail": exc.detail}
            click.echo(json.dumps({"ok": None, **problem}, indent=2))
            raise SystemExit(status) from None
        fail(exc, status=status)
    except ValueError as exc:
        click.echo(f"BROKEN: {exc}")
        raise SystemExit(1) from None


@log_group.command("verify")
@config_option
@_anchors_option
@click.option(
    "--export",
    "export_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Verify this JSON-lines export (log export --format jsonl) instead of the database.",
)
@click.option(
    "--archive",
    "archive_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Verify the log together with these archives of pruned events (log.archive_dir), "
    "from the oldest on; repeat for each file.",
)
@click.option(
    "--cert",
    "cert_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Also accept anchors signed with this certificate (e.g. a renewed one's predecessor).",
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def verify_command(
    config_file: Path | None,
    anchors: Path | None,
    export_file: Path | None,
    archive_files: tuple[Path, ...],
    cert_files: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Check the hash chain and every anchor; exit 1 naming the first broken link.

    Exit 0: intact; 1: broken (altered, removed or reordered events, a bad anchor); 2: a
    configuration problem; 3: the log could not be read (the database is away: no verdict;
    with --json, "ok" is null and "error" gives the code).

    A pruned log (retention.transfer_log_days) is checked from its base, the last pruned event;
    with --archive, from the start of the oldest archive given, so that the anchors of the
    pruned events are checked too.
    """
    from oso_gateway.commands.db import no_database_without_config
    from oso_gateway.errors import LogAnchorInvalid
    from oso_gateway.transfer.auditlog import LogReport, read_anchors, verify_log

    if export_file is not None and archive_files:
        raise click.UsageError("--export and --archive: give one or the other")
    settings = settings_or_exit(config_file)
    if export_file is None:
        no_database_without_config(settings)
    path = _anchor_path(settings, anchors)
    certificates, base, rows = _to_verify(
        settings, export_file, archive_files, cert_files, as_json=as_json
    )
    try:
        report = verify_log(rows, read_anchors(path), certificates, base=base)
    except LogAnchorInvalid as exc:
        report = LogReport(
            ok=False,
            checked=0,
            head_seq=0,
            head_hash="",
            anchors=0,
            last_anchor_seq=None,
            unanchored=0,
            reason=f"anchor file: {exc.detail}",
        )
    if as_json:
        click.echo(json.dumps({**report.to_json(), "anchor_file": str(path)}, indent=2))
    elif report.ok:
        click.echo(
            f"transfer log intact: {report.checked} events, head {report.head_seq} "
            f"{report.head_hash[:16]}"
        )
        if report.base_seq:
            click.echo(
                f"pruned: events 1-{report.base_seq} are not in it (retention); the chain is "
                f"checked from event {report.base_seq + 1}, which links to the recorded base"
            )
        if report.anchors_before_base:
            click.echo(
                f"anchors: {report.anchors_before_base} name pruned events: their signatures "
                "were checked, their heads not (give their archives with --archive)"
            )
        if report.anchors:
            click.echo(
                f"anchors: {report.anchors} valid in {path}; last at event "
                f"{report.last_anchor_seq}, {report.unanchored} events since"
            )
        else:
            click.echo(
                f"warning: no anchors in {path}: a truncated tail cannot be detected "
                "(run `oso-gateway log anchor`)"
            )
    else:
        where = f"at event {report.broken_seq}" if report.broken_seq is not None else ""
        if report.broken_anchor is not None:
            where = f"at anchor {report.broken_anchor} (event {report.broken_seq})"
        click.echo(f"BROKEN {where}: {report.reason}".replace("BROKEN :", "BROKEN:"))
        click.echo(f"{report.checked} events before it verified")
    raise SystemExit(0 if report.ok else 1)


@log_group.command("anchor")
@config_option
@_anchors_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def anchor_command(config_file: Path | None, anchors: Path | None, as_json: bool) -> None:
    """Sign the log head with the gateway key and append it to the anchor file."""
    from oso_gateway.runtime import first_identity
    from oso_gateway.transfer.auditlog import write_anchor

    settings, store = _open(config_file)
    path = _anchor_path(settings, anchors)
    try:
        anchor = write_anchor(store, first_identity(settings), path, now=datetime.now(UTC))
    except GatewayError as exc:
        fail(exc, status=2 if isinstance(exc, ConfigError) else 1)
        return
    except OSError as exc:
        click.echo(f"error: cannot write anchor file {path} ({exc.strerror})", err=True)
        raise SystemExit(1) from None
    if as_json:
        click.echo(json.dumps({"seq": anchor.seq, "hash": anchor.hash, "anchor_file": str(path)}))
        return
    click.echo(f"anchored event {anchor.seq} ({anchor.hash[:16]}) in {path}; keep a copy elsewhere")


def register(group: click.Group) -> None:
    group.add_command(log_group)
