"""``oso-gateway send`` and ``oso-gateway outbox run``: queue dossiers, deliver them.

Output names message ids, schools, counts and error codes, never a file's content: a dossier is
named by its position and the first hex digits of its SHA-256, and by the file the operator gave
(on the terminal only, never in a log: a LAS export's file names may hold a pupil's name), so
that a script can map files to messages; a refused one with the rule codes and element paths
that refused it (never values).
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from oso_gateway.commands.db import config_option, fail, parse_school, services_or_exit
from oso_gateway.errors import (
    GatewayError,
    RecipientCertificateUntrusted,
    SchemaNotCurrent,
    StoreUnavailable,
    UnknownSchool,
)
from oso_gateway.errors.logs import configure_logging
from oso_gateway.store import models as m

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.transfer.services import GatewayServices


def _label(index: int, total: int, data: bytes) -> str:
    return f"dossier {index}/{total} (sha256 {hashlib.sha256(data).hexdigest()[:12]})"


@click.command("send")
@click.argument("dossier", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--to",
    "school",
    required=True,
    callback=parse_school,
    help="Receiving school: BRIN + vestiging, e.g. 01AB00 (vestiging defaults to 00).",
)
@click.option("--wait", is_flag=True, help="Deliver now and wait for the signed receipt(s).")
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="With --wait: give up waiting after this many seconds (the outbox keeps trying).",
)
@click.option(
    "--allow-duplicate",
    is_flag=True,
    help="Queue a dossier even when the same one was queued for this school within "
    "[duplicates] outbound_window_hours (refused as OSO-E610 otherwise).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object: counts and, per file, its message id or error code (and status).",
)
@config_option
def send_command(
    dossier: Path,
    school: object,
    wait: bool,
    timeout: float,
    allow_duplicate: bool,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Validate, minimise, seal and queue DOSSIER (a file, or a directory of *.xml) for a school.

    The same dossier queued again for the same school within the duplicate window is refused
    (OSO-E610), as the school API refuses it. Each queued dossier is printed with its message id
    and its file. Exit status 1 when any dossier was rejected or (with --wait) not delivered; 2
    when the set-up stops every dossier for the school (not in the directory, no usable
    encryption certificate for its gateway, our own database unavailable).
    """
    from oso_gateway.transfer.schools import School

    assert isinstance(school, School)
    services = services_or_exit(config_file)
    files = sorted(dossier.glob("*.xml")) if dossier.is_dir() else [dossier]
    if not files:
        services.close()
        click.echo(f"error: no *.xml files in {dossier}", err=True)
        raise SystemExit(2)
    try:
        sent = _queue_files(services, files, school, allow_duplicate=allow_duplicate)
        if sent.setup is not None:
            _say_setup(sent.setup, school, sum(1 for r in sent.files if r["message_id"]))
        if not as_json:  # each file's message id before any wait (Ctrl-C there keeps it: a review)
            _say_queued(sent, school)
        if wait:
            for row in sent.files:
                if row["message_id"]:
                    record = services.outbox.wait_for(row["message_id"], timeout=timeout)
                    row["status"], row["error"] = record.status, record.last_error_code
    finally:
        services.close()
    _say_sent(sent, school, wait=wait, as_json=as_json)
    if sent.setup is not None:
        raise SystemExit(2)
    failed = wait and any(r["message_id"] and r["status"] != m.DELIVERED for r in sent.files)
    if failed or any(r["status"] == "rejected" for r in sent.files):
        raise SystemExit(1)


@dataclass
class _Sent:
    """What ``send`` did, per file: ``file``, ``sha256`` (its first 12 hex digits),
    ``message_id`` (None: not queued), ``status`` (queued, rejected, not_attempted; after
    --wait the message's), ``error`` (a code or None)."""

    files: list[dict[str, Any]]
    removed: dict[str, int]
    setup: GatewayError | None  # a problem of the set-up, not of a dossier


def _queue_files(
    services: GatewayServices, files: list[Path], school: object, *, allow_duplicate: bool
) -> _Sent:
    from oso_gateway.store.mailbox import Mailbox
    from oso_gateway.transfer.mailbox import refuse_duplicate
    from oso_gateway.transfer.schools import School
    from oso_gateway.transfer.send import prepare_dossier

    assert isinstance(school, School)
    mailbox = Mailbox(services.store)
    window = timedelta(hours=services.settings.duplicates.outbound_window_hours)
    sent = _Sent(
        files=[
            {
                "file": str(p),
                "sha256": None,
                "message_id": None,
                "status": "not_attempted",
                "error": None,
            }
            for p in files
        ],
        removed={},
        setup=None,
    )
    with click.progressbar(
        list(enumerate(files, 1)), label=f"Queueing for {school}", show_pos=True, file=sys.stderr
    ) as bar:
        for index, path in bar:
            data = path.read_bytes()
            row = sent.files[index - 1]
            row["sha256"] = hashlib.sha256(data).hexdigest()[:12]
            label = _label(index, len(files), data)
            try:
                now = datetime.now(UTC)
                prepared = prepare_dossier(
                    data,
                    to=school,
                    directory=services.directory,
                    config=services.sender_config,
                    now=now,
                    objections=services.outbox.objections,
                )
                again = None
                if not allow_duplicate:
                    again = refuse_duplicate(mailbox, prepared, to=school, now=now, window=window)
                services.outbox.enqueue(prepared, after_insert=again)
            except GatewayError as exc:
                if isinstance(exc, (*_NOT_THE_DOSSIERS, StoreUnavailable)):
                    sent.setup = exc  # every file would fail alike
                    break
                row["status"], row["error"] = "rejected", exc.code
                click.echo(
                    f"\nrejected: {label} {click.format_filename(path)}: {exc.code} "
                    f"{exc.public_message} ({exc.detail})",
                    err=True,
                )
                continue
            for key, count in prepared.removed.items():
                sent.removed[key] = sent.removed.get(key, 0) + count
            row["status"], row["message_id"], row["label"] = "queued", prepared.message_id, label
            # a large dossier is not held while the next one, or --wait, runs
            del data, prepared
    return sent


def _say_queued(sent: _Sent, school: object) -> None:
    """What was queued, each file beside its message id (text: printed before any wait)."""
    queued = [r for r in sent.files if r["message_id"]]
    rejected = sum(1 for r in sent.files if r["status"] == "rejected")
    click.echo(f"queued {len(queued)} dossier(s) for {school}, rejected {rejected}")
    if sent.removed:
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(sent.removed.items()))
        click.echo(f"minimised (elements removed per category): {shown}")
    for row in queued:
        click.echo(f"  {row['message_id']}  {row['label']}  {click.format_filename(row['file'])}")


def _say_sent(sent: _Sent, school: object, *, wait: bool, as_json: bool) -> None:
    """The JSON of it all; in text, each wait's outcome (``_say_queued`` said the rest)."""
    queued = [r for r in sent.files if r["message_id"]]
    rejected = sum(1 for r in sent.files if r["status"] == "rejected")
    if as_json:
        body = {
            "to": str(school),
            "queued": len(queued),
            "rejected": rejected,
            "stopped_by": sent.setup.code if sent.setup is not None else None,
            "minimised": dict(sorted(sent.removed.items())),
            "files": [{k: v for k, v in r.items() if k != "label"} for r in sent.files],
        }
        click.echo(json.dumps(body, indent=2))
        return
    if wait:
        for row in queued:
            code = f" {row['error']}" if row["error"] else ""
            click.echo(f"{row['status']}: {row['message_id']}{code}")


def _say_setup(setup: GatewayError, school: object, queued: int) -> None:
    """What stopped ``send`` before the last dossier: ours to fix, not the dossiers'."""
    if isinstance(setup, StoreUnavailable):
        click.echo(
            f"\nerror: {setup.code}: this gateway's own database: {setup.detail}\n"
            f"nothing more was queued ({queued} before it); once the database is back, "
            "send the same files again: those already queued are refused as duplicates "
            "(OSO-E610), the rest are queued",
            err=True,
        )
        return
    click.echo(
        f"\nerror: {setup.code}: {setup.detail}\n"
        f"no dossier can go to {school} until this is fixed (it is the set-up, not a "
        f"dossier: `oso-gateway directory check`); {queued} queued before it",
        err=True,
    )


#: what fails every dossier for the school alike: the directory has no such school, or no
#: usable encryption certificate for its gateway (exit 2, a set-up problem, not "rejected")
_NOT_THE_DOSSIERS: tuple[type[GatewayError], ...] = (UnknownSchool, RecipientCertificateUntrusted)


@click.group("outbox")
def outbox_group() -> None:
    """The outbox of outgoing dossiers."""


def _not_due(services: Any) -> str:
    """What a run left alone, so that "delivered 0" explains itself: messages another worker
    holds (until its lease ends) and messages waiting for their next attempt."""
    from oso_gateway.store import models as m

    now = services.clock()
    store = services.store
    held = [
        r
        for r in store.list_messages(direction=m.OUT, statuses=(m.SENDING, m.AWAITING_RECEIPT))
        if r.lease_until is not None and r.lease_until >= now
    ]
    waiting = [
        r.next_attempt_at
        for r in store.list_messages(direction=m.OUT, statuses=(m.QUEUED, m.RETRYING))
        if r.next_attempt_at is not None and r.next_attempt_at > now
    ]
    parts = []
    if held:
        ends = max(r.lease_until for r in held if r.lease_until is not None)
        parts.append(
            f"{len(held)} held by another worker (its lease ends by "
            f"{ends.isoformat(timespec='seconds')})"
        )
    if waiting:
        parts.append(
            f"{len(waiting)} waiting for their next attempt (the first at "
            f"{min(waiting).isoformat(timespec='seconds')})"
        )
    return "; " + "; ".join(parts) if parts else ""


@outbox_group.command("run")
@click.option("--once", is_flag=True, help="Attempt what is due now, then exit.")
@click.option(
    "--poll-interval", type=float, default=2.0, show_default=True, help="Seconds between polls."
)
@config_option
def run_command(once: bool, poll_interval: float, config_file: Path | None) -> None:
    """Deliver due messages (claims each exclusively: several workers may run at once)."""
    configure_logging()
    from oso_gateway.transfer.auditlog import anchor_periodically, maybe_anchor

    services = services_or_exit(config_file)  # refuses stored keys it lacks (exit 2)
    identity = services.identities[0]
    try:
        _hold_presence(services)
        if once:
            stats = services.outbox.run_once()
            click.echo(
                f"delivered {stats.delivered}, retrying {stats.retrying}, failed {stats.failed}"
                + _not_due(services)
            )
            # A worker run from cron anchors the transfer log too (when it is due).
            maybe_anchor(services.store, services.settings, services.clock(), identity=identity)
            return
        stop = threading.Event()

        def _stop(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        # live trust material, as in serve's workers: a worker of its own reloaded nothing
        # (nor said that its configuration file changed: an operator's walkthrough)
        from oso_gateway.runtime import start_trust_reloader

        _reloading, wake = start_trust_reloader(services, stop)
        signal.signal(signal.SIGHUP, lambda _signum, _frame: wake.set())
        anchorer = threading.Thread(
            target=anchor_periodically,
            args=(stop, services.store, services.settings),
            kwargs={"identity": identity, "clock": services.clock},
            name="transfer-log-anchor",
            daemon=True,
        )
        anchorer.start()
        services.outbox.run_forever(stop, poll_interval=poll_interval)
        anchorer.join(timeout=10)
    finally:
        services.close()


def _hold_presence(services: GatewayServices) -> None:
    """``runtime.hold_presence``: a schema not current (an upgrade ended while it waited) ends
    the command with exit 2, as ``services_or_exit`` does; an upgrade still running, exit 1."""
    from oso_gateway.runtime import hold_presence

    try:
        hold_presence(services, what="outbox run")
    except SchemaNotCurrent as exc:
        fail(exc, status=2)
    except GatewayError as exc:
        fail(exc)


def register(group: click.Group) -> None:
    group.add_command(send_command)
    group.add_command(outbox_group)
