"""Parents' and pupils' rights: ``disclosure`` (what was shared), ``objection`` (at the sending
school), ``subject`` (what the receiving gateway holds about a pupil).

The pupil is named by BSN (or onderwijsnummer): it is only hashed with the keyring's lookup key,
never stored, printed or logged. ``--bsn -`` reads it from standard input (keeps it out of the
shell history and the process list).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from oso_gateway.commands.db import (
    config_option,
    confirm_or_exit,
    fail,
    require_our_school,
    school_code,
    school_names,
    settings_or_exit,
    store_or_exit,
    write_private,
)
from oso_gateway.config import Settings
from oso_gateway.errors import (
    ConfigError,
    DisclosureNotFound,
    GatewayError,
    InvalidObjection,
)
from oso_gateway.store import models as m
from oso_gateway.store.disclosures import DisclosureRecord, OutgoingMessage, PrivacyRecords
from oso_gateway.store.lifecycle import PUSH_INZAGE, RECEIVED, REJECTED_FAILED, REQUEST, Lifecycle
from oso_gateway.store.pull import InzageEntry, RequestRecord
from oso_gateway.store.repository import Store
from oso_gateway.transfer.lifecycle import SubjectData


def _records(config_file: Path | None) -> PrivacyRecords:
    store = store_or_exit(settings_or_exit(config_file))
    return PrivacyRecords(store.engine, store.cipher)


def _pupil(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from oso_gateway.dossier.rules import bsn_is_valid, onderwijsnummer_is_valid

    if value is None:
        return None
    number = sys.stdin.readline().strip() if value == "-" else value.strip()
    if not (bsn_is_valid(number) or onderwijsnummer_is_valid(number)):
        raise click.BadParameter("not a valid BSN or onderwijsnummer (9 digits, 11-proef)")
    return number


_BSN = click.option(
    "--bsn", "pupil", callback=_pupil, default=None, help="The pupil's BSN ('-': read stdin)."
)


_JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group("disclosure")
def disclosure_group() -> None:
    """What was shared about a pupil, with whom and when (at the sending gateway)."""


@disclosure_group.command("report")
@config_option
@click.option("--message", "message_id", default=None, help="One transfer's message id.")
@_BSN
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="File to write."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pdf", "html"]),
    default=None,
    help="Default: from --out's suffix.",
)
@click.option("--lang", type=click.Choice(["nl", "en"]), default="nl", show_default=True)
@_JSON
def report_command(
    config_file: Path | None,
    message_id: str | None,
    pupil: str | None,
    out: Path,
    fmt: str | None,
    lang: str,
    as_json: bool,
) -> None:
    """Write the parents' report (PDF or HTML) for one transfer or for every transfer of a
    pupil."""
    from oso_gateway.dossier.rules import bsn_is_valid
    from oso_gateway.transfer.report import build_report, render_html, render_pdf

    if (message_id is None) == (pupil is None):
        raise click.UsageError("give exactly one of --message and --bsn")
    fmt = fmt or ("html" if out.suffix.lower() in (".html", ".htm") else "pdf")
    records = _records(config_file)
    try:
        found = records.disclosures(message_id=message_id, pupil_number=pupil)
        if not found:
            raise DisclosureNotFound(
                f"no disclosure record for message {message_id}"
                if message_id
                else "no disclosure record for this pupil"
            )
    except GatewayError as exc:
        fail(exc)
        return
    report = build_report(
        found,
        language=lang,
        now=datetime.now(UTC),
        pupil_tail=pupil[-4:] if pupil else None,
        pupil_kind="bsn" if pupil is None or bsn_is_valid(pupil) else "onderwijsnummer",
        school_names=school_names(settings_or_exit(config_file)),
    )
    write_private(out, render_html(report).encode("utf-8") if fmt == "html" else render_pdf(report))
    if as_json:  # message ids and the file, never the pupil
        ids = [r.message_id for r in found]
        body = {"out": str(out), "format": fmt, "lang": lang, "transfers": ids}
        click.echo(json.dumps(body))
        return
    click.echo(f"wrote {fmt.upper()} report of {len(found)} transfer(s) to {out}")


@disclosure_group.command("list")
@config_option
@click.option("--message", "message_id", default=None)
@_BSN
@click.option(
    "--school", callback=school_code, default=None, help="Only what this school sent (BRIN+vest.)."
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only what was prepared on or after this date (UTC), e.g. a month's report.",
)
def list_disclosures(
    config_file: Path | None,
    message_id: str | None,
    pupil: str | None,
    school: str | None,
    since: datetime | None,
) -> None:
    """Disclosure records as JSON lines, newest first (categories, reasons, dates, the sending
    and the receiving school, digests)."""
    records = _records(config_file)
    start = since.replace(tzinfo=UTC) if since is not None else None
    for r in records.disclosures(message_id=message_id, pupil_number=pupil):
        if school is not None and r.sending_school != school:
            continue
        if start is not None and r.prepared_at < start:
            break  # newest first: the rest is older
        click.echo(json.dumps(_disclosure_dict(r), sort_keys=True, ensure_ascii=False))


def _disclosure_dict(r: DisclosureRecord) -> dict[str, Any]:
    """A disclosure record as JSON (``disclosure list``, subject access): no pupil data."""
    return {
        "message_id": r.message_id,
        "sending_school": r.sending_school,
        "recipient_school": r.recipient_school,
        "recipient_name": r.recipient_name,
        "prepared_at": r.prepared_at.isoformat(),
        "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None,
        "sent": list(r.sent),
        "withheld": [{"category": c, "reason": w} for c, w in r.withheld],
        "inzage": r.inzage,
        "receipt_digest": r.receipt_digest,
    }


@click.group("objection")
def objection_group() -> None:
    """Parents' objections to sending a category, per pupil (at the sending school)."""


def _category(value: str) -> str:
    from oso_gateway.dossier.categories import BY_KEY

    category = BY_KEY.get(value)
    if category is None or category.schema_required:
        allowed = ", ".join(k for k, c in BY_KEY.items() if not c.schema_required)
        problem = InvalidObjection(
            f"category {value!r} "
            + ("does not exist" if category is None else "is the dossier's required core")
            + f"; an objection names one of: {allowed}"
        )
        fail(problem, status=2)
    return value


@objection_group.command("add")
@config_option
@click.option("--school", callback=school_code, required=True, help="Sending school (BRIN+vest.).")
@_BSN
@click.option("--category", required=True, help="Category key, e.g. toetsresultaten.")
@_JSON
def add_objection(
    config_file: Path | None, school: str, pupil: str | None, category: str, as_json: bool
) -> None:
    """Record that the parents object to sending CATEGORY; every later send withholds it."""
    if pupil is None:
        raise click.UsageError("--bsn is required")
    require_our_school(settings_or_exit(config_file), school)
    records = _records(config_file)
    new = records.record_objection(
        school=school, pupil_number=pupil, category=_category(category), now=datetime.now(UTC)
    )
    text = f"objection to {category} recorded" if new else "already recorded"
    _say({"school": school, "category": category, "recorded": new}, as_json, text)


def _say(body: dict[str, Any], as_json: bool, text: str) -> None:
    """``body`` as JSON (no pupil data: the pupil is never in it) or ``text``."""
    click.echo(json.dumps(body) if as_json else text)


@objection_group.command("remove")
@config_option
@click.option("--school", callback=school_code, required=True)
@_BSN
@click.option("--category", required=True)
@_JSON
def remove_objection(
    config_file: Path | None, school: str, pupil: str | None, category: str, as_json: bool
) -> None:
    """Withdraw an objection."""
    if pupil is None:
        raise click.UsageError("--bsn is required")
    gone = _records(config_file).withdraw_objection(
        school=school, pupil_number=pupil, category=category, now=datetime.now(UTC)
    )
    if not gone:  # a mistyped school is not "no such objection" (exit 2, E463)
        require_our_school(settings_or_exit(config_file), school)
    said = (
        f"objection to {category} withdrawn: sends from now on share the category again"
        if gone
        else "no such objection"
    )
    _say({"withdrawn": gone}, as_json, said)


@objection_group.command("list")
@config_option
@click.option("--school", callback=school_code, required=True)
@_BSN
@_JSON
def list_objections(
    config_file: Path | None, school: str, pupil: str | None, as_json: bool
) -> None:
    """The categories the parents objected to."""
    if pupil is None:
        raise click.UsageError("--bsn is required")
    categories = list(_records(config_file).objections_for(school, pupil))
    if not categories:  # a mistyped school is not "none" (exit 2, E463)
        require_our_school(settings_or_exit(config_file), school)
    if as_json:
        click.echo(json.dumps({"school": school, "categories": categories}))
        return
    for category in categories:
        click.echo(category)


@click.group("subject")
def subject_group() -> None:
    """Subject access and erasure: what this gateway holds about a pupil."""


def _subject(config_file: Path | None, pupil: str | None) -> tuple[Settings, Store, SubjectData]:
    from oso_gateway.transfer.lifecycle import subject_data

    if pupil is None:
        raise click.UsageError("--bsn is required")
    settings = settings_or_exit(config_file)
    store = store_or_exit(settings)
    try:
        return settings, store, subject_data(store, pupil, now=datetime.now(UTC))
    except GatewayError as exc:
        fail(exc, status=2 if isinstance(exc, ConfigError) else 1)


def _request_dict(data: SubjectData, record: RequestRecord, settings: Settings) -> dict[str, Any]:
    """A pull request that names the pupil, as subject access and erasure show it."""
    status = data.status(record)
    closed = record in data.closed_requests
    # one of ours past its deadline is expired, written at the next refresh or erasure: the
    # purge counts from then, so from now at the earliest
    since = record.updated_at if status == record.status else data.now
    due = since + timedelta(days=settings.retention.requests_days)
    return {
        "request_id": record.request_id,
        "side": "sent" if record.side == m.REQUESTER else "received",
        "our_school": record.our_school,
        "counterpart_school": record.counterpart_school,
        "status": status,
        "updated_at": record.updated_at.isoformat(),
        "purge_due": due.isoformat() if closed else None,
    }


def _outgoing_dict(item: OutgoingMessage) -> dict[str, Any]:
    return {
        "message_id": item.message_id,
        "action": item.action,
        "to_school": item.recipient_school,
        "status": item.status,
        "created_at": item.created_at.isoformat(),
    }


@subject_group.command("access")
@config_option
@_BSN
@click.option("--json", "as_json", is_flag=True)
def access_command(config_file: Path | None, pupil: str | None, as_json: bool) -> None:
    """What this gateway holds about the pupil: the dossiers received (from whom, since when,
    fetched or not, when the retention purge will erase them), the dossiers about the pupil it
    is sending or failed to send, the dossier requests (sent or received) that name the pupil,
    and the inzage records of its pushes. Reads only."""
    from oso_gateway.transfer.lifecycle import purge_due

    settings, _store, data = _subject(config_file, pupil)
    rows = [
        {
            "message_id": h.message_id,
            "from_school": h.sending_school,
            "to_school": h.receiving_school,
            "received_at": h.received_at.isoformat(),
            "fetched_at": h.fetched_at.isoformat() if h.fetched_at else None,
            "acknowledged_at": h.acknowledged_at.isoformat() if h.acknowledged_at else None,
            "purge_due": purge_due(settings.retention, h).isoformat(),
            "size": h.size,
        }
        for h in data.received
    ]
    outgoing = [_outgoing_dict(o) for o in data.outgoing]
    requests = [_request_dict(data, r, settings) for r in data.requests]
    inzage = [_inzage_dict(e) for e in data.push_inzage]
    more = _records_held(data)
    if as_json:
        answer = {"dossiers": rows, "outgoing": outgoing, "requests": requests}
        answer["push_inzage"] = inzage
        click.echo(json.dumps(answer | more, sort_keys=True, indent=2))
        return
    if not (rows or outgoing or requests or inzage or any(more.values())):
        click.echo("nothing held about this pupil")
    _echo_records_held(more)
    for r in rows:
        fetched = "fetched" if r["fetched_at"] or r["acknowledged_at"] else "not fetched"
        click.echo(
            f"{r['message_id']}  from {r['from_school']}  received {r['received_at']}  "
            f"{fetched}  purge due {r['purge_due']}"
        )
    for o in outgoing:
        click.echo(
            f"{o['message_id']}  {o['action']}  to {o['to_school']}  {o['status']}  (outgoing)"
        )
    for q in requests:
        due = f"purge due {q['purge_due']}" if q["purge_due"] else "open"
        click.echo(
            f"request {q['request_id']}  {q['side']}  {q['our_school']} / "
            f"{q['counterpart_school']}  {q['status']}  {due}"
        )
    for i in inzage:
        text = "with the parents' text" if i["text_held"] else "no text held"
        seen = "waived" if i["waived"] else f"seen {i['inzage_date'] or '-'} ({i['how'] or '-'})"
        version = f"  version {i['previewed']}" if i["previewed"] else ""
        click.echo(
            f"inzage for a push  {i['school']}  {seen}{version}  recorded {i['recorded_at']}  "
            f"{text}"
        )


def _inzage_dict(e: InzageEntry) -> dict[str, Any]:
    """An inzage record as subject access shows it: whether a view was given, never the text."""
    return {
        "school": e.school,
        "recorded_at": e.recorded_at.isoformat(),
        "inzage_date": e.inzage_date,
        "how": e.how,
        "view_given": e.zienswijze,
        "waived": e.waived,
        "text_held": e.text_held,
        "previewed": e.previewed,
    }


def _records_held(data: SubjectData) -> dict[str, list[dict[str, Any]]]:
    """The records the old school keeps about the pupil besides the content: what was shared
    with whom and when (the parents' report), the parents' objections, the inzage of the
    requests it received (they were left out: a privacy walkthrough)."""
    return {
        "disclosures": [_disclosure_dict(d) for d in data.disclosures],
        "objections": [
            {"school": o.school, "category": o.category, "recorded_at": o.recorded_at.isoformat()}
            for o in data.objections
        ],
        "request_inzage": [
            {"request_id": request_id, **_inzage_dict(e)} for request_id, e in data.request_inzage
        ],
    }


def _echo_records_held(more: dict[str, list[dict[str, Any]]]) -> None:
    for d in more["disclosures"]:
        when = f"delivered {d['delivered_at']}" if d["delivered_at"] else "not delivered"
        click.echo(
            f"shared {d['message_id']}  to {d['recipient_school']}  {when}  "
            f"categories {', '.join(d['sent']) or '-'}  (disclosure record)"
        )
    for o in more["objections"]:
        click.echo(f"objection  {o['school']}  {o['category']}  recorded {o['recorded_at']}")
    for i in more["request_inzage"]:
        what = "waived" if i["waived"] else f"inzage {i['inzage_date']} ({i['how']})"
        version = f"  version {i['previewed']}" if i.get("previewed") else ""
        click.echo(f"inzage for request {i['request_id']}  {i['school']}  {what}{version}")


def _kept(data: SubjectData, settings: Settings) -> list[dict[str, Any]]:
    """What an erasure leaves, and why."""
    kept: list[dict[str, Any]] = []
    for r in data.open_requests:
        shown = _request_dict(data, r, settings)
        step = "withdraw" if r.side == m.REQUESTER else "decline"
        kept.append(
            {
                "id": r.request_id,
                "what": "request",
                "side": shown["side"],
                "status": shown["status"],
                "why": f"open: {step} it first (request {step})",
            }
        )
    for o in data.in_transit:
        kept.append(
            {
                "id": o.message_id,
                "what": "outgoing_message",
                "status": o.status,
                "why": "on its way: cancel it first (outbox cancel), or its delivery erases it",
            }
        )
    return kept


def _changed(data: SubjectData) -> list[dict[str, Any]]:
    """What an erasure could have erased but found otherwise when it came to it."""
    why = "changed since the look-up (answered, retried or arrived meanwhile): erase again"
    items = [(h.message_id, "received_dossier", "held") for h in data.received]
    items += [(o.message_id, "outgoing_message", o.status) for o in data.outgoing_failed]
    items += [(r.request_id, "request", data.status(r)) for r in data.closed_requests]
    items += [(c.message_id, "push_inzage_text", "held") for c in data.push_inzage_texts]
    return [{"id": i, "what": what, "status": status, "why": why} for i, what, status in items]


#: exit status of an erasure that left something (``kept``): it did what it could, not all
PARTIAL = 3


@subject_group.command("erase")
@config_option
@_BSN
@click.option("--dry-run", is_flag=True, help="Only list what would be erased.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True)
def erase_command(
    config_file: Path | None, pupil: str | None, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """Erase, on request, what this gateway holds about the pupil, now rather than at the end
    of its retention: dossiers received, a failed outgoing message's content, closed dossier
    requests (their facts, decline text and the parents' view) and the parents' texts of a
    push's inzage; logged. What is still under way (an open request, a dossier being sent) is
    listed and kept: the exit status is then 3."""
    from oso_gateway.transfer.lifecycle import erase_subject, subject_data

    settings, store, data = _subject(config_file, pupil)
    assert pupil is not None  # _subject refused it otherwise
    kept = _kept(data, settings)
    ids = [h.message_id for h in data.received] + [o.message_id for o in data.outgoing_failed]
    request_ids = [r.request_id for r in data.closed_requests]
    texts = len(data.push_inzage_texts)
    what = (
        f"{len(ids)} dossier(s), {len(request_ids)} closed request(s) and {texts} parents' "
        "text(s) of a push's inzage"
    )
    nothing = not (ids or request_ids or texts)
    if dry_run or nothing:
        if as_json:
            key = "would_erase" if dry_run else "erased"
            click.echo(json.dumps(_answer(key, ids, request_ids, texts, data, kept)))
        else:
            for message_id in ids:
                click.echo(f"would erase {message_id}")
            for request_id in request_ids:
                click.echo(f"would erase request {request_id}")
            _echo_kept(kept)
            click.echo(f"{what} held about this pupil; nothing was erased")
        if kept and not dry_run:
            raise SystemExit(PARTIAL)
        return
    if not yes:
        confirm_or_exit(f"erase {what} held about this pupil?")
    try:
        result = erase_subject(Lifecycle(store.engine, store.cipher), data, now=datetime.now(UTC))
    except GatewayError as exc:
        fail(exc)
    erased = result.purged[RECEIVED] + result.purged[REJECTED_FAILED]
    erased_requests = result.purged[REQUEST]
    erased_texts = len(result.purged[PUSH_INZAGE])
    # What is left is looked up again: what changed since the first look (answered, retried,
    # arrived) was left by the erasure's own checks and is reported, not passed over.
    try:
        after = subject_data(store, pupil, now=datetime.now(UTC))
        kept = _kept(after, settings) + _changed(after)
    except GatewayError as exc:  # the erasure stands: say what it did, and that this is unsure
        why = f"could not look again ({exc.code}): run subject access"
        kept = [{"id": "-", "what": "unknown", "status": "unknown", "why": why}]
    if as_json:
        answer = _answer("erased", erased, erased_requests, erased_texts, data, kept)
        click.echo(json.dumps(answer))
    else:
        for message_id in erased:
            click.echo(f"erased {message_id}")
        for request_id in erased_requests:
            click.echo(f"erased request {request_id}")
        _echo_kept(kept)
        received, outgoing = len(result.purged[RECEIVED]), len(result.purged[REJECTED_FAILED])
        click.echo(
            f"{received} received dossier(s), {outgoing} failed or refused outgoing "
            f"message(s), {len(erased_requests)} request(s) and {erased_texts} parents' "
            "text(s) of a push's inzage erased; the erasure is in the transfer log"
        )
    if kept:
        raise SystemExit(PARTIAL)


def _answer(
    key: str,
    ids: list[str],
    request_ids: list[str],
    texts: int,
    data: SubjectData,
    kept: list[dict[str, Any]],
) -> dict[str, Any]:
    """The JSON answer: the message ids, and each other part only where the pupil has one."""
    answer: dict[str, Any] = {key: ids}
    if data.requests:
        answer[f"{key}_requests"] = request_ids
    if data.push_inzage_texts:
        answer[f"{key}_push_inzage_texts"] = texts
    if kept:
        answer["kept"] = kept
    return answer


def _echo_kept(kept: list[dict[str, Any]]) -> None:
    for item in kept:
        click.echo(
            f"kept {item['what'].replace('_', ' ')} {item['id']} ({item['status']}): {item['why']}"
        )


def register(group: click.Group) -> None:
    group.add_command(disclosure_group)
    group.add_command(objection_group)
    group.add_command(subject_group)
