"""``oso-gateway request …`` and ``oso-gateway inzage record``: the pull workflow by hand.

For schools without a LAS integration (the school API offers the same). The new school:
``request send|list|show|withdraw``; the old school: ``request list|show``, ``request answer``
(accept with a ready-by date, or answer with the dossier), ``request decline`` and
``inzage record``. Every command takes ``--json``. A command queues its message in the outbox
(``--wait``: deliver now and wait for the signed receipt). ``list`` names no pupil; ``show``
shows the request's pupil to the school's own operator (personal data: not for logs).
Exit status: 0 done, 1 refused (with the error code), 2 usage or configuration error.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from oso_gateway.commands.db import (
    config_option,
    fail,
    parse_school,
    require_our_school,
    require_served,
    school_code,
    services_or_exit,
    settings_or_exit,
    text_from_stdin,
)
from oso_gateway.errors import DuplicateRequest, GatewayError
from oso_gateway.transfer.pull.payloads import DECLINE_REASONS
from oso_gateway.transfer.pull.service import STATUSES
from oso_gateway.transfer.pull.views import inzage_dict, request_dict

if TYPE_CHECKING:  # pragma: no cover
    from oso_gateway.transfer.pull.service import PullService
    from oso_gateway.transfer.services import GatewayServices

SIDES = {"sent": "requester", "received": "holder"}

#: a request id as people copy it: the UUID without its ``urn:uuid:`` (``log show`` takes both)
_BARE_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def request_id_argument(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    """A request id with or without ``urn:uuid:`` (a bare UUID was "no request … here" for a
    request that exists: an administrator's walkthrough)."""
    if value is not None and _BARE_UUID.fullmatch(value.strip()):
        return "urn:uuid:" + value.strip().lower()
    return value


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("give a date as YYYY-MM-DD") from None


def _pupil_json(text: str) -> dict[str, Any]:
    """The pupil from ``--pupil``'s JSON (errors name the field, never a value)."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise click.BadParameter("not JSON", param_hint="--pupil") from None
    fields = ("bsn", "onderwijsnummer", "birth_date", "family_name", "given_names")
    if not isinstance(doc, dict) or set(doc) - set(fields):
        raise click.BadParameter("a JSON object with " + ", ".join(fields), param_hint="--pupil")
    if any(value is not None and not isinstance(value, str) for value in doc.values()):
        raise click.BadParameter("every field is a string", param_hint="--pupil")
    pupil: dict[str, Any] = {name: doc.get(name) for name in fields}
    if pupil["birth_date"] is not None:
        try:
            pupil["birth_date"] = date.fromisoformat(pupil["birth_date"])
        except ValueError:
            raise click.BadParameter("birth_date as YYYY-MM-DD", param_hint="--pupil") from None
    return pupil


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def _line(item: dict[str, Any]) -> str:
    extra = ""
    if item["dossier_held_for_inzage"]:
        extra = "  dossier held: waiting for the parents' inzage"
    if item["decline_reason"]:
        extra = f"  reason {item['decline_reason']}"
    if item["last_error_code"]:
        extra += f"  last error {item['last_error_code']}"
    if item["overdue"]:
        extra += "  OVERDUE"
    arrow = "->" if item["side"] == "sent" else "<-"
    return (
        f"{item['request_id']}  {item['status']:<9} {item['our_school']} {arrow} "
        f"{item['counterpart_school']}  deadline {item['deadline']}{extra}"
    )


def _run(
    config_file: Path | None,
    as_json: bool,
    work: Callable[[GatewayServices], dict[str, Any]],
    *,
    wait: bool = False,
) -> None:
    """Build the services, run ``work``, print its result; a GatewayError exits 1 with its code."""
    services = services_or_exit(config_file)
    try:
        try:
            result = work(services)
            if wait:
                services.outbox.run_once()
                services.pull.refresh()
                result = _after_delivery(services, result)
        except GatewayError as exc:
            if as_json:
                click.echo(json.dumps(_error_json(exc)))
                raise SystemExit(1) from None
            fail(exc)
            return
        if as_json:
            click.echo(json.dumps(result, indent=2, sort_keys=True))
        else:
            _print(result)
    finally:
        services.close()


def _after_delivery(services: GatewayServices, result: dict[str, Any]) -> dict[str, Any]:
    """With --wait, the request as it stands after the delivery attempt: it printed the state
    from before (`accepted`, `queued`) of a dossier already delivered, and would not have shown
    a failed delivery (an operator's walkthrough)."""
    request_id, side = result.get("request_id"), result.get("side")
    if not isinstance(request_id, str) or side not in ("sent", "received"):
        return result
    record = services.pull.find(request_id, side="requester" if side == "sent" else "holder")
    return {**result, **request_dict(record, services.clock())}


def _print(result: dict[str, Any]) -> None:
    if "requests" in result:
        for item in result["requests"]:
            click.echo(_line(item))
        if not result["requests"]:
            click.echo("(no requests)")
        if result.get("next_cursor"):
            click.echo(f"more: --cursor {result['next_cursor']}")
        return
    for key, value in result.items():
        if key == "preview" and isinstance(value, dict):  # a line per category, not a repr
            if "problem" in value:  # the held dossier cannot leave as it stands
                problem = value["problem"]
                click.echo(f"preview: unavailable: {problem['code']}: {problem['detail']}")
                continue
            click.echo("preview (per category; `request preview` shows the parents' text):")
            if value.get("version"):
                click.echo(f"  version: {value['version']}")
            for category in value.get("categories", []):
                click.echo(f"  {category['category']}: {category['action']} ({category['status']})")
            continue
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for inner, inner_value in value.items():
                click.echo(f"  {inner}: {inner_value}")
        elif isinstance(value, list):
            click.echo(f"{key}:")
            for entry in value:
                if isinstance(entry, dict):  # an event: "at  status  code", not a dict's repr
                    entry = "  ".join(str(v) for v in entry.values() if v is not None)
                click.echo(f"  {entry}")
        else:
            click.echo(f"{key}: {value}")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
wait_option = click.option(
    "--wait", is_flag=True, help="Deliver the queued message(s) now (one outbox run)."
)


@click.group("request")
def request_group() -> None:
    """Dossier requests (the pull workflow): send, list, show, withdraw, answer, decline."""


@request_group.command("send")
@click.option(
    "--from", "requesting", required=True, callback=parse_school, help="Our school (new)."
)
@click.option("--to", "old_school", required=True, callback=parse_school, help="The old school.")
@click.option(
    "--pupil",
    "pupil_file",
    type=click.File("r", encoding="utf-8"),
    default=None,
    help="The pupil as JSON (bsn or onderwijsnummer, birth_date, family_name, given_names), "
    "from a file or - (standard input): keeps them off the command line, the process list "
    "and the shell's history. Instead of the four options below.",
)
@click.option("--bsn", default=None, help="The pupil's BSN (or --onderwijsnummer).")
@click.option("--onderwijsnummer", default=None, help="The pupil's onderwijsnummer.")
@click.option("--birth-date", default=None, callback=_date, help="YYYY-MM-DD.")
@click.option("--family-name", default=None, help="The pupil's family name.")
@click.option("--given-names", default=None, help="The pupil's given names.")
@click.option("--requested-date", default=None, callback=_date, help="Wanted by (YYYY-MM-DD).")
@json_option
@wait_option
@config_option
def send_command(
    requesting: Any,
    old_school: Any,
    pupil_file: Any,
    bsn: str | None,
    onderwijsnummer: str | None,
    birth_date: date | None,
    family_name: str | None,
    given_names: str | None,
    requested_date: date | None,
    as_json: bool,
    wait: bool,
    config_file: Path | None,
) -> None:
    """Ask the old school for a pupil's dossier (new school). Refused (OSO-E486, naming it)
    while a request of the school to the old school for the same pupil is still open."""
    from oso_gateway.transfer.pull.payloads import Pupil

    given: dict[str, Any] = {
        "bsn": bsn,
        "onderwijsnummer": onderwijsnummer,
        "birth_date": birth_date,
        "family_name": family_name,
        "given_names": given_names,
    }
    if pupil_file is not None:
        if any(value is not None for value in given.values()):
            raise click.UsageError("give the pupil either with --pupil or with its options")
        given = _pupil_json(pupil_file.read(64 * 1024))
    if given["birth_date"] is None or not given["family_name"]:
        raise click.UsageError("the pupil needs a birth date and a family name")
    pupil = Pupil(**given)
    # --from a school this gateway does not serve: said so (exit 2), not the mandate chain of a
    # refusal (E463 "has not mandated OIN …", an administrator's walkthrough)
    require_our_school(settings_or_exit(config_file), requesting.code)

    def work(services: GatewayServices) -> dict[str, Any]:
        record = services.pull.send_request(
            requesting=requesting, old_school=old_school, pupil=pupil, requested_date=requested_date
        )
        return request_dict(record, services.clock())

    _run(config_file, as_json, work, wait=wait)


@request_group.command("list")
@click.option("--side", type=click.Choice(sorted(SIDES)), default=None, help="Sent or received.")
@click.option(
    "--status",
    "statuses",
    type=click.Choice(STATUSES),
    multiple=True,
    help="Only these statuses (repeatable).",
)
@click.option(
    "--school",
    default=None,
    callback=school_code,
    help="Only this school's requests (BRIN + vestiging).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 200),
    default=None,
    help="At most this many (newest first); then --cursor with the next_cursor given.",
)
@click.option("--cursor", default=None, help="Continue after a previous page (its next_cursor).")
@json_option
@config_option
def list_command(
    side: str | None,
    statuses: tuple[str, ...],
    school: str | None,
    limit: int | None,
    cursor: str | None,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Requests we sent and received, newest first, with status and deadline (no pupil data).
    Every one, unless --limit asks for a page."""
    if cursor is not None and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
        raise click.BadParameter("not a next_cursor this command printed", param_hint="--cursor")

    def work(services: GatewayServices) -> dict[str, Any]:
        require_served(services, school)
        records = services.pull.list(
            side=SIDES.get(side or ""),
            statuses=statuses,
            schools=None if school is None else (school,),
            before_pk=int(cursor) if cursor else None,
            limit=None if limit is None else limit + 1,
        )
        page = records if limit is None else records[:limit]
        more = limit is not None and len(records) > limit
        now = services.clock()
        return {
            "requests": [request_dict(r, now) for r in page],
            "next_cursor": str(page[-1].pk) if more else None,  # more: page is full
        }

    _run(config_file, as_json, work)


def _error_json(exc: GatewayError) -> dict[str, str]:
    """A refusal as --json gives it: the code, its meaning and what was wrong (the detail the
    text output prints, which names no pupil data); a request refused as a duplicate (E486)
    also names the open request, as ``duplicate_of``, as the school API does."""
    answer = {"error": exc.code, "message": exc.public_message, "detail": exc.detail}
    if isinstance(exc, DuplicateRequest):
        answer["duplicate_of"] = exc.original
    return answer


def _side_of(side: str | None) -> str | None:
    return SIDES.get(side or "")


@request_group.command("show")
@click.argument("request_id", callback=request_id_argument)
@click.option("--side", type=click.Choice(sorted(SIDES)), default=None, help="Sent or received.")
@json_option
@config_option
def show_command(
    request_id: str, side: str | None, as_json: bool, config_file: Path | None
) -> None:
    """One request: status, deadline, history, the pupil asked for, and (old school, dossier
    held for inzage) the preview the parents are shown."""

    def work(services: GatewayServices) -> dict[str, Any]:
        pull = services.pull
        pull.refresh()
        record = pull.find(request_id, side=_side_of(side))
        result = request_dict(record, services.clock())
        # a purged request is shown as its tombstone: status and history, no pupil
        result["pupil"] = pull.requests.pupil_or_none(record.pk)
        result["purged"] = result["pupil"] is None
        result["events"] = [
            {"at": _iso(e.at), "status": e.status, "code": e.code}
            for e in pull.requests.events(record.pk)
        ]
        if record.side == "holder":
            inzage = pull.requests.find_inzage(school=record.our_school, request_pk=record.pk)
            result["inzage"] = inzage_dict(inzage)
            result["preview"] = _preview_or_problem(pull, request_id) if record.held else None
        if record.decline_reason == "other":
            result["decline_text"] = pull.requests.decline_text(record.pk)
        return result

    _run(config_file, as_json, work)


def _preview_or_problem(pull: PullService, request_id: str) -> dict[str, Any] | None:
    """The held dossier's preview; when it cannot be made (a parents' objection recorded since
    the hand-in to a category the dossier marks VERPLICHT), the problem in its place, so that
    the request can still be looked at (``show`` failed with the preview's error)."""
    try:
        shown = pull.preview(request_id)
    except GatewayError as exc:
        return {"problem": {"code": exc.code, "detail": exc.detail}}
    return shown.as_dict() if shown is not None else None


@request_group.command("preview")
@click.argument("request_id", callback=request_id_argument)
@click.option(
    "--details", is_flag=True, help="Include the values (personal data): the parents' own view."
)
@click.option("--lang", type=click.Choice(["nl", "en"]), default="nl", show_default=True)
@json_option
@config_option
def preview_command(
    request_id: str, details: bool, lang: str, as_json: bool, config_file: Path | None
) -> None:
    """What the parents are shown before the dossier for REQUEST_ID leaves (old school): the
    held dossier exactly as it will be sent (minimised), category by category."""
    from oso_gateway.dossier.preview import render_text
    from oso_gateway.errors import RequestStateInvalid

    services = services_or_exit(config_file)
    try:
        shown = services.pull.preview(request_id, include_details=details)
        if shown is None:
            raise RequestStateInvalid(f"request {request_id}: no dossier is held for inzage")
    except GatewayError as exc:
        if as_json:
            click.echo(json.dumps(_error_json(exc)))
            raise SystemExit(1) from None
        fail(exc)
        return
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps(shown.as_dict(include_details=details), ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(shown, language=lang, show_details=details), nl=False)


@request_group.command("withdraw")
@click.argument("request_id", callback=request_id_argument)
@json_option
@wait_option
@config_option
def withdraw_command(request_id: str, as_json: bool, wait: bool, config_file: Path | None) -> None:
    """Withdraw a request we sent (new school); the old school is told."""

    def work(services: GatewayServices) -> dict[str, Any]:
        return request_dict(services.pull.withdraw(request_id), services.clock())

    _run(config_file, as_json, work, wait=wait)


@request_group.command("answer")
@click.argument("request_id", callback=request_id_argument)
@click.option("--ready-by", default=None, callback=_date, help="Accept: ready by YYYY-MM-DD.")
@click.option(
    "--dossier",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Answer with the dossier (LAS export): checked against the request, then delivered "
    "or held until the parents' inzage is recorded.",
)
@json_option
@wait_option
@config_option
def answer_command(
    request_id: str,
    ready_by: date | None,
    dossier: Path | None,
    as_json: bool,
    wait: bool,
    config_file: Path | None,
) -> None:
    """Accept a request we received (old school), with a ready-by date and/or the dossier."""
    if ready_by is None and dossier is None:
        raise click.UsageError("give --ready-by, --dossier, or both")

    def work(services: GatewayServices) -> dict[str, Any]:
        pull = services.pull
        result: dict[str, Any] = {}
        if ready_by is not None:
            record = pull.accept(request_id, ready_by=ready_by)
            result = request_dict(record, services.clock())
        if dossier is not None:
            outcome = pull.answer_with_dossier(request_id, dossier.read_bytes())
            result = request_dict(outcome.request, services.clock())
            result["dossier"] = outcome.outcome
            result["delivery_message_id"] = outcome.delivery_message_id
            result["name_warning"] = outcome.name_warning
            if outcome.outcome == "held":  # what to do now ("dossier: held" said nothing more)
                result["next"] = (
                    f"show the parents the dossier (`oso-gateway request preview {request_id}`), "
                    f"then record their inzage (`oso-gateway inzage record {request_id} --date "
                    "... --how ... --previewed VERSION`): that sends it"
                )
        return result

    _run(config_file, as_json, work, wait=wait)


@request_group.command("decline")
@click.argument("request_id", callback=request_id_argument)
@click.option(
    "--reason",
    required=True,
    type=click.Choice(list(DECLINE_REASONS)),
    help="Why (other: give --text).",
)
@click.option(
    "--text",
    default=None,
    callback=text_from_stdin,
    help="With --reason other: the reason in words ('-': read it from standard input).",
)
@json_option
@wait_option
@config_option
def decline_command(
    request_id: str,
    reason: str,
    text: str | None,
    as_json: bool,
    wait: bool,
    config_file: Path | None,
) -> None:
    """Decline a request we received (old school), with a reason code."""

    def work(services: GatewayServices) -> dict[str, Any]:
        record = services.pull.decline(request_id, reason=reason, text=text)
        return request_dict(record, services.clock())

    _run(config_file, as_json, work, wait=wait)


@click.group("inzage")
def inzage_group() -> None:
    """The parents' inzage before a dossier leaves (old school)."""


def _version_option(_ctx: Any, _param: Any, value: str | None) -> str | None:
    """A dossier version as a preview prints it (16 hex digits, any case), or a usage error
    that does not repeat what was typed (it may be anything)."""
    from oso_gateway.transfer.send import typed_version

    if value is None:
        return None
    version = typed_version(value)
    if version is None:
        raise click.BadParameter("a version is 16 hex digits, as the preview prints it")
    return version


@inzage_group.command("record")
@click.argument("request_id", required=False, callback=request_id_argument)
@click.option(
    "--school", callback=parse_school, default=None, help="A push: our school (no request)."
)
@click.option(
    "--pupil-id",
    default=None,
    help="A push: the pupil's BSN or onderwijsnummer ('-': read it from standard input, off "
    "the command line and the shell's history).",
)
@click.option("--date", "inzage_date", callback=_date, default=None, help="When (YYYY-MM-DD).")
@click.option(
    "--how",
    type=click.Choice(["meeting", "paper", "digital", "other"]),
    default=None,
    help="How the parents saw the dossier.",
)
@click.option("--zienswijze", default=None, help="The parents' view, as text (kept encrypted).")
@click.option(
    "--zienswijze-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The parents' view from a file (kept encrypted).",
)
@click.option("--waive", "waiver", default=None, help="No inzage: the recorded reason.")
@click.option(
    "--previewed",
    default=None,
    metavar="VERSION",
    callback=_version_option,
    help="The dossier version the parents were shown (`request preview`, for a push `preview "
    "FILE --config`, prints it): a request's dossier handed in again since is refused, and "
    "nothing released; for a push, only a dossier of that version passes the gate.",
)
@json_option
@wait_option
@config_option
def record_command(
    request_id: str | None,
    school: Any,
    pupil_id: str | None,
    inzage_date: date | None,
    how: str | None,
    zienswijze: str | None,
    zienswijze_file: Path | None,
    waiver: str | None,
    previewed: str | None,
    as_json: bool,
    wait: bool,
    config_file: Path | None,
) -> None:
    """Record the parents' inzage for REQUEST_ID (a held dossier is then delivered), or for a
    pupil's pushed dossier (--school, --pupil-id); or waive it with a reason, where the school's
    policy allows."""
    if zienswijze_file is not None:
        zienswijze = zienswijze_file.read_text(encoding="utf-8")
    if pupil_id == "-":
        pupil_id = sys.stdin.readline().strip()
    if (request_id is None) == (school is None or pupil_id is None):
        raise click.UsageError("give REQUEST_ID, or --school and --pupil-id for a push")
    if waiver is not None and (inzage_date or how or zienswijze is not None or previewed):
        raise click.UsageError(
            "give the inzage (--date, --how, --zienswijze, --previewed) or --waive, not both"
        )

    def work(services: GatewayServices) -> dict[str, Any]:
        pull = services.pull
        if request_id is None:
            pull.record_push_inzage(
                school=school,
                pupil_identifier=pupil_id or "",
                inzage_date=inzage_date,
                how=how,
                zienswijze=zienswijze,
                waiver=waiver,
                previewed=previewed,
            )
            return {"school": school.code, "recorded": "waived" if waiver else "inzage"}
        outcome = pull.record_inzage(
            request_id,
            inzage_date=inzage_date,
            how=how,
            zienswijze=zienswijze,
            waiver=waiver,
            previewed=previewed,
        )
        record = outcome.request if outcome else pull.find(request_id, side="holder")
        result = request_dict(record, services.clock())
        result["recorded"] = "waived" if waiver else "inzage"
        result["dossier"] = outcome.outcome if outcome else None
        return result

    _run(config_file, as_json, work, wait=wait)


def register(group: click.Group) -> None:
    group.add_command(request_group)
    group.add_command(inzage_group)
